"""repro.optim.per_run: one step size per run of a batched model (the update rules themselves are
checked against their formulas in test_common.py)."""

import pytest
import torch

from repro.optim import PerRunAdaGrad, PerRunAdam, PerRunGD, PerRunMomentum


def test_per_run_gd_is_gd_with_each_runs_own_step_size():
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(3, 4, 2, generator=g)
    target = torch.randn(3, 4, 2, generator=g)
    lrs = torch.tensor([0.1, 0.01, 0.5])
    w = w0.clone().requires_grad_(True)
    opt = PerRunGD([w], lrs)
    for _ in range(5):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
    for s in range(3):                       # each run alone, with torch's own SGD
        v = w0[s].clone().requires_grad_(True)
        ref = torch.optim.SGD([v], lr=float(lrs[s]))
        for _ in range(5):
            ref.zero_grad()
            ((v - target[s]) ** 2).sum().backward()
            ref.step()
        torch.testing.assert_close(w[s].detach(), v.detach())
    with pytest.raises(ValueError):
        PerRunGD([torch.zeros(2, 3, requires_grad=True)], torch.tensor([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError):
        PerRunGD([torch.zeros(2, 3, requires_grad=True)], torch.tensor([0.1, -1.0]))


@pytest.mark.parametrize("cls", [PerRunGD, PerRunMomentum, PerRunAdaGrad, PerRunAdam])
def test_every_per_run_rule_refuses_a_bad_step_size_table(cls):
    w = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="lead with"):
        cls([w], torch.tensor([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="positive"):
        cls([w], torch.tensor([0.1, 0.0]))
    with pytest.raises(ValueError, match="1-D"):
        cls([w], torch.tensor(0.1))


def test_per_run_hyperparameters_are_checked():
    w = torch.zeros(2, 3, requires_grad=True)
    lr = torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match="momentum"):
        PerRunMomentum([w], lr, momentum=1.0)
    with pytest.raises(ValueError, match="eps"):
        PerRunAdaGrad([w], lr, eps=0.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        PerRunAdam([w], lr, betas=(0.9, 1.5))


def test_parameters_without_a_gradient_are_skipped():
    w, frozen = torch.ones(2, 3, requires_grad=True), torch.ones(2, 4, requires_grad=True)
    opt = PerRunAdam([w, frozen], torch.tensor([0.1, 0.2]))
    (w**2).sum().backward()
    opt.step()
    assert torch.equal(frozen.detach(), torch.ones(2, 4)) and frozen not in opt.state
    assert opt.state[w]["step"] == 1
