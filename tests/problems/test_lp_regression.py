"""repro.problems.lp_regression: exact losses and gradients, batching, and the minimiser."""

import pytest
import torch

from repro.problems import LpRegression


def small_problem(p, bias=False):
    X = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    return LpRegression(X, y, p=p, bias=bias)


@pytest.mark.parametrize("p", [2, 4])
def test_loss_by_hand(p):
    problem = small_problem(p)
    w = torch.tensor([0.5, 1.0], dtype=torch.float64)
    residuals = [0.5 - 1.0, 2.0 + 1.0, 1.5 - 0.5]
    expected = sum(r**p for r in residuals) / (p * 3)
    assert problem.loss(w).item() == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("p", [2, 4, 6])
def test_gradient_and_hessian_match_autograd(p):
    problem = small_problem(p, bias=True)
    w = torch.tensor([0.3, -0.7, 0.2], dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(problem.loss(w), w)
    assert torch.allclose(problem.gradient(w.detach()), auto, atol=1e-13)
    auto_h = torch.autograd.functional.hessian(problem.loss, w.detach())
    assert torch.allclose(problem.hessian(w.detach()), auto_h, atol=1e-12)


def test_batched_parameters_give_one_loss_per_run():
    problem = small_problem(4)
    w = torch.randn(5, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    losses = problem.loss(w)
    assert losses.shape == (5, 3)
    assert losses[2, 1].item() == pytest.approx(problem.loss(w[2, 1]).item(), rel=1e-14)
    assert problem.gradient(w).shape == (5, 3, 2)


def test_bias_adds_a_column_of_ones():
    problem = small_problem(2, bias=True)
    assert problem.d == 3 and torch.equal(problem.X[:, -1], torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("p", [2, 4])
def test_minimize_finds_a_stationary_point(p):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(50, 4, generator=g, dtype=torch.float64)
    y = (X @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
         + torch.randn(50, generator=g, dtype=torch.float64))
    problem = LpRegression(X, y, p=p)
    w = problem.minimize()
    assert problem.gradient(w).norm() < 1e-10
    if p == 2:
        assert torch.allclose(w, torch.linalg.lstsq(X, y[:, None]).solution[:, 0], atol=1e-10)
    # convex: any perturbation raises the loss
    nearby = w + 1e-3 * torch.randn(10, 4, generator=g, dtype=torch.float64)
    assert (problem.loss(nearby) > problem.loss(w)).all()


def test_bad_input_is_refused():
    X, y = torch.zeros(3, 2), torch.zeros(3)
    with pytest.raises(ValueError, match="even"):
        LpRegression(X, y, p=3)
    with pytest.raises(ValueError, match="shape"):
        LpRegression(X, torch.zeros(4))
