"""repro.models.resmlp: the residual MLP with a skip-connection switch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from repro.models import MODELS, ResMLP


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_shapes_registry_and_validation():
    net = ResMLP(40, 16, 3, 10, generator=gen(0))
    assert net(torch.randn(5, 40)).shape == (5, 10)
    assert MODELS["resmlp"] is ResMLP
    assert len(net.linears) == 2 + 2 * 3
    for bad in (dict(depth=-1), dict(norm="batch"), dict(init="xavier")):
        with pytest.raises(ValueError):
            ResMLP(**{**dict(d_in=4, width=3, depth=1, d_out=2), **bad})


def test_same_seed_same_weights_with_and_without_skips():
    a, b = ResMLP(6, 5, 2, 3, skip=True, generator=gen(1)), ResMLP(6, 5, 2, 3, skip=False,
                                                                   generator=gen(1))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x = torch.randn(4, 6)
    assert not torch.allclose(a(x), b(x))


def test_forward_by_hand():
    net = ResMLP(3, 4, 1, 2, generator=gen(2))
    x = torch.randn(7, 3)
    h = F.relu(net.input(x))
    blk = net.blocks[0]
    z = blk["fc2"](F.relu(blk["fc1"](h)))
    torch.testing.assert_close(net(x), net.output(F.relu(h + z)))
    net.skip = False
    torch.testing.assert_close(net(x), net.output(F.relu(z)))
    # Kaiming: zero biases, weight variance 2 / fan_in, and the merge scaled by 1/sqrt(2)
    k = ResMLP(3, 400, 1, 2, init="kaiming", generator=gen(3))
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in k.linears)
    assert abs(k.blocks[0]["fc1"].weight.var().item() * 400 / 2 - 1) < 0.02
    h = F.relu(k.input(x))
    z = k.blocks[0]["fc2"](F.relu(k.blocks[0]["fc1"](h)))
    torch.testing.assert_close(k(x), k.output(F.relu((h + z) / math.sqrt(2))))


def test_layer_norm_block():
    net = ResMLP(3, 4, 2, 2, norm="layer", generator=gen(4))
    assert "norm" in net.blocks[0]
    x = torch.randn(6, 3)
    h = F.relu(net.input(x))
    for blk in net.blocks:
        h = F.relu(h + blk["norm"](blk["fc2"](F.relu(blk["fc1"](h)))))
    torch.testing.assert_close(net(x), net.output(h))
