"""Linear scalarization: the gradient of the summed task losses.

Used in: chapter 39 (Nash-MTL), as the baseline every method is compared with.
"""

from __future__ import annotations

import torch

from repro.mtl.base import Aggregator


class LinearScalarization(Aggregator):
    """The gradient of the summed losses: sum_i g_i (weights all 1)."""

    name = "ls"

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        self.weights = torch.ones(G.shape[:-1], dtype=G.dtype, device=G.device)
        return G.sum(-2)


__all__ = ['LinearScalarization']
