"""PlantedQuadratic against hand-computed answers: unit rows, equiangular overlaps, the planted
sharpness, the closed-form coherence and the losses' batching."""

from __future__ import annotations

import pytest
import torch

from repro.metrics import coherence_measure
from repro.problems import PROBLEMS, PlantedQuadratic


def test_registered():
    assert PROBLEMS["planted_quadratic"] is PlantedQuadratic


@pytest.mark.parametrize("a", [0.0, 0.3, 1.0])
def test_orthogonal_directions_are_equiangular(a):
    n = 6
    p = PlantedQuadratic(n=n, d=9, alignment=a, sharpness=2.0, seed=3)
    G = p.X @ p.X.T
    # sharpness fixed: lambda_max(H) = 2; Gram = c^2 ((1 - a) I + a 11^T), c^2 = 2 n / sigma
    sigma = 1 + (n - 1) * a
    c2 = 2.0 * n / sigma
    expected = c2 * ((1 - a) * torch.eye(n, dtype=G.dtype) + a * torch.ones(n, n, dtype=G.dtype))
    torch.testing.assert_close(G, expected, rtol=1e-12, atol=1e-12)
    assert torch.linalg.eigvalsh(p.mean_hessian())[-1].item() == pytest.approx(2.0, rel=1e-12)
    assert p.planted_coherence() == pytest.approx(sigma)
    # the square root of a rounded zero overlap is ~1e-8: coherence is accurate to ~1e-7
    assert coherence_measure(p.hessians()).item() == pytest.approx(sigma, rel=1e-6)


def test_hessians_and_losses():
    p = PlantedQuadratic(n=4, d=7, alignment=0.2, seed=0)
    w = torch.randn(3, 5, 7, dtype=torch.float64)
    # the mean loss is w^T H w / 2, the per-example ones w^T H_i w / 2, batched over (3, 5)
    H, Hs = p.mean_hessian(), p.hessians()
    torch.testing.assert_close(p.loss(w), 0.5 * torch.einsum("...a,ab,...b->...", w, H, w))
    torch.testing.assert_close(p.example_losses(w),
                               0.5 * torch.einsum("...a,iab,...b->...i", w, Hs, w))
    torch.testing.assert_close(Hs.mean(0), H)
    assert p.loss(w).shape == (3, 5)
    hess = torch.autograd.functional.hessian(lambda v: p.loss(v), w[0, 0])
    torch.testing.assert_close(hess, H)


def test_gaussian_directions_any_dimension():
    p = PlantedQuadratic(n=10, d=4, alignment=0.5, directions="gaussian", seed=1)
    assert p.X.shape == (10, 4)
    assert torch.linalg.eigvalsh(p.mean_hessian())[-1].item() == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError):
        p.planted_coherence()


def test_seeded_and_validated():
    a = PlantedQuadratic(n=5, d=8, alignment=0.4, seed=2).X
    torch.testing.assert_close(a, PlantedQuadratic(n=5, d=8, alignment=0.4, seed=2).X)
    with pytest.raises(ValueError):
        PlantedQuadratic(n=5, d=5)                       # orthogonal needs d >= n + 1
    with pytest.raises(ValueError):
        PlantedQuadratic(n=5, d=8, alignment=1.5)
    with pytest.raises(ValueError):
        PlantedQuadratic(n=5, d=8, directions="sideways")
