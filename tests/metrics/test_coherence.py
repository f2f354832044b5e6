"""The coherence measure and Theorem 1's step size against hand-computed answers."""

from __future__ import annotations

import math

import pytest
import torch

from repro.metrics import (
    coherence_matrix,
    coherence_measure,
    per_example_hessians,
    predicts_instability,
    theorem1_step_size,
)

F64 = torch.float64


def rank_one(X):
    return X[:, :, None] * X[:, None, :]


def test_orthogonal_and_identical_rank_one():
    # orthogonal x_i: S = diag(|x_i|^2), sigma = 1; identical: S = lambda 11^T, sigma = n
    X = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=F64))
    torch.testing.assert_close(coherence_matrix(rank_one(X)), torch.diag(torch.tensor([1.0, 4, 9],
                                                                                    dtype=F64)))
    assert coherence_measure(rank_one(X)).item() == pytest.approx(1.0)
    same = torch.tensor([[1.0, 2.0, 0.0]] * 4, dtype=F64)
    assert coherence_measure(rank_one(same)).item() == pytest.approx(4.0)


def test_coherence_matrix_is_frobenius_of_square_roots():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 4, 2, generator=g, dtype=F64)
    H = A @ A.transpose(1, 2)                                     # rank-2 PSD
    vals, vecs = torch.linalg.eigh(H)
    root = vecs @ torch.diag_embed(vals.clamp_min(0).sqrt()) @ vecs.transpose(1, 2)
    S = coherence_matrix(H)
    for i in range(3):
        for j in range(3):
            assert S[i, j].item() == pytest.approx(torch.linalg.norm(root[i] @ root[j]).item(),
                                                   rel=1e-8)
    # batched over leading dimensions
    assert coherence_matrix(torch.stack([H, H])).shape == (2, 3, 3)
    assert coherence_measure(torch.stack([H, 2 * H])).shape == (2,)


def test_theorem1_step_size_by_hand():
    # n = 4 orthogonal unit x_i: sigma = 1, lambda_1(H) = 1/4; eta_1 = 4 / sqrt(4/B - 1)
    H = rank_one(torch.eye(4, dtype=F64))
    B = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    eta = theorem1_step_size(H, B)
    torch.testing.assert_close(eta[:2], torch.tensor([4 / math.sqrt(3), 4.0], dtype=F64))
    assert math.isinf(eta[2].item())
    assert predicts_instability(H, 4.5, 2).item() and not predicts_instability(H, 3.5, 2).item()


def test_per_example_hessians_of_a_linear_model():
    # squared loss (f(x) - y)^2 / 2 of a linear model without bias: H_i = x_i x_i^T
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, 1, generator=g, dtype=F64)
    model = torch.nn.Linear(3, 1, bias=False).double()
    H = per_example_hessians(model, lambda out, t: 0.5 * ((out - t) ** 2).sum(), X, y)
    torch.testing.assert_close(H, rank_one(X))
    # with a bias, the parameters are (weight, bias): H_i = z_i z_i^T with z_i = (x_i, 1)
    model = torch.nn.Linear(3, 1).double()
    H = per_example_hessians(model, lambda out, t: 0.5 * ((out - t) ** 2).sum(), X, y)
    Z = torch.cat([X, torch.ones(5, 1, dtype=F64)], 1)
    torch.testing.assert_close(H, rank_one(Z))
