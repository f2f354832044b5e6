"""repro.optim.subgradient: the geometric step schedule against steps computed by hand."""

import pytest
import torch

from repro.optim import OPTIMIZERS, SubGradient


def test_steps_follow_the_geometric_schedule_on_the_absolute_value():
    # f(w) = |w| per run: the subgradient is sign(w), so each step moves w by exactly lr * decay^t
    w = torch.tensor([[1.0], [-2.0]], dtype=torch.float64, requires_grad=True)
    opt = SubGradient([w], lr=torch.tensor([0.5, 0.25], dtype=torch.float64), decay=0.5)
    path = []
    for _ in range(3):
        opt.zero_grad()
        w.abs().sum().backward()
        opt.step()
        path.append(w.detach().clone().squeeze(1))
    # run 0: 1 - 0.5 = 0.5, 0.5 - 0.25 = 0.25, 0.25 - 0.125 = 0.125
    # run 1: -2 + 0.25 = -1.75, + 0.125 = -1.625, + 0.0625 = -1.5625
    expected = [[0.5, -1.75], [0.25, -1.625], [0.125, -1.5625]]
    for got, want in zip(path, expected):
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=0)


def test_a_constant_step_oscillates_around_the_minimum():
    # decay = 1 on |w| from w = 0.3 with lr 1: 0.3 -> -0.7 -> 0.3 -> -0.7, never closer than 0.3
    w = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    opt = SubGradient([w], lr=torch.tensor([1.0], dtype=torch.float64), decay=1.0)
    seen = []
    for _ in range(4):
        opt.zero_grad()
        w.abs().sum().backward()
        opt.step()
        seen.append(round(float(w.detach()), 12))
    assert seen == [-0.7, 0.3, -0.7, 0.3]


def test_registered_and_decay_checked():
    assert OPTIMIZERS["subgradient"] is SubGradient
    w = torch.zeros(2, 1, requires_grad=True)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="decay"):
            SubGradient([w], lr=torch.ones(2), decay=bad)
