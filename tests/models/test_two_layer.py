"""repro.models.two_layer: the formula by hand, the width scalings, frozen readouts, seeded
initialisation and independence of the batched runs."""

import pytest
import torch

from repro import generator
from repro.models import MODELS, TwoLayerNet

F64 = torch.float64


def test_registered():
    assert MODELS["two_layer"] is TwoLayerNet


@pytest.mark.parametrize("activation", ["relu", "tanh", "identity", "quadratic", "poly"])
def test_output_is_the_formula(activation):
    net = TwoLayerNet(3, 5, runs=2, scaling="mean_field", output_scale=2.0,
                      activation=activation, eps=0.3, bias=True, generator=generator(0))
    with torch.no_grad():
        net.b.copy_(torch.randn(2, 5, generator=generator(1), dtype=F64))
    x = torch.randn(4, 3, generator=generator(2), dtype=F64)
    phis = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda z: z,
            "quadratic": lambda z: z**2, "poly": lambda z: z + 0.3 * z**2 / 2}
    for s in range(2):
        expected = torch.stack([
            2.0 / 5 * sum(net.a[s, j] * phis[activation](net.w[s, j] @ x[i] + net.b[s, j])
                          for j in range(5)) for i in range(4)])
        torch.testing.assert_close(net(x)[s], expected)
    # per-run inputs (S, m, d) give the same as shared ones
    torch.testing.assert_close(net(x.expand(2, 4, 3)), net(x))


def test_width_scalings():
    x = torch.randn(7, 4, generator=generator(3), dtype=F64)
    ntk = TwoLayerNet(4, 100, scaling="ntk", generator=generator(4))
    mf = TwoLayerNet(4, 100, scaling="mean_field", generator=generator(4))
    # same weights, outputs differ by the factor N^(1/2)
    torch.testing.assert_close(ntk(x), mf(x) * 100**0.5)
    assert ntk.scale == pytest.approx(0.1) and mf.scale == pytest.approx(0.01)
    # at initialisation the NTK output has variance of order one, the mean-field one ~1/N
    wide = TwoLayerNet(4, 4000, runs=8, scaling="ntk", generator=generator(5))
    assert 0.05 < float(wide(x).detach().var()) < 5


def test_frozen_readout_and_seeding():
    net = TwoLayerNet(3, 6, runs=2, train_readout=False, generator=generator(6))
    names = {name for name, _ in net.named_parameters()}
    assert names == {"w"} and "a" in dict(net.named_buffers())
    again = TwoLayerNet(3, 6, runs=2, train_readout=False, generator=generator(6))
    assert torch.equal(net.w, again.w) and torch.equal(net.a, again.a)


def test_runs_are_independent():
    net = TwoLayerNet(3, 6, runs=3, bias=True, generator=generator(7))
    x = torch.randn(5, 3, generator=generator(8), dtype=F64)
    net(x)[1].sum().backward()
    for p in net.parameters():
        assert p.grad[0].abs().max() == 0 and p.grad[2].abs().max() == 0
        assert p.grad[1].abs().max() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="scaling"):
        TwoLayerNet(3, 4, scaling="lazy")
    with pytest.raises(ValueError, match="activation"):
        TwoLayerNet(3, 4, activation="swish")
    with pytest.raises(ValueError, match="inputs"):
        TwoLayerNet(3, 4)(torch.ones(2, 5, dtype=F64))


def test_bias_std_draws_biases_after_the_other_weights():
    plain = TwoLayerNet(1, 6, runs=2, bias=True, generator=generator(5))
    drawn = TwoLayerNet(1, 6, runs=2, bias=True, bias_std=0.5, generator=generator(5))
    # the default keeps zero biases; with bias_std, the weights and readouts are unchanged
    assert torch.equal(plain.b, torch.zeros(2, 6, dtype=F64))
    torch.testing.assert_close(drawn.w, plain.w, rtol=0, atol=0)
    torch.testing.assert_close(drawn.a, plain.a, rtol=0, atol=0)
    g = generator(5)
    torch.randn(2, 6, 1, generator=g, dtype=F64)
    torch.randn(2, 6, generator=g, dtype=F64)
    torch.testing.assert_close(drawn.b, 0.5 * torch.randn(2, 6, generator=g, dtype=F64))
    with pytest.raises(ValueError, match="bias=True"):
        TwoLayerNet(1, 6, bias_std=0.5)
    with pytest.raises(ValueError, match="bias_std"):
        TwoLayerNet(1, 6, bias=True, bias_std=-1.0)


def test_readouts_of_one_average_the_neurons_and_keep_the_seeds_other_weights():
    x = torch.randn(5, 3, generator=generator(0), dtype=F64)
    gauss = TwoLayerNet(3, 4, runs=2, scaling="mean_field", output_scale=2.0, bias=True,
                        bias_std=0.5, generator=generator(9))
    ones = TwoLayerNet(3, 4, runs=2, scaling="mean_field", output_scale=2.0, bias=True,
                       bias_std=0.5, readout="ones", train_readout=False, generator=generator(9))
    assert torch.equal(ones.a, torch.ones(2, 4, dtype=F64)) and "a" in dict(ones.named_buffers())
    torch.testing.assert_close(ones.w, gauss.w, rtol=0, atol=0)
    torch.testing.assert_close(ones.b, gauss.b, rtol=0, atol=0)
    z = torch.einsum("md,snd->smn", x, ones.w) + ones.b[:, None]
    torch.testing.assert_close(ones(x), 2.0 * torch.relu(z).mean(-1))   # alpha / N * sum_j
    with pytest.raises(ValueError, match="readout"):
        TwoLayerNet(3, 4, readout="zeros")
