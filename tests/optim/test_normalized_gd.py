"""repro.optim.normalized_gd: Normalized LR+GD's step against a hand-computed one."""

import math

import pytest
import torch

from repro.optim import PerRunNormalizedGD
from repro.problems import SeparableData

F64 = torch.float64


def test_first_step_by_hand():
    data = SeparableData.from_arrays(torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64),
                                     torch.tensor([1.0, -1.0], dtype=F64))
    x = torch.zeros(2, 2, dtype=F64, requires_grad=True)
    lr = torch.tensor([1.0, 0.5], dtype=F64)
    opt = PerRunNormalizedGD([x], lr)

    def closure():
        opt.zero_grad()
        loss = data.loss(x)
        loss.sum().backward()
        return loss

    returned = opt.step(closure)
    torch.testing.assert_close(returned, torch.full((2,), math.log(2), dtype=F64))
    # at 0: f = log 2 and grad f = -(1/2) mean(y_i a_i) = -(0.25, -0.5), so the step is
    # x = lr / log 2 * (0.25, -0.5)
    expected = (lr / math.log(2))[:, None] * torch.tensor([0.25, -0.5], dtype=F64)
    torch.testing.assert_close(x.detach(), expected)


def test_a_run_whose_loss_underflowed_stays_put():
    x = torch.tensor([[1.0], [2.0]], dtype=F64, requires_grad=True)
    opt = PerRunNormalizedGD([x], torch.ones(2, dtype=F64))

    def closure():
        opt.zero_grad()
        loss = torch.stack([torch.zeros((), dtype=F64) * x[0, 0], (x[1, 0] - 1) ** 2])
        loss.sum().backward()
        return loss

    opt.step(closure)
    # run 0: loss 0, gradient 0: no step (not nan); run 1: x - g / f = 2 - 2 / 1 = 0
    torch.testing.assert_close(x.detach(), torch.tensor([[1.0], [0.0]], dtype=F64))
    with pytest.raises(ValueError):
        opt.step()
