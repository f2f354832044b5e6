"""repro.linalg: orthogonal frames, balanced factors and PSD powers, against their definitions and
against the notebook helpers they replace (identical draws)."""

from __future__ import annotations

import pytest
import torch

from repro import generator
from repro.linalg import balanced_factors, psd_power, random_orthogonal, random_orthonormal

F64 = torch.float64


def old_random_orthogonal(n, g):
    """Chapters 2 and 3 before the restructure, verbatim."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g))
    return q * torch.sign(torch.diagonal(r))


def old_balanced_factors(singular_values, depth, g):
    """Chapter 2's derivation before the restructure, verbatim."""
    n = len(singular_values)
    Q = [old_random_orthogonal(n, g) for _ in range(depth + 1)]
    root = torch.diag(singular_values ** (1.0 / depth))
    return [(Q[j + 1] @ root @ Q[j].T)[None] for j in range(depth)]


def old_psd_power(M, alpha):
    """Chapter 3's derivation before the restructure, verbatim."""
    values, vectors = torch.linalg.eigh(M)
    zero = values <= 1e-12 * values.abs().amax(-1, keepdim=True)
    powered = torch.where(zero, torch.full_like(values, 1.0 if alpha == 0 else 0.0),
                          values.clamp_min(1e-300) ** alpha)
    return vectors @ torch.diag_embed(powered) @ vectors.transpose(-1, -2)


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_random_orthogonal_is_orthogonal(n):
    Q = random_orthogonal(n, generator(0), dtype=F64)
    torch.testing.assert_close(Q.T @ Q, torch.eye(n, dtype=F64), rtol=0, atol=1e-13)
    torch.testing.assert_close(Q @ Q.T, torch.eye(n, dtype=F64), rtol=0, atol=1e-13)


@pytest.mark.parametrize("n", [3, 8])
def test_random_orthogonal_equals_the_chapters_old_formula(n):
    g_new, g_old = generator(7), generator(7)
    for _ in range(3):               # and the generator advances the same way
        assert torch.equal(random_orthogonal(n, g_new), old_random_orthogonal(n, g_old))


def test_random_orthogonal_fixes_the_signs_of_r():
    # the sign convention makes R's diagonal positive: Q^T G has a positive diagonal
    g = generator(3)
    G = torch.randn(6, 6, generator=generator(3), dtype=F64)
    Q = random_orthogonal(6, g, dtype=F64)
    assert bool((torch.diagonal(Q.T @ G) > 0).all())
    assert not torch.equal(random_orthogonal(6, generator(3)), random_orthogonal(6, generator(4)))


def test_random_orthonormal_batched_columns():
    Q = random_orthonormal((4, 9), 3, generator(1), dtype=F64)
    assert Q.shape == (4, 9, 3)
    eye = torch.eye(3, dtype=F64).expand(4, 3, 3)
    torch.testing.assert_close(Q.transpose(-1, -2) @ Q, eye, rtol=0, atol=1e-13)
    # each instance is its own draw
    assert not torch.allclose(Q[0], Q[1])


@pytest.fixture
def float64_default():
    """The chapters of Part I compute in float64 by default (torch.set_default_dtype)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_balanced_factors_are_balanced_and_multiply_to_the_spectrum(depth, dtype, request):
    if dtype == torch.float64:
        request.getfixturevalue("float64_default")
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    s = torch.tensor([3.0, 1.0, 0.5, 0.1], dtype=dtype)
    Ws = balanced_factors(s, depth, generator(2))
    assert len(Ws) == depth and all(W.shape == (1, 4, 4) and W.dtype == dtype for W in Ws)
    Ws = [W[0] for W in Ws]
    for j in range(depth - 1):                     # W_{j+1}^T W_{j+1} = W_j W_j^T
        torch.testing.assert_close(Ws[j + 1].T @ Ws[j + 1], Ws[j] @ Ws[j].T, **tol)
    product = Ws[0]
    for W in Ws[1:]:                               # W_N ... W_1 (W_1 first in the list)
        product = W @ product
    torch.testing.assert_close(torch.linalg.svdvals(product), s, **tol)
    # each factor has the N-th root of the spectrum
    for W in Ws:
        torch.testing.assert_close(torch.linalg.svdvals(W), s ** (1.0 / depth), **tol)


def test_balanced_factors_follow_the_dtype_of_the_singular_values():
    s = torch.tensor([2.0, 1.0], dtype=F64)            # float64 under a float32 default
    Ws = balanced_factors(s, 2, generator(0))
    assert all(W.dtype == F64 for W in Ws)


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_balanced_factors_equal_chapter_2s_helper(default, request):
    if default == "float64":
        request.getfixturevalue("float64_default")      # chapter 2's setting
    s = torch.tensor([2.0, 1.0, 0.3])
    new = balanced_factors(s, 3, generator(11))
    old = old_balanced_factors(s, 3, generator(11))
    assert all(torch.equal(a, b) for a, b in zip(new, old, strict=True))


def random_psd(n, rank, seed, batch=()):
    g = generator(seed)
    B = torch.randn(*batch, n, rank, generator=g, dtype=F64)
    return B @ B.transpose(-1, -2)


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 1.0, 1.5, 3.0])
def test_psd_power_against_the_eigendecomposition(alpha):
    M = random_psd(5, 5, seed=0, batch=(3,))                 # positive definite, batched
    values, vectors = torch.linalg.eigh(M)
    expected = vectors @ torch.diag_embed(values**alpha) @ vectors.transpose(-1, -2)
    torch.testing.assert_close(psd_power(M, alpha), expected, rtol=1e-10, atol=1e-12)


def test_psd_power_identities():
    M = random_psd(6, 6, seed=1)
    torch.testing.assert_close(psd_power(M, 1.0), M, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(psd_power(M, 0.0), torch.eye(6, dtype=F64), rtol=0, atol=1e-12)
    root = psd_power(M, 0.5)
    torch.testing.assert_close(root @ root, M, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(psd_power(M, 0.3) @ psd_power(M, 0.7), M, rtol=1e-9, atol=1e-11)


def test_psd_power_keeps_the_null_space_of_a_rank_deficient_matrix():
    M = random_psd(6, 2, seed=2)                     # rank 2: four "zero" eigenvalues ~1e-16
    P = psd_power(M, 0.2)
    values, vectors = torch.linalg.eigh(M)
    top = vectors[:, -2:]
    expected = top @ torch.diag(values[-2:] ** 0.2) @ top.T
    torch.testing.assert_close(P, expected, rtol=1e-10, atol=1e-12)
    # without the relative zero threshold, 1e-16 ** 0.2 ~ 6e-4 would leak into the null space
    null = vectors[:, :4]
    assert float((null.T @ P @ null).abs().max()) < 1e-12


@pytest.mark.parametrize("alpha", [0.0, 0.25, 2.0 / 3.0, 1.0])
def test_psd_power_equals_chapter_3s_helper(alpha):
    for M in (random_psd(4, 4, seed=3, batch=(2,)), random_psd(5, 2, seed=4)):
        assert torch.equal(psd_power(M, alpha), old_psd_power(M, alpha))
