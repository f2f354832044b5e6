"""Explicit penalties on a matrix, as small callables that any training loop adds to its loss.

Each takes a matrix (or a batch, shape (..., rows, cols)) and returns one value per leading
index, differentiable through torch's SVD, times its ``weight``.

Used in: chapter 4 (ratio penalty with Adam) and chapter 1's exercises.
"""

from __future__ import annotations

import torch


class NuclearNorm:
    """weight * |X|_*: the convex surrogate of rank that small-initialisation GD is said to
    favour."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.linalg.svdvals(X).sum(-1)

    def __repr__(self) -> str:
        return f"NuclearNorm(weight={self.weight:g})"


class NuclearFrobeniusRatio:
    """weight * |X|_* / |X|_F: scale-free, between 1 (rank one) and sqrt(rank).

    Its square is a lower bound on the rank, so it penalises rank without shrinking X (unlike
    the nuclear norm). ``eps`` keeps it defined at X = 0.
    """

    def __init__(self, weight: float = 1.0, eps: float = 1e-12) -> None:
        self.weight, self.eps = float(weight), float(eps)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        s = torch.linalg.svdvals(X)
        return self.weight * s.sum(-1) / (s.pow(2).sum(-1) + self.eps).sqrt()

    def __repr__(self) -> str:
        return f"NuclearFrobeniusRatio(weight={self.weight:g})"


__all__ = ["NuclearNorm", "NuclearFrobeniusRatio"]
