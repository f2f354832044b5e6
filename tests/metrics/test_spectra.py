"""repro.metrics.spectra: singular values, nuclear norm and effective rank against exact answers."""

import math

import pytest
import torch

from repro.metrics import effective_rank, nuclear_norm, singular_values


def test_singular_values_and_nuclear_norm():
    X = torch.diag(torch.tensor([3.0, -2.0, 0.0]))
    assert torch.allclose(singular_values(X), torch.tensor([3.0, 2.0, 0.0]))
    assert nuclear_norm(X).item() == pytest.approx(5.0)
    Q, _ = torch.linalg.qr(torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)))
    Y = Q @ torch.diag(torch.tensor([4.0, 1.0, 0.5, 0.0])) @ Q.transpose(-1, -2)
    assert torch.allclose(nuclear_norm(Y), torch.tensor([5.5, 5.5]), atol=1e-5)


def test_effective_rank():
    assert effective_rank(torch.eye(5)).item() == pytest.approx(5.0)
    two = torch.diag(torch.tensor([2.0, 2.0, 0.0, 0.0]))
    assert effective_rank(two).item() == pytest.approx(2.0)
    # singular values (3, 1): p = (3/4, 1/4), entropy = -(0.75 ln 0.75 + 0.25 ln 0.25)
    H = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0]))).item() == pytest.approx(math.exp(H))
