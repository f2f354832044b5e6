"""repro.solvers.lasso_dct: the DCT basis and the Lasso in it."""

from __future__ import annotations

import math

import numpy as np
from scipy.fft import dctn

import repro
from repro.problems import gaussian_matrix
from repro.solvers import dct_basis, lasso_dct


def test_dct_basis_is_the_inverse_orthonormal_dct():
    psi = dct_basis((4, 5))
    np.testing.assert_allclose(psi.T @ psi, np.eye(20), atol=1e-12)
    x = np.random.default_rng(0).random((4, 5))
    np.testing.assert_allclose(psi.T @ x.ravel(), dctn(x, norm="ortho").ravel(), atol=1e-12)


def test_lasso_dct_recovers_a_dct_sparse_image():
    shape, n, m = (8, 8), 64, 32
    psi = dct_basis(shape)
    c = np.zeros(n)
    c[[0, 3, 17]] = [2.0, -1.0, 0.5]
    x = psi @ c
    A = gaussian_matrix(m, n, repro.generator(0), std=1 / math.sqrt(m)).double().numpy()
    out = lasso_dct(A[None], (A @ x)[None], shape, alpha=1e-5, clip=None, tol=1e-8)
    np.testing.assert_allclose(out[0], x, atol=1e-3)
    # Padded rows (m given) are ignored; clipping maps into [0, 1].
    Ap = np.concatenate([A, np.zeros((5, n))])[None]
    yp = np.concatenate([A @ x, np.zeros(5)])[None]
    np.testing.assert_allclose(lasso_dct(Ap, yp, shape, alpha=1e-5, m=[m], clip=None, tol=1e-8),
                               out, atol=1e-6)
    clipped = lasso_dct(A[None], (A @ x)[None], shape, alpha=1e-5)
    assert clipped.min() >= 0 and clipped.max() <= 1
