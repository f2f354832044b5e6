"""repro.problems: closed forms against autograd, Theorem 3.1's constants, seeded data."""

import math

import pytest
import torch

from repro import generator
from repro.problems import MatrixSensing, QuadraticRegression, WideningValley


def autograd_hessian(f, w):
    return torch.autograd.functional.hessian(f, w)


def test_valley_trace_and_gradient_match_autograd():
    valley = WideningValley(d=5)
    w = torch.randn(6, generator=generator(0), dtype=torch.float64)
    H = autograd_hessian(valley.loss_w, w)
    torch.testing.assert_close(valley.hessian_trace_w(w), torch.trace(H))
    wg = w.clone().requires_grad_(True)
    valley.loss_w(wg).backward()
    gu, gv = valley.gradient(*valley.split(w))
    torch.testing.assert_close(torch.cat([gu, gv[None]]), wg.grad)


def test_valley_batched_and_start():
    valley = WideningValley(d=8)
    w = valley.start(D=2.0, n_seeds=3)
    u, v = valley.split(w)
    assert w.shape == (3, 9)
    torch.testing.assert_close((u**2).sum(-1), torch.full((3,), 2.0, dtype=torch.float64))
    assert torch.all(v == 0) and torch.all(valley.loss_w(w) == 0)
    # on the valley floor the trace is |u|^2 = D; off it, each seed gets its own value
    torch.testing.assert_close(valley.hessian_trace_w(w), torch.full((3,), 2.0, dtype=torch.float64))
    w[:, -1] = torch.tensor([0.0, 1.0, 2.0])
    torch.testing.assert_close(valley.hessian_trace_w(w), 2.0 + 8 * torch.tensor([0.0, 1.0, 4.0],
                               dtype=torch.float64))
    with pytest.raises(ValueError, match="d \\+ 1"):
        valley.split(torch.zeros(3, 8))


def test_theorem_3_1_constants():
    t = WideningValley(d=32).theorem_3_1(alpha=0.25, D=1.0)
    assert t["lr"] == 0.125
    assert t["sigma2_max_pgd"] == min(0.25**3 / 2, 1 / 2)
    assert t["sigma2_max_anti_pgd"] == t["sigma2"] == 0.25 / 64
    assert t["d_min"] == 32 and t["d_ok"]
    assert (t["pgd_u2_lower"], t["anti_pgd_u2_upper"]) == (4.0, 0.25)
    assert (t["pgd_trace_lower"], t["anti_pgd_trace_upper"]) == (4.0, 4.0)
    assert not WideningValley(d=31).theorem_3_1(0.25, 1.0)["d_ok"]
    # large alpha: D/(8 alpha) is the binding noise limit
    assert WideningValley(d=1).theorem_3_1(2.0, 1.0)["sigma2_max_pgd"] == 1 / 16
    with pytest.raises(ValueError, match="alpha"):
        WideningValley(d=4).theorem_3_1(0.0, 1.0)
    with pytest.raises(ValueError, match="d must be"):
        WideningValley(d=0)


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


def test_matrix_sensing():
    prob = MatrixSensing(n=6, r=2, m=60, seed=0)
    assert prob.A.shape == (60, 6, 6) and torch.equal(prob.A, prob.A.transpose(1, 2))
    Q, _ = torch.linalg.qr(torch.randn(2, 2, generator=generator(5), dtype=torch.float64))
    U = torch.stack([prob.U_star, prob.U_star @ Q])  # the factor is defined up to a rotation
    assert torch.all(prob.loss(U) < 1e-25) and torch.all(prob.recovery_error(U) < 1e-12)
    U0 = prob.start(0.1, k=6, n_seeds=3, generator=generator(0))
    assert U0.shape == (3, 6, 6) and prob.loss(U0).shape == (3,)
    torch.testing.assert_close(prob.recovery_error(torch.zeros(6, 6, dtype=torch.float64)),
                               torch.tensor(1.0, dtype=torch.float64))
    # loss by hand for one factor
    M = U0[0] @ U0[0].T
    by_hand = sum((torch.sum(prob.A[i] * M) - prob.y[i]) ** 2 for i in range(60)) / (4 * 60)
    torch.testing.assert_close(prob.loss(U0[0]), by_hand)
    assert math.isclose(float(torch.linalg.matrix_norm(prob.X_star) ** 2), 2.0, rel_tol=1e-12)
