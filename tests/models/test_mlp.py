"""repro.models.mlp: MLP and EnsembleMLP (S independent MLPs in batched tensors)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.losses import per_model_cross_entropy
from repro.models import MLP, EnsembleMLP

SIZES = [6, 5, 4, 3]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_mlp_shape_and_layers():
    mlp = MLP([40, 32, 32, 10], activation="tanh", generator=gen(0))
    assert mlp(torch.randn(7, 40)).shape == (7, 10)
    assert [m.out_features for m in mlp.linears] == [32, 32, 10]
    assert isinstance(mlp[-1], nn.Linear)  # logits: no activation after the last layer
    with pytest.raises(ValueError, match="activation"):
        MLP([3, 2], activation="swish!")
    with pytest.raises(ValueError, match="sizes"):
        MLP([3])


def test_mlp_same_generator_seed_same_weights():
    a, b = MLP(SIZES, generator=gen(1)), MLP(SIZES, generator=gen(1))
    c = MLP(SIZES, generator=gen(2))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


def test_ensemble_member_i_equals_the_plain_mlp_of_its_slice():
    ensemble = EnsembleMLP(5, SIZES, generator=gen(0))
    x = torch.randn(11, SIZES[0])
    xs = torch.randn(5, 11, SIZES[0])
    out, out_own = ensemble(x), ensemble(xs)
    assert out.shape == (5, 11, SIZES[-1])
    for i in range(5):
        member = ensemble.member(i)
        assert isinstance(member, MLP)
        torch.testing.assert_close(out[i], member(x))
        torch.testing.assert_close(out_own[i], member(xs[i]))
        # and the member really is built from slice i
        for k, layer in enumerate(member.linears):
            assert torch.equal(layer.weight, ensemble.weights[k][i])
            assert torch.equal(layer.bias, ensemble.biases[k][i])
    # different models start from different weights
    assert not torch.equal(ensemble.weights[0][0], ensemble.weights[0][1])


def test_ensemble_from_mlps_round_trip():
    mlps = [MLP(SIZES, activation="gelu", generator=gen(s)) for s in range(3)]
    ensemble = EnsembleMLP.from_mlps(mlps)
    x = torch.randn(4, SIZES[0])
    for i, mlp in enumerate(mlps):
        torch.testing.assert_close(ensemble(x)[i], mlp(x))
    with pytest.raises(ValueError, match="same sizes"):
        EnsembleMLP.from_mlps([MLP([6, 3]), MLP([6, 4, 3])])


def test_ensemble_gradients_are_independent_per_model():
    ensemble = EnsembleMLP(3, SIZES, generator=gen(0))
    x, y = torch.randn(8, SIZES[0]), torch.randint(0, SIZES[-1], (8,))
    # the gradient of model 0's loss leaves models 1 and 2 untouched
    per_model_cross_entropy(ensemble(x), y)[0].backward()
    for param in ensemble.parameters():
        assert param.grad[0].abs().sum() > 0
        assert torch.equal(param.grad[1:], torch.zeros_like(param.grad[1:]))

    # the summed loss gives each model exactly the gradient its plain MLP would get
    ensemble.zero_grad()
    per_model_cross_entropy(ensemble(x), y).sum().backward()
    for i in range(3):
        mlp = ensemble.member(i)
        F.cross_entropy(mlp(x), y).backward()
        for k, layer in enumerate(mlp.linears):
            torch.testing.assert_close(ensemble.weights[k].grad[i], layer.weight.grad)
            torch.testing.assert_close(ensemble.biases[k].grad[i], layer.bias.grad)


def test_ensemble_same_generator_seed_same_weights():
    a = EnsembleMLP(4, SIZES, generator=gen(7))
    b = EnsembleMLP(4, SIZES, generator=gen(7))
    c = EnsembleMLP(4, SIZES, generator=gen(8))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


def test_ensemble_initialised_like_nn_linear():
    ensemble = EnsembleMLP(8, [400, 300, 2], generator=gen(0))
    for weight, bias in zip(ensemble.weights, ensemble.biases):
        bound = 1 / math.sqrt(weight.shape[-1])
        assert weight.abs().max() <= bound and bias.abs().max() <= bound
        # uniform on [-b, b] has standard deviation b / sqrt(3)
        assert abs(weight.std().item() / (bound / math.sqrt(3)) - 1) < 0.02
    assert abs(ensemble.weights[0].std().item() - nn.Linear(400, 300).weight.std().item()) < 1e-3


def test_ensemble_refuses_wrong_input():
    ensemble = EnsembleMLP(3, SIZES)
    with pytest.raises(ValueError, match="expects input"):
        ensemble(torch.randn(2, 5, SIZES[0]))
    with pytest.raises(IndexError):
        ensemble.member(3)
    with pytest.raises(ValueError, match="n_models"):
        EnsembleMLP(0, SIZES)
