"""PCGrad (Yu et al., 2020): project away conflicting components, pairwise in random order.

Used in: chapter 39 (Nash-MTL).
"""

from __future__ import annotations

import torch

from repro.mtl.base import Aggregator


class PCGrad(Aggregator):
    """Gradient surgery: each g_i, in turn, loses its component along every g_j (random order)
    it conflicts with (g_i . g_j < 0); the projected gradients are summed. ``generator`` makes the
    order reproducible; with K = 2 the order does not matter."""

    name = "pcgrad"

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        K = G.shape[-2]
        out = G.clone()
        for i in range(K):
            gi = G[..., i, :].clone()
            others = [j for j in range(K) if j != i]
            order = torch.randperm(len(others), generator=self.generator).tolist() if K > 2 else [0]
            for o in order:
                gj = G[..., others[o], :]
                dot = (gi * gj).sum(-1, keepdim=True)
                coef = torch.where(dot < 0, dot / (gj * gj).sum(-1, keepdim=True), 0.0)
                gi = gi - coef * gj
            out[..., i, :] = gi
        self.weights = None
        return out.sum(-2)


__all__ = ['PCGrad']
