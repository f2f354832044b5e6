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


def test_minibatch_loss_and_gradient_per_run():
    prob = QuadraticRegression(d=12, n=6, k=2, noise=0.1, seed=0)
    W = torch.randn(3, 12, generator=generator(3), dtype=torch.float64)
    # the whole data set as every run's batch is the full loss
    full = torch.arange(6).repeat(3, 1)
    torch.testing.assert_close(prob.loss(W, full), prob.loss(W))
    torch.testing.assert_close(prob.gradient(W, full), prob.gradient(W))
    # each run on its own batch: the loss of those examples, by hand, and autograd's gradient
    batch = torch.tensor([[0, 1], [5, 5], [2, 4]])
    for s in range(3):
        r = prob.X[batch[s]] @ (W[s] * W[s]) - prob.y[batch[s]]
        torch.testing.assert_close(prob.loss(W, batch)[s], (r**2).sum() / 8)
    Wg = W.clone().requires_grad_(True)
    prob.loss(Wg, batch).sum().backward()
    torch.testing.assert_close(prob.gradient(W, batch), Wg.grad)
    with pytest.raises(ValueError, match="minibatch"):
        prob.loss(W[0], batch)


def test_sample_batch_shapes_and_schemes():
    prob = QuadraticRegression(d=12, n=6, k=2, seed=0)
    idx = prob.sample_batch(50, 4, generator(0))
    assert idx.shape == (50, 4) and idx.min() >= 0 and idx.max() < 6
    assert all(len(set(row.tolist())) == 4 for row in idx)  # without replacement: distinct
    again = prob.sample_batch(50, 4, generator(0))
    assert torch.equal(idx, again)
    draws = prob.sample_batch(2000, 3, generator(1), replacement=True)
    # with replacement some rows repeat an example: P(3 distinct of 6) = 5/9
    distinct = sum(len(set(row.tolist())) == 3 for row in draws) / 2000
    assert abs(distinct - 5 / 9) < 0.05
    with pytest.raises(ValueError, match="exceeds"):
        prob.sample_batch(2, 7, generator(0))


def test_gauss_newton_factors_give_the_hessian_at_interpolation():
    prob = QuadraticRegression(d=12, n=5, k=2, seed=0)  # noiseless: the teacher interpolates
    w = prob.s_star.sqrt()
    G = prob.gauss_newton_factors(w)
    assert G.shape == (5, 12)
    H = autograd_hessian(prob.loss, w)
    torch.testing.assert_close(G.T @ G / 5, H)
    # the trace identity: tr H = (1/n) sum_i |g_i|^2 = (2/n) sum_j w_j^2 |X_{:,j}|^2
    torch.testing.assert_close((G**2).sum() / 5, prob.hessian_trace(w))
    torch.testing.assert_close(prob.l1_norm(w), prob.s_star.sum())
