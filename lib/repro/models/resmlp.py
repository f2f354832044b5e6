"""A residual multilayer perceptron whose skip connections can be switched off.

:class:`ResMLP` is a small, fully connected stand-in for the ResNets of Li et al. (2018): an input
layer, ``depth`` blocks and a linear read-out. Each block is

    z = W₂ relu(W₁ h + b₁) + b₂,    h ← relu(h + z)  (skip=True)  or  h ← relu(z)  (skip=False),

the shape of a ResNet basic block with its convolutions replaced by linear layers (and, like the
paper's networks, the same layers with and without the shortcut). ``norm="layer"`` puts a
LayerNorm on ``z`` before the addition, the place of the second batch norm of a basic block.

Every linear layer is initialised like ``nn.Linear`` (uniform on ±1/√fan_in; ``init="uniform"``)
or, with ``init="kaiming"``, with Gaussian weights of variance 2/fan_in and zero biases (He et
al.'s choice for ReLU layers, which keeps a deep chain without skips from fading to zero). Draws
come from the optional ``generator`` in a fixed order, so that the same seed gives the same
weights with and without skips.

Used in: chapter 18 (loss landscapes with and without skip connections).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from repro.models.mlp import _linear_init_

__all__ = ["ResMLP"]


class ResMLP(nn.Module):
    """``d_in -> width``, ``depth`` (residual) blocks of width ``width``, ``width -> d_out``."""

    def __init__(self, d_in: int, width: int, depth: int, d_out: int, skip: bool = True,
                 norm: str | None = None, init: str = "uniform",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if min(int(d_in), int(width), int(d_out)) < 1 or int(depth) < 0:
            raise ValueError(f"need d_in, width, d_out >= 1 and depth >= 0, got {d_in}, {width}, "
                             f"{d_out}, {depth}")
        if norm not in (None, "layer"):
            raise ValueError(f"norm must be None or 'layer', got {norm!r}")
        if init not in ("uniform", "kaiming"):
            raise ValueError(f"init must be 'uniform' or 'kaiming', got {init!r}")
        self.d_in, self.width = int(d_in), int(width)
        self.depth, self.d_out = int(depth), int(d_out)
        self.skip, self.norm, self.init = bool(skip), norm, init
        self.input = nn.Linear(self.d_in, self.width)
        self.blocks = nn.ModuleList()
        for _ in range(self.depth):
            block = nn.ModuleDict({"fc1": nn.Linear(self.width, self.width),
                                   "fc2": nn.Linear(self.width, self.width)})
            if norm == "layer":
                block["norm"] = nn.LayerNorm(self.width)
            self.blocks.append(block)
        self.output = nn.Linear(self.width, self.d_out)
        # with Kaiming weights each branch carries as much variance as the shortcut, so the sum
        # is scaled by 1/sqrt(2) to keep the variance of h the same from block to block
        self._merge = math.sqrt(0.5) if init == "kaiming" else 1.0
        for layer in self.linears:
            if init == "kaiming":
                with torch.no_grad():
                    layer.weight.normal_(0.0, math.sqrt(2.0 / layer.in_features),
                                         generator=generator)
                    layer.bias.zero_()
            elif generator is not None:
                _linear_init_(layer.weight, layer.bias, layer.in_features, generator)

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers, input to output (the order the generator draws them in)."""
        inner = [block[k] for block in self.blocks for k in ("fc1", "fc2")]
        return [self.input, *inner, self.output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.input(x))
        for block in self.blocks:
            z = block["fc2"](F.relu(block["fc1"](h)))
            if "norm" in block:
                z = block["norm"](z)
            h = F.relu((h + z) * self._merge) if self.skip else F.relu(z)
        return self.output(h)

    def extra_repr(self) -> str:
        return f"skip={self.skip}, norm={self.norm!r}, init={self.init!r}"
