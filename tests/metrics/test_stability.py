"""repro.metrics.stability: the mean-square stability of linearised SGD in residual coordinates,
against closed forms (orthogonal and parallel examples, GD at B = n) and against the general
second-moment operator of repro.metrics.mean_square_stability."""

import pytest
import torch

from repro import generator
from repro.metrics import (
    critical_step_size,
    gd_stability_threshold,
    mean_square_spectral_radius,
    sgd_stability_radius,
    sgd_stability_threshold,
)

F64 = torch.float64


def test_orthogonal_examples_single_draw_closed_form():
    # g_i = a_i e_i: coordinate i is multiplied by (1 - eta a_i^2) with probability 1/n, so the
    # mean square of residual i scales by 1 - 1/n + (1 - eta a_i^2)^2 / n, and the threshold is
    # 2 / max a_i^2.
    a2 = torch.tensor([1.0, 3.0, 0.5], dtype=F64)
    K = torch.diag(a2)
    for lr in (0.2, 0.5, 0.8):
        expected = (1 - 1 / 3 + (1 - lr * a2) ** 2 / 3).max()
        torch.testing.assert_close(sgd_stability_radius(K, lr, iters=400), expected)
    torch.testing.assert_close(sgd_stability_threshold(K, bisections=40), torch.tensor(2 / 3.0,
                               dtype=F64), rtol=1e-6, atol=0)


def test_parallel_examples_radius_is_the_mean_square_factor():
    # g_i = c_i g: the residual r_i = c_i (g . x) and one scalar s = g . x carries everything;
    # a step on example i multiplies s by (1 - eta c_i^2 |g|^2).
    c2 = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=F64)
    K = torch.outer(c2.sqrt(), c2.sqrt())  # |g| = 1
    lr = 0.3
    torch.testing.assert_close(sgd_stability_radius(K, lr), ((1 - lr * c2) ** 2).mean())


def test_full_batch_without_replacement_is_gd():
    G = torch.randn(5, 8, generator=generator(0), dtype=F64)
    K = G @ G.T
    eta_gd = gd_stability_threshold(K)
    torch.testing.assert_close(eta_gd, 2 / torch.linalg.eigvalsh(G.T @ G / 5)[-1])
    torch.testing.assert_close(sgd_stability_threshold(K, batch_size=5, bisections=40), eta_gd,
                               rtol=1e-6, atol=0)


@pytest.mark.parametrize("batch_size,replacement", [(1, False), (2, False), (3, True)])
def test_agrees_with_the_general_second_moment_operator(batch_size, replacement):
    G = torch.randn(4, 6, generator=generator(1), dtype=F64)
    K = G @ G.T
    hessians = torch.einsum("ni,nj->nij", G, G)  # example i's Hessian g_i g_i^T
    sampling = "with_replacement" if replacement else "without_replacement"
    for lr in (0.05, 0.3):
        torch.testing.assert_close(
            sgd_stability_radius(K, lr, batch_size, replacement, iters=6000),
            mean_square_spectral_radius(hessians, lr, batch_size, sampling), rtol=1e-3, atol=0)
    torch.testing.assert_close(sgd_stability_threshold(K, batch_size, replacement, iters=3000),
                               critical_step_size(hessians, batch_size, sampling), rtol=1e-3,
                               atol=0)


def test_batched_over_runs_and_step_sizes():
    G = torch.randn(3, 4, 5, generator=generator(2), dtype=F64)
    K = G @ G.transpose(-1, -2)
    lr = torch.tensor([0.05, 0.1, 0.2], dtype=F64)
    batched = sgd_stability_radius(K, lr, iters=500)
    assert batched.shape == (3,)
    for s in range(3):
        torch.testing.assert_close(batched[s], sgd_stability_radius(K[s], lr[s], iters=500))


def test_single_draw_stability_implies_the_trace_bound():
    # the chapter's Proposition: with one example per step, a stable minimum has tr H <= 2/eta,
    # i.e. eta* tr H <= 2, with equality for equal-norm orthogonal examples
    for seed in range(6):
        G = torch.randn(4, 6, generator=generator(10 + seed), dtype=F64)
        G = G * torch.rand(4, 1, generator=generator(20 + seed), dtype=F64) * 3
        K = G @ G.T
        assert float(sgd_stability_threshold(K) * K.trace() / 4) <= 2 + 1e-6  # tr H = tr K / n
    eq = torch.eye(4, dtype=F64) * 2.0
    torch.testing.assert_close(sgd_stability_threshold(eq, bisections=40) * eq.trace() / 4,
                               torch.tensor(2.0, dtype=F64), rtol=1e-6, atol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Gram"):
        sgd_stability_radius(torch.ones(3, 2, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="exceeds"):
        sgd_stability_radius(torch.eye(3, dtype=F64), 0.1, batch_size=4)
