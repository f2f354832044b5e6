"""repro.models.modular_mlp: the formula by hand, integer pairs equal one-hot inputs, the neuron
vectors, pruning, the initial scale, seeding and independence of the batched runs."""

import pytest
import torch

from repro import generator
from repro.models import MODELS, ModularMLP
from repro.models.modular_mlp import default_init_std


def test_registered():
    assert MODELS["modular_mlp"] is ModularMLP


def test_output_is_the_formula():
    p, N = 5, 4
    net = ModularMLP(p, N, runs=2, generator=generator(0), dtype=torch.float64)
    pairs = torch.tensor([[0, 0], [1, 3], [4, 2]])
    out = net(pairs)
    assert out.shape == (2, 3, p)
    vec = net.neuron_vectors()
    for s in range(2):
        for i, (a, b) in enumerate(pairs.tolist()):
            # sum over neurons n of W_cn (U_na + V_nb)^2, for every class c at once
            square = (vec["u"][s, :, a] + vec["v"][s, :, b]) ** 2            # (N,)
            expected = (vec["w"][s] * square[:, None]).sum(0)                # (p,)
            torch.testing.assert_close(out[s, i], expected)


def test_one_hot_inputs_give_the_same_outputs():
    net = ModularMLP(7, 6, runs=3, generator=generator(1), dtype=torch.float64)
    pairs = torch.tensor([[a, b] for a in range(7) for b in range(7)])
    x = torch.nn.functional.one_hot(pairs, 7).reshape(len(pairs), 14).double()
    torch.testing.assert_close(net(pairs), net(x))
    torch.testing.assert_close(net(x.expand(3, -1, -1)), net(x))
    with pytest.raises(ValueError):
        net(torch.zeros(4, 13))


def test_pruning_removes_exactly_those_neurons():
    p, N = 5, 3
    net = ModularMLP(p, N, runs=1, generator=generator(2), dtype=torch.float64)
    pairs = torch.tensor([[a, b] for a in range(p) for b in range(p)])
    vec = net.neuron_vectors()
    single = [torch.stack([vec["w"][0, n] * (vec["u"][0, n, a] + vec["v"][0, n, b]) ** 2
                           for a, b in pairs.tolist()]) for n in range(N)]
    net.prune(torch.tensor([[True, False, True]]))
    torch.testing.assert_close(net(pairs)[0], single[0] + single[2])
    net.unprune()
    torch.testing.assert_close(net(pairs)[0], single[0] + single[1] + single[2])
    with pytest.raises(ValueError):
        net.prune(torch.ones(2, 3, dtype=torch.bool))


def test_initial_scale_seeding_and_independent_runs():
    assert default_init_std(500) == pytest.approx(0.5 / 1000 ** (1 / 3))
    net = ModularMLP(50, 400, runs=2, generator=generator(3))
    assert net.w1.std().item() == pytest.approx(default_init_std(400), rel=0.02)
    assert net.w1.shape == (2, 100, 400) and net.w2.shape == (2, 50, 400)
    again = ModularMLP(50, 400, runs=2, generator=generator(3))
    assert torch.equal(net.w1, again.w1) and torch.equal(net.w2, again.w2)
    # run 1's outputs do not depend on run 0's weights
    pairs = torch.tensor([[1, 2], [3, 4]])
    before = net(pairs)[1].detach().clone()
    with torch.no_grad():
        net.w1[0].mul_(3.0)
    torch.testing.assert_close(net(pairs)[1], before)
