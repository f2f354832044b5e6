"""Deep linear factorisations: W = W_N W_{N-1} ... W_1, the laboratory of Part I.

A depth-N factorisation computes the same linear map as one matrix, but gradient descent on the
factors follows different dynamics than on the product: from a small initialisation it learns the
product's singular values one at a time and leans towards low rank (Arora et al., 2019), and its
end-to-end update is a preconditioned gradient step with momentum-like memory (Arora et al., 2018).

``DeepLinear`` holds S independent factorisations at once (a leading seed dimension), so a sum of
per-seed losses trains S runs in one backward pass.

Used in: chapters 1-4 (Part I).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class DeepLinear(nn.Module):
    """S factorisations W = W_N ... W_1 of a ``rows x cols`` matrix through hidden ``width``.

    ``depth=1`` is the plain matrix. ``init="gaussian"`` draws each factor with i.i.d. entries of
    standard deviation ``scale``, so the product starts at norm about ``scale**depth`` times a
    constant; ``init="identity"`` starts every square factor at ``scale`` times the identity
    (the balanced initialisation; needs ``width == rows == cols`` for depth > 1).
    """

    def __init__(self, rows: int, cols: int, depth: int, width: int | None = None,
                 n_seeds: int = 1, scale: float = 1e-3, init: str = "gaussian",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if depth < 1 or rows < 1 or cols < 1 or n_seeds < 1:
            raise ValueError("rows, cols, depth and n_seeds must be >= 1")
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        width = int(width if width is not None else max(rows, cols))
        self.rows, self.cols, self.depth, self.width = rows, cols, depth, width
        shapes = self.shapes(rows, cols, depth, width)
        factors = []
        for out_dim, in_dim in shapes:
            if init == "gaussian":
                w = torch.randn(n_seeds, out_dim, in_dim, generator=generator, dtype=dtype)
                w = w * scale
            elif init == "identity":
                if out_dim != in_dim:
                    raise ValueError("identity initialisation needs square factors")
                w = scale * torch.eye(out_dim, dtype=dtype).expand(n_seeds, -1, -1).clone()
            else:
                raise ValueError(f"unknown init {init!r}; use 'gaussian' or 'identity'")
            factors.append(nn.Parameter(w.to(device)))
        self.factors = nn.ParameterList(factors)

    @staticmethod
    def shapes(rows: int, cols: int, depth: int, width: int) -> list[tuple[int, int]]:
        """Shapes of W_1 ... W_N (W_1 first): cols -> width -> ... -> width -> rows."""
        if depth == 1:
            return [(rows, cols)]
        return [(width, cols)] + [(width, width)] * (depth - 2) + [(rows, width)]

    def forward(self) -> torch.Tensor:
        """The end-to-end matrices, shape (S, rows, cols)."""
        product = self.factors[0]
        for factor in list(self.factors)[1:]:
            product = factor @ product
        return product

    @property
    def n_seeds(self) -> int:
        return self.factors[0].shape[0]

    @classmethod
    def from_factors(cls, factors: Sequence[torch.Tensor]) -> "DeepLinear":
        """Wrap given factors (W_1 first, each (S, out, in)); useful in tests and derivations."""
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model.rows, model.cols = factors[-1].shape[-2], factors[0].shape[-1]
        model.depth, model.width = len(factors), factors[0].shape[-2]
        model.factors = nn.ParameterList([nn.Parameter(f.clone()) for f in factors])
        return model

    def extra_repr(self) -> str:
        return (f"seeds={self.n_seeds}, {self.rows}x{self.cols}, depth={self.depth}, "
                f"width={self.width}")


def default_scale(depth: int, target_norm: float, size: int) -> float:
    """The per-factor Gaussian std that makes the product's Frobenius norm about ``target_norm``.

    For i.i.d. N(0, s^2) factors of size ``size``, E|W_N...W_1|_F^2 = size^(depth+1) s^(2 depth),
    so s = (target_norm^2 / size^(depth+1))^(1/(2 depth)).
    """
    return math.exp((2 * math.log(target_norm) - (depth + 1) * math.log(size)) / (2 * depth))
