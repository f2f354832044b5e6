"""repro.metrics.fourier_probes: the IPR of spikes and flat vectors by hand, a pure cosine's
spectrum has IPR 1, the mean over a neuron's vectors, and the two pruning masks."""

import math

import pytest
import torch

from repro import generator
from repro.metrics import (
    fourier_ipr,
    fourier_spectrum,
    ipr,
    ipr_pruning_mask,
    neuron_ipr,
    random_pruning_mask,
)


def test_ipr_by_hand():
    assert ipr(torch.tensor([0.0, -3.0, 0.0])).item() == pytest.approx(1.0)
    assert ipr(torch.ones(4)).item() == pytest.approx(1 / 4)          # K^(1 - r), r = 2
    assert ipr(torch.ones(4), r=3).item() == pytest.approx(1 / 16)   # K^(1 - r), r = 3
    a = torch.tensor([1.0, 2.0, 2.0])                                 # |a| = 3
    assert ipr(a).item() == pytest.approx((1 + 16 + 16) / 81)
    with pytest.raises(ValueError):
        ipr(torch.zeros(3))


def test_cosine_has_one_frequency():
    p, k = 11, 3
    t = torch.arange(p, dtype=torch.float64)
    w = torch.cos(2 * math.pi * k * t / p + 0.7)
    spec = fourier_spectrum(w)
    assert spec.shape == (p // 2 + 1,) and spec.argmax().item() == k
    assert spec[k].item() == pytest.approx(p / 2)
    assert fourier_ipr(w).item() == pytest.approx(1.0)
    # two frequencies of equal amplitude: IPR 1/2
    w2 = w + torch.sin(2 * math.pi * 5 * t / p)
    assert fourier_ipr(w2).item() == pytest.approx(0.5)


def test_neuron_ipr_is_the_mean_over_vectors():
    p = 7
    t = torch.arange(p, dtype=torch.float64)
    cos = torch.cos(2 * math.pi * t / p).expand(2, 3, p)
    flat = torch.zeros(2, 3, p, dtype=torch.float64)
    flat[..., 0] = 1.0                                                # a spike: flat spectrum
    out = neuron_ipr({"u": cos, "v": cos, "w": flat})
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, torch.full((2, 3), (1 + 1 + 1 / 4) / 3, dtype=torch.float64))
    torch.testing.assert_close(neuron_ipr(cos), torch.ones(2, 3, dtype=torch.float64))


def test_ipr_pruning_mask_drops_the_lowest():
    scores = torch.tensor([[0.5, 0.1, 0.9, 0.3], [0.2, 0.8, 0.7, 0.1]])
    keep = ipr_pruning_mask(scores, 0.5)
    assert keep.tolist() == [[True, False, True, False], [False, True, True, False]]
    assert bool(ipr_pruning_mask(scores, 0.0).all())
    assert ipr_pruning_mask(scores, 0.3).sum(1).tolist() == [3, 3]   # round(1.2) = 1 dropped
    with pytest.raises(ValueError):
        ipr_pruning_mask(scores, 1.5)


def test_random_pruning_mask_counts_and_seeding():
    keep = random_pruning_mask((5, 20), 0.25, generator(0))
    assert keep.sum(1).tolist() == [15] * 5
    assert torch.equal(keep, random_pruning_mask((5, 20), 0.25, generator(0)))
    assert not torch.equal(keep, random_pruning_mask((5, 20), 0.25, generator(1)))
    # every neuron is dropped about equally often
    many = random_pruning_mask((4000, 8), 0.5, generator(2)).double().mean(0)
    torch.testing.assert_close(many, torch.full((8,), 0.5, dtype=torch.float64), rtol=0,
                               atol=0.03)
