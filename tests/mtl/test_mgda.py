"""repro.mtl.mgda: the minimum-norm point on hand-checkable cases and against a grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.mtl import MGDA
from repro.mtl._simplex import _simplex_qp


def test_mgda_hand_cases():
    # orthogonal unit gradients: the midpoint
    torch.testing.assert_close(MGDA()(torch.eye(2)), torch.tensor([0.5, 0.5]))
    # one gradient inside the other's half-line: the shorter one
    G = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    torch.testing.assert_close(MGDA()(G), torch.tensor([1.0, 0.0]))
    # (2, 0) and (0, 1): the min-norm point of the segment is (0.4, 0.8)
    G = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(MGDA()(G), torch.tensor([0.4, 0.8], dtype=torch.float64))
    # K = 3 orthonormal: the centroid; a Pareto-stationary set gives zero
    torch.testing.assert_close(MGDA()(torch.eye(3, dtype=torch.float64)),
                               torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-6, rtol=0)
    G = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert MGDA()(G).norm() < 1e-6


def test_mgda_two_tasks_matches_general_solver():
    rng = np.random.default_rng(8)
    G = torch.tensor(rng.standard_normal((5, 2, 4)), dtype=torch.float64)
    agg = MGDA()
    agg(G)
    for b in range(5):
        M = (G[b] @ G[b].T).numpy()
        w = np.linspace(0, 1, 100001)
        q = M[0, 0] * w**2 + 2 * M[0, 1] * w * (1 - w) + M[1, 1] * (1 - w) ** 2
        assert agg.weights[b, 0].item() == pytest.approx(w[q.argmin()], abs=1e-4)
        assert _simplex_qp(M)[0] == pytest.approx(w[q.argmin()], abs=1e-4)
