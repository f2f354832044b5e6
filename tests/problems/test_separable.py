"""repro.problems.separable: the planted margin; the logistic loss against hand-computed values."""

import math

import pytest
import torch

from repro.problems import SeparableData

F64 = torch.float64


def test_margin_is_planted_and_data_are_batched():
    data = SeparableData(n=50, d=6, margin=0.3, batch=3, seed=1)
    assert data.features.shape == (3, 50, 6) and data.labels.shape == (3, 50)
    # every point is at least `margin` on its own side of w*'s hyperplane
    assert bool((data.scores(data.w_star) >= 0.3 - 1e-12).all())
    assert bool((data.errors(data.w_star) == 0).all())
    torch.testing.assert_close(data.w_star.norm(dim=-1), torch.ones(3, dtype=F64))
    # the same seed draws the same data
    torch.testing.assert_close(SeparableData(n=50, d=6, margin=0.3, batch=3, seed=1).features,
                               data.features)


def test_loss_errors_and_margin_by_hand():
    # a_1 = (1, 0) labelled +1, a_2 = (0, 2) labelled -1; at w = (1, 1): z = (1, -2)
    data = SeparableData.from_arrays(torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64),
                                     torch.tensor([1.0, -1.0], dtype=F64))
    w = torch.tensor([1.0, 1.0], dtype=F64)
    torch.testing.assert_close(data.scores(w), torch.tensor([1.0, -2.0], dtype=F64))
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(2))) / 2
    assert data.loss(w).item() == pytest.approx(expected, rel=1e-14)
    assert data.errors(w).item() == 1
    assert data.normalized_margin(w).item() == pytest.approx(-2 / math.sqrt(2), rel=1e-14)
    # at w = 0 every point is an error (z = 0 is not strictly on its side) and the loss is log 2
    assert data.errors(torch.zeros(2, dtype=F64)).item() == 2
    assert data.loss(torch.zeros(2, dtype=F64)).item() == pytest.approx(math.log(2), rel=1e-14)
    # no overflow at a huge weight: the loss is about |z|, not inf
    assert data.loss(1e6 * w).item() == pytest.approx((2e6 + 0.0) / 2, rel=1e-9)


def test_weights_broadcast_over_runs_and_data_sets():
    data = SeparableData(n=10, d=4, batch=2, seed=0)
    w = torch.randn(3, 2, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    out = data.loss(w)
    assert out.shape == (3, 2)
    for k in range(3):
        for b in range(2):
            one = SeparableData.from_arrays(data.features[b], data.labels[b])
            torch.testing.assert_close(out[k, b], one.loss(w[k, b]))


def test_bad_arguments():
    with pytest.raises(ValueError):
        SeparableData(margin=-1.0)
    with pytest.raises(ValueError):
        SeparableData.from_arrays(torch.zeros(3, 2), torch.tensor([1.0, 0.0, -1.0]))
