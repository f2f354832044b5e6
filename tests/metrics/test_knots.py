"""repro.metrics.knots: exact kinks of a ReLU sum, the threshold-and-merge rule on a grid against
hand-placed kinks, and the per-interval counts."""

import pytest
import torch

from repro.metrics import Knots, count_per_gap, find_knots, off_data, relu_kinks

F64 = torch.float64


def relu_sum(x, a, w, b, scale=1.0):
    return scale * (a * torch.relu(w * x[:, None] + b)).sum(-1)


def test_relu_kinks_are_exact():
    a = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=F64)
    w = torch.tensor([1.0, -2.0, 4.0, 0.0], dtype=F64)
    b = torch.tensor([0.5, 0.4, -2.0, 1.0], dtype=F64)
    k = relu_kinks(a, w, b, scale=0.5)
    # -b/w = -0.5, 0.2, 0.5 (the w = 0 neuron bends nothing); jumps 0.5 * a * |w|
    torch.testing.assert_close(k.location, torch.tensor([-0.5, 0.2, 0.5], dtype=F64))
    torch.testing.assert_close(k.jump, torch.tensor([1.0, -1.0, 1.0], dtype=F64))
    assert len(k) == 3


def test_find_knots_recovers_separated_kinks_on_the_grid():
    # kinks placed on grid points: the second difference finds them exactly
    x = torch.linspace(-1, 1, 201, dtype=F64)          # spacing 0.01
    a = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    w = torch.ones(3, dtype=F64)
    b = torch.tensor([0.5, 0.0, -0.3], dtype=F64)       # kinks at -0.5, 0, 0.3
    f = relu_sum(x, a, w, b)
    (k,) = find_knots(x, f, rel_threshold=0.01, merge=0.0)
    torch.testing.assert_close(k.location, torch.tensor([-0.5, 0.0, 0.3], dtype=F64))
    torch.testing.assert_close(k.jump, torch.tensor([1.0, -2.0, 0.5], dtype=F64))
    assert k.share == pytest.approx(1.0)


def test_a_smooth_function_has_no_knots():
    # x^2 on a grid of spacing 0.005: each point carries 1/398 of the total curvature (< 1%)
    x = torch.linspace(-1, 1, 401, dtype=F64)
    (k,) = find_knots(x, x**2, rel_threshold=0.01, merge=0.02)
    assert len(k) == 0 and k.share == 0.0
    (k,) = find_knots(x, x**2, rel_threshold=0.001, merge=0.02)
    assert len(k) == 1 and k.share == pytest.approx(1.0)   # every point bent: one long cluster


def test_threshold_drops_small_kinks_and_merge_joins_a_cloud():
    x = torch.linspace(-1, 1, 201, dtype=F64)
    # a cloud of five kinks 0.01 apart around 0.2 (total jump 1), one tiny kink at -0.4
    b = torch.tensor([-0.18, -0.19, -0.2, -0.21, -0.22, 0.4], dtype=F64)
    a = torch.tensor([0.2, 0.2, 0.2, 0.2, 0.2, 1e-4], dtype=F64)
    f = relu_sum(x, a, torch.ones(6, dtype=F64), b)
    (unmerged,) = find_knots(x, f, rel_threshold=0.01, merge=0.0)
    assert len(unmerged) == 5                      # the tiny kink is below 1% of the total
    assert 0.999 < unmerged.share < 1.0
    (merged,) = find_knots(x, f, rel_threshold=0.01, merge=0.015)
    assert len(merged) == 1
    torch.testing.assert_close(merged.location, torch.tensor([0.2], dtype=F64))
    torch.testing.assert_close(merged.jump, torch.tensor([1.0], dtype=F64))
    (everything,) = find_knots(x, f, rel_threshold=0.0, merge=0.0)
    assert len(everything) == 6                    # no threshold: the tiny kink counts too


def test_find_knots_handles_rows_and_linear_functions():
    x = torch.linspace(0, 1, 11, dtype=F64)
    f = torch.stack([2 * x + 1, torch.relu(x - 0.5)])
    flat, bent = find_knots(x, f)
    assert len(flat) == 0 and len(bent) == 1
    with pytest.raises(ValueError, match="increasing"):
        find_knots(x.flip(0), f)
    with pytest.raises(ValueError, match="grid"):
        find_knots(x, f[:, :5])


def test_count_per_gap_and_off_data():
    x_data = torch.tensor([0.0, 1.0, 3.0], dtype=F64)
    loc = torch.tensor([-0.5, 0.01, 0.5, 1.0, 1.05, 2.0, 2.99, 4.0], dtype=F64)
    # (0, 1): 0.01, 0.5; (1, 3): 1.05, 2.0, 2.99; -0.5, 1.0 (a data point) and 4.0 in none
    assert count_per_gap(loc, x_data).tolist() == [2, 3]
    # farther than 5% of the width from both ends: (0, 1) keeps 0.5; (1, 3) keeps 2.0 only
    assert off_data(loc, x_data, fraction=0.05).tolist() == [1, 1]
    assert off_data(loc, x_data, fraction=0.0).tolist() == [2, 3]


def test_knots_dataclass():
    k = Knots(torch.zeros(2), torch.ones(2))
    assert len(k) == 2
