"""repro.problems.relu_regression_1d: the data, the loss by hand, the grid."""

import pytest
import torch

from repro import generator
from repro.problems import PROBLEMS, ReluRegression1D

F64 = torch.float64


def test_registered_and_default_points():
    assert PROBLEMS["relu_regression_1d"] is ReluRegression1D
    p = ReluRegression1D.default()
    assert p.n == 7 and bool((p.x[1:] > p.x[:-1]).all())
    assert p.inputs().shape == (7, 1)
    assert 0 < p.interpolant_knots() <= p.n - 2


def test_inputs_are_sorted_with_their_targets():
    p = ReluRegression1D(torch.tensor([0.5, -0.5, 0.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert p.x.tolist() == [-0.5, 0.0, 0.5] and p.y.tolist() == [2.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="distinct"):
        ReluRegression1D(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]))


def test_loss_by_hand():
    p = ReluRegression1D(torch.tensor([0.0, 1.0]), torch.tensor([1.0, -1.0]))
    out = torch.tensor([[1.0, -1.0], [0.0, 1.0]], dtype=F64)
    # run 0 fits exactly; run 1: (1 + 4) / (2 * 2)
    torch.testing.assert_close(p.loss(out), torch.tensor([0.0, 1.25], dtype=F64))
    with pytest.raises(ValueError, match="points"):
        p.loss(out[:, :1])


def test_grid_and_draw():
    p = ReluRegression1D.default()
    g = p.grid(101, pad=0.1)
    assert len(g) == 101
    torch.testing.assert_close(g[[0, -1]], torch.tensor([-1.0, 1.0], dtype=F64))
    q = ReluRegression1D.draw(5, generator(0))
    r = ReluRegression1D.draw(5, generator(0))
    assert torch.equal(q.x, r.x) and torch.equal(q.y, torch.sin(3 * q.x) + q.x / 2)
    # a straight line needs no knot
    line = ReluRegression1D(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert line.interpolant_knots() == 0
