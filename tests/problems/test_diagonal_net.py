"""repro.problems.diagonal_net: the quadratically parameterised regression's seeded data, closed
forms against autograd, and its test loss."""

import pytest
import torch

from repro import generator
from repro.problems import QuadraticRegression


def autograd_hessian(f, w):
    return torch.autograd.functional.hessian(f, w)


def test_quadratic_regression_data_are_seeded_and_sparse():
    a, b, c = QuadraticRegression(seed=3), QuadraticRegression(seed=3), QuadraticRegression(seed=4)
    assert a.X.shape == (40, 100) and a.X_test.shape == (1000, 100)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y) and not torch.equal(a.X, c.X)
    assert int((a.s_star != 0).sum()) == 5
    # the teacher interpolates noiseless data and has zero test loss
    w_star = a.s_star.sqrt()
    assert a.loss(w_star) < 1e-25 and a.test_loss(w_star) < 1e-25
    noisy = QuadraticRegression(seed=3, noise=0.5)
    assert noisy.loss(w_star) > 0.01 and noisy.test_loss(w_star) < 1e-25
    with pytest.raises(ValueError, match="k ="):
        QuadraticRegression(d=4, k=5)


def test_quadratic_regression_trace_and_gradient_match_autograd():
    prob = QuadraticRegression(d=12, n=5, k=2, noise=0.1, seed=0)
    w = torch.randn(12, generator=generator(1), dtype=torch.float64)
    torch.testing.assert_close(prob.hessian_trace(w), torch.trace(autograd_hessian(prob.loss, w)))
    wg = w.clone().requires_grad_(True)
    prob.loss(wg).backward()
    torch.testing.assert_close(prob.gradient(w), wg.grad)
    # batched: one value per seed, each equal to the unbatched one
    W = torch.randn(4, 12, generator=generator(2), dtype=torch.float64)
    traces = prob.hessian_trace(W)
    assert traces.shape == (4,)
    for s in range(4):
        torch.testing.assert_close(traces[s], torch.trace(autograd_hessian(prob.loss, W[s])))


def test_quadratic_regression_test_loss_estimates_population_loss():
    prob = QuadraticRegression(seed=0, n_test=20000)
    w = prob.start(0.5, n_seeds=2)
    assert w.shape == (2, 100)
    # x^T e with e = w*w - s*: a Gaussian with variance |e|^2, so the mean of 20000 squares has
    # relative standard deviation sqrt(2/20000) = 1%.
    torch.testing.assert_close(prob.test_loss(w), prob.population_loss(w), rtol=0.05, atol=0)
