"""repro.mtl.nash_mtl: the aggregator around the Nash solver: batching, its failure policy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from repro.mtl import NashMTL, NashUnbounded, nash_solve


def test_aggregator_failure_policy():
    bad = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    good = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(NashUnbounded):
        NashMTL()(bad)
    agg = NashMTL(on_failure="previous")
    d_good = agg(good)
    w_good = agg.weights.clone()
    with pytest.warns(RuntimeWarning, match="reusing the previous weights"):
        d_bad = agg(bad)
    assert agg.failures == 1
    torch.testing.assert_close(agg.weights, w_good)
    torch.testing.assert_close(d_bad, (w_good[:, None] * bad).sum(0))
    assert isinstance(agg.last_error, NashUnbounded)
    # two tasks with exactly opposite gradients: the closed form fails the same way
    with pytest.raises(NashUnbounded):
        NashMTL()(torch.tensor([[1.0, 2.0], [-1.0, -2.0]]))
    with pytest.raises(ValueError):
        NashMTL(on_failure="ignore")
    del d_good


def test_nash_aggregator_batched_matches_solver():
    rng = np.random.default_rng(5)
    G = torch.tensor(rng.standard_normal((3, 4, 7)))
    d = NashMTL()(G)
    for b in range(3):
        a = nash_solve((G[b] @ G[b].T).numpy()).alpha
        np.testing.assert_allclose(d[b].numpy(), G[b].numpy().T @ a, rtol=1e-10)


def test_warning_free_on_success():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
        NashMTL(on_failure="previous")(G)
