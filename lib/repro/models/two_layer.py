"""A two-layer network with the knobs of the scaling literature, S runs batched.

    f(x) = alpha / N^gamma * sum_{j=1}^N a_j phi(w_j . x + b_j)

with width N, output scale alpha and gamma = 1/2 (the neural-tangent, "lazy" scaling) or gamma = 1
(the mean-field scaling). The first-layer weights w_j are drawn N(0, I/d) (pre-activations of
order one for inputs of norm sqrt(d)), the readouts a_j N(0, 1), the biases zero unless asked
for (``bias_std > 0`` draws them N(0, bias_std^2) instead, after the other weights, so the
first-layer weights and readouts are those of the same seed without it). The readouts can be
frozen (a buffer, not a parameter) or all set to one (``readout="ones"``: a network that only
averages its neurons, as in Kumar et al., 2024), and the activation is one of
``ACTIVATIONS``: ReLU, tanh, identity, the quadratic z^2, and the perturbed identity
z + eps z^2 / 2 (``"poly"``, with ``eps``).

Every parameter leads with the S runs, so S seeds (or S widths' worth of step sizes, with
``repro.optim.PerRunGD``) train in one pass; inputs are (m, d), shared by the runs, or (S, m, d).

Used in: chapter 7 (mean-field ReLU networks in one dimension, with random biases), chapter 8
(lazy vs rich training, readouts frozen at one); written with chapter 11.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repro.checks import positive_int

__all__ = ["TwoLayerNet"]

SCALINGS = {"ntk": 0.5, "mean_field": 1.0}
ACTIVATIONS = ("relu", "tanh", "identity", "quadratic", "poly")
READOUTS = ("gaussian", "ones")


class TwoLayerNet(nn.Module):
    """S two-layer networks f_s(x) = alpha / N^gamma * sum_j a_sj phi(w_sj . x + b_sj)."""

    def __init__(self, d: int, width: int, runs: int = 1, scaling: str = "ntk",
                 output_scale: float = 1.0, activation: str = "relu", eps: float = 0.0,
                 bias: bool = False, train_readout: bool = True, bias_std: float = 0.0,
                 readout: str = "gaussian", generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.d, self.width = positive_int("d", d), positive_int("width", width)
        self.runs = positive_int("runs", runs)
        if scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {scaling!r}; use one of {sorted(SCALINGS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {ACTIVATIONS}")
        if not bias_std >= 0:
            raise ValueError(f"bias_std must be >= 0, got {bias_std!r}")
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
        if bias_std > 0 and not bias:
            raise ValueError("bias_std > 0 needs bias=True")
        if not output_scale > 0:
            raise ValueError(f"output_scale must be > 0, got {output_scale!r}")
        self.scaling, self.activation, self.eps = scaling, activation, float(eps)
        self.output_scale = float(output_scale)
        self.scale = self.output_scale / self.width ** SCALINGS[scaling]
        shape = (self.runs, self.width)
        self.w = nn.Parameter(torch.randn(*shape, self.d, generator=generator, dtype=dtype)
                              / self.d**0.5)
        self.b = nn.Parameter(torch.zeros(*shape, dtype=dtype)) if bias else None
        a = torch.randn(*shape, generator=generator, dtype=dtype)
        if readout == "ones":   # drawn all the same, so that the biases match the same seed's
            a = torch.ones_like(a)
        if bias_std > 0:   # drawn last: w and a stay those of the same seed without biases
            with torch.no_grad():
                self.b.copy_(bias_std * torch.randn(*shape, generator=generator, dtype=dtype))
        if train_readout:
            self.a = nn.Parameter(a)
        else:
            self.register_buffer("a", a)

    def phi(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return F.relu(z)
        if self.activation == "tanh":
            return torch.tanh(z)
        if self.activation == "identity":
            return z
        if self.activation == "quadratic":
            return z * z
        return z + self.eps * z * z / 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(w_j . x + b_j) for every run and neuron: (S, m, N)."""
        z = torch.einsum("...md,snd->smn", x, self.w) if x.ndim == 2 else \
            torch.einsum("smd,snd->smn", x, self.w)
        if self.b is not None:
            z = z + self.b.unsqueeze(1)
        return self.phi(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (S, m) for inputs (m, d) or (S, m, d)."""
        if x.shape[-1] != self.d or x.ndim not in (2, 3):
            raise ValueError(f"inputs must be (m, {self.d}) or (S, m, {self.d}), got "
                             f"{tuple(x.shape)}")
        return self.scale * torch.einsum("smn,sn->sm", self.features(x), self.a)
