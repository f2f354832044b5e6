"""repro.problems.compressed_sensing: the Gaussian matrix, noisy measurements and padded batches."""

from __future__ import annotations

import math

import pytest
import torch

import repro
from repro.problems import CompressedSensing, gaussian_matrix, pad_problems


def test_gaussian_matrix_scale_and_seed():
    a = gaussian_matrix(200, 300, repro.generator(0), std=1 / math.sqrt(200))
    assert a.shape == (200, 300)
    assert abs(a.var().item() * 200 - 1) < 0.02
    assert torch.equal(a, gaussian_matrix(200, 300, repro.generator(0), std=1 / math.sqrt(200)))
    assert gaussian_matrix(3, 4, repro.generator(0), batch=(2, 5)).shape == (2, 5, 3, 4)


def test_noiseless_measurements_are_exact_and_noise_has_its_std():
    x = torch.rand(4, 10, generator=repro.generator(1))
    cs = CompressedSensing(10, 6, noise_std=0.0, seed=3, batch=(4,))
    torch.testing.assert_close(cs.measure(x), torch.einsum("bmn,bn->bm", cs.A, x))
    noisy = CompressedSensing(10, 6, noise_std=0.5, seed=3, batch=(4,))
    assert torch.equal(noisy.A, cs.A)  # A first, then the noise, from the same seed
    big = CompressedSensing(10, 5000, noise_std=0.5, seed=4)
    residual = big.measure(torch.zeros(10))
    assert abs(residual.std().item() - 0.5) < 0.02


def test_pad_problems_keeps_the_residual():
    g = repro.generator(5)
    As = [torch.randn(2, m, 7, generator=g) for m in (3, 5)]
    ys = [torch.randn(2, m, generator=g) for m in (3, 5)]
    A, y, m = pad_problems(As, ys)
    assert A.shape == (4, 5, 7) and y.shape == (4, 5) and m.tolist() == [3, 3, 5, 5]
    assert bool((A[:2, 3:] == 0).all()) and bool((y[:2, 3:] == 0).all())
    x = torch.randn(7, generator=g)
    padded = ((y - A @ x) ** 2).sum(-1)
    direct = torch.cat([((yy - aa @ x) ** 2).sum(-1) for aa, yy in zip(As, ys)])
    torch.testing.assert_close(padded, direct)
    with pytest.raises(ValueError):
        pad_problems(As, [ys[1], ys[0]])
