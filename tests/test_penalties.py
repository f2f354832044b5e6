"""Explicit matrix penalties against exact values and gradients."""

import math

import pytest
import torch

from repro.penalties import NuclearFrobeniusRatio, NuclearNorm


def test_nuclear_norm_value_and_gradient():
    X = torch.diag(torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64)).requires_grad_(True)
    pen = NuclearNorm(weight=0.5)
    value = pen(X)
    assert value.item() == pytest.approx(3.0)
    value.backward()
    # the gradient of |X|_* at a full-rank X = U S V^T is U V^T; here diag(sign)
    signs = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    assert torch.allclose(X.grad, 0.5 * signs)


def test_nuclear_frobenius_ratio():
    ratio = NuclearFrobeniusRatio()
    assert ratio(torch.eye(4)).item() == pytest.approx(2.0)                 # sqrt(rank)
    rank_one = torch.outer(torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0, 0.5]))
    assert ratio(rank_one).item() == pytest.approx(1.0)
    assert ratio(5 * torch.eye(3)).item() == pytest.approx(math.sqrt(3))     # scale-free
    assert torch.isfinite(ratio(torch.zeros(2, 2)))


def test_penalties_are_batched():
    X = torch.stack([torch.eye(3), 2 * torch.eye(3)])
    assert torch.allclose(NuclearNorm()(X), torch.tensor([3.0, 6.0]))
    assert torch.allclose(NuclearFrobeniusRatio(2.0)(X), torch.full((2,), 2 * math.sqrt(3)))
