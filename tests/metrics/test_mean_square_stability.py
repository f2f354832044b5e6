"""The second-moment operator of linearised SGD against hand-computed answers: B = n is gradient
descent (2 / lambda_max), identical Hessians, orthogonal rank-one Hessians, the sampling
coefficients against E[m_i m_j] of the samplers, bisection against the closed form, and the
operator against a direct expectation over every batch."""

from __future__ import annotations

import itertools

import pytest
import torch

from repro.metrics import (
    critical_step_size,
    mean_square_spectral_radius,
    sample_batches,
    sampling_coefficients,
    second_moment_operator,
)
from repro.problems import PlantedQuadratic

F64 = torch.float64
SAMPLINGS = ("without_replacement", "with_replacement", "bernoulli")


def random_hessians(n=5, d=3, r=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d, r, generator=g, dtype=F64)
    return A @ A.transpose(1, 2)


@pytest.mark.parametrize("sampling", ["without_replacement", "bernoulli"])
def test_full_batch_is_gradient_descent(sampling):
    H = random_hessians()
    top = torch.linalg.eigvalsh(H.mean(0))[-1]
    eta = critical_step_size(H, 5, sampling)
    assert eta.item() == pytest.approx(2 / top.item(), rel=1e-12)


def test_identical_hessians():
    # H_i = H for all i: without replacement every batch gives H, so eta* = 2/lambda; Bernoulli
    # draws K ~ Bin(n, B/n) examples: E(1 - eta lambda K/B)^2 = 1 at
    # eta = 2 / (lambda (1 + 1/B - 1/n))
    one = torch.diag(torch.tensor([2.0, 1.0], dtype=F64))
    H = one.expand(6, 2, 2)
    B = torch.tensor([1.0, 3.0], dtype=F64)
    torch.testing.assert_close(critical_step_size(H, B), torch.full((2,), 1.0, dtype=F64))
    torch.testing.assert_close(critical_step_size(H, B, "bernoulli"),
                               1 / (1 + 1 / B - 1 / 6))


def test_orthogonal_rank_one():
    # x_i = sqrt(n) e_i: each direction is hit w.p. B/n with curvature n/B per unit step:
    # E(1 - eta n m/B)^2 = 1 at eta = 2B/n (without replacement and Bernoulli alike)
    n = 8
    H = n * torch.diag_embed(torch.eye(n, dtype=F64))
    B = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=F64)
    for sampling in ("without_replacement", "bernoulli"):
        torch.testing.assert_close(critical_step_size(H, B, sampling), 2 * B / n)


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_bisection_matches_closed_form(sampling):
    H = PlantedQuadratic(n=6, d=7, alignment=0.3).hessians()
    B = torch.tensor([1.0, 2.0, 5.0], dtype=F64)
    torch.testing.assert_close(critical_step_size(H, B, sampling, method="bisection", rtol=1e-10),
                               critical_step_size(H, B, sampling), rtol=1e-8, atol=0)


def test_spectral_radius_crosses_one_at_the_critical_step():
    H = random_hessians(seed=2)
    B = torch.tensor([1.0, 3.0], dtype=F64)
    eta = critical_step_size(H, B)
    torch.testing.assert_close(mean_square_spectral_radius(H, eta, B), torch.ones(2, dtype=F64))
    assert (mean_square_spectral_radius(H, 0.99 * eta, B) < 1).all()
    assert (mean_square_spectral_radius(H, 1.01 * eta, B) > 1).all()
    grid = mean_square_spectral_radius(H, torch.tensor([[0.1], [0.2]], dtype=F64), B)
    assert grid.shape == (2, 2)


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_coefficients_match_the_samplers(sampling):
    n, B, runs = 5, 3, 200_000
    m = sample_batches(n, B, runs, sampling, torch.Generator().manual_seed(0))
    c1, c2 = sampling_coefficients(n, B, sampling)
    second = (m[:, :, None] * m[:, None, :]).mean(0) * n**2 / B**2
    off = second[~torch.eye(n, dtype=torch.bool)].mean()
    diag = second.diagonal().mean()
    # E[m_i m_j] n^2/B^2 = c1 off the diagonal, c1 + n c2 on it
    assert off.item() == pytest.approx(c1.item(), abs=0.02)
    assert diag.item() == pytest.approx(c1.item() + n * c2.item(), abs=0.05)
    if sampling == "without_replacement":
        assert (m.sum(1) == B).all()


def test_operator_is_the_exact_expectation_over_batches():
    # without replacement: average J Sigma J^T over all C(n, B) batches, in H's eigenbasis
    n, B, eta = 4, 2, 0.3
    H = random_hessians(n=n, d=3, seed=4)
    h, V = torch.linalg.eigh(H.mean(0))
    Hs = V.T @ H @ V
    Sigma = torch.tensor([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 0.5]], dtype=F64)
    expected = torch.zeros(3, 3, dtype=F64)
    batches = list(itertools.combinations(range(n), B))
    for batch in batches:
        J = torch.eye(3, dtype=F64) - eta / B * Hs[list(batch)].sum(0)
        expected += J @ Sigma @ J.T / len(batches)
    T = second_moment_operator(H, eta, B)
    torch.testing.assert_close((T @ Sigma.reshape(-1)).reshape(3, 3), expected)
