"""Multilayer perceptrons, one at a time or S of them batched.

- :class:`MLP`          a plain multilayer perceptron (``nn.Linear`` layers).
- :class:`EnsembleMLP`  S independent MLPs held in batched tensors with a leading model
  dimension, so that S seeds train in one forward/backward pass instead of a Python loop.

Each constructor takes an optional ``torch.Generator``: with one, every initial weight is drawn
from it (same seed, same weights); without one, torch's global generator is used.

Used in: chapter 10 (Anti-PGD: MNIST-1D ensembles) and chapter 39 (the miniature).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "EnsembleMLP"]

_ACTIVATIONS = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "elu": F.elu,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


def _activation(name: str):
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError("sizes must list >= 2 positive layer widths (input ... output), got "
                         f"{sizes}")
    return sizes


def _linear_init_(weight: torch.Tensor, bias: torch.Tensor, fan_in: int, generator=None) -> None:
    """nn.Linear's default: weight and bias uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)].

    (kaiming_uniform with a = sqrt(5), which nn.Linear uses, reduces to exactly this bound.)
    """
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)
        bias.uniform_(-bound, bound, generator=generator)


class _Activation(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = _activation(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class MLP(nn.Sequential):
    """Linear layers of widths ``sizes`` (input, hidden..., output) with ``activation`` between.

    No activation after the last layer: the output is logits (or a regression value).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 generator: torch.Generator | None = None) -> None:
        sizes = _check_sizes(sizes)
        _activation(activation)  # refuse an unknown name even when there is no hidden layer
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i > 0:
                layers.append(_Activation(activation))
            layers.append(nn.Linear(fan_in, fan_out))
        super().__init__(*layers)
        self.sizes = sizes
        self.activation = activation
        if generator is not None:
            for layer in self.linears:
                _linear_init_(layer.weight, layer.bias, layer.in_features, generator)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]


class EnsembleMLP(nn.Module):
    """``n_models`` independent MLPs of the same shape, evaluated in one batched pass.

    Layer ``l`` holds ``weights[l]`` of shape ``(S, out, in)`` and ``biases[l]`` of shape
    ``(S, out)``: slice ``[i]`` is model ``i``'s ``nn.Linear`` weight and bias. Each model is
    initialised like ``nn.Linear``. Summing the S per-model losses and calling ``backward``
    gives every model its own gradient (the models share nothing), so any optimizer that acts
    elementwise trains S independent runs at once.
    """

    def __init__(
        self,
        n_models: int,
        sizes: Sequence[int],
        generator: torch.Generator | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if int(n_models) < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        self.n_models = int(n_models)
        self.sizes = _check_sizes(sizes)
        self.activation = activation
        self._act = _activation(activation)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            weight = torch.empty(self.n_models, fan_out, fan_in)
            bias = torch.empty(self.n_models, fan_out)
            _linear_init_(weight, bias, fan_in, generator)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(N, in)`` (the same batch for every model) or ``(S, N, in)``;
        returns ``(S, N, out)``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        elif x.dim() != 3 or x.shape[0] != self.n_models:
            raise ValueError(
                f"EnsembleMLP expects input (N, {self.sizes[0]}) or "
                f"({self.n_models}, N, {self.sizes[0]}), got {tuple(x.shape)}"
            )
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            # bias + x @ W^T for all S models in one batched matrix multiply
            x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
            if layer < last:
                x = self._act(x)
        return x

    def member(self, i: int) -> MLP:
        """Model ``i`` as a plain :class:`MLP` (a copy of its current weights)."""
        if not -self.n_models <= i < self.n_models:
            raise IndexError(f"model index {i} out of range for {self.n_models} models")
        mlp = MLP(self.sizes, activation=self.activation)
        with torch.no_grad():
            for layer, weight, bias in zip(mlp.linears, self.weights, self.biases):
                layer.weight.copy_(weight[i])
                layer.bias.copy_(bias[i])
        return mlp.to(self.weights[0].device)

    @classmethod
    def from_mlps(cls, mlps: Sequence[MLP]) -> "EnsembleMLP":
        """Stack plain MLPs of one shape and activation into an ensemble (weights copied)."""
        mlps = list(mlps)
        if not mlps:
            raise ValueError("from_mlps needs at least one MLP")
        sizes, activation = mlps[0].sizes, mlps[0].activation
        if any(m.sizes != sizes or m.activation != activation for m in mlps):
            raise ValueError("from_mlps: all MLPs must have the same sizes and activation")
        ensemble = cls(len(mlps), sizes, activation=activation)
        with torch.no_grad():
            for k, (weight, bias) in enumerate(zip(ensemble.weights, ensemble.biases)):
                weight.copy_(torch.stack([m.linears[k].weight for m in mlps]))
                bias.copy_(torch.stack([m.linears[k].bias for m in mlps]))
        return ensemble.to(mlps[0].linears[0].weight.device)

    def extra_repr(self) -> str:
        return f"n_models={self.n_models}, sizes={self.sizes}, activation={self.activation!r}"
