"""Linearly separable binary classification with a planted margin, and the logistic loss on it.

A planted unit vector w* (a random direction) and labels y_i = +-1 (each +1 with probability
``positive``) give the points

    a_i = y_i (margin + spread * u_i) w*  +  c  +  P g_i,     u_i ~ U(0, 1),  g_i ~ N(0, I_d / d),

where P projects out w* and c is a fixed offset of norm ``offset`` orthogonal to w*. Along w*
every point lies at least ``margin`` on its own side, so y_i <w*, a_i> >= margin: the data are
separable with margin at least ``margin`` (unnormalised: R = max_i |a_i| is ``radius``, and
Novikoff's perceptron bound is R^2 / margin^2). The offset and the unequal classes make the
mean signed point sum_i y_i a_i / n point away from w* (towards c), so the first steps of the
perceptron or of GD misclassify one class and the data take many iterations to separate, not
one. ``margin = 0`` keeps the data separable by w* but with the margin of the closest u_i, tiny.
Several data sets can be drawn at once (``batch``): the features then have shape (B, n, d).

The logistic loss of a weight vector x is f(x) = (1/n) sum_i log(1 + exp(-y_i <a_i, x>)),
computed with ``softplus`` so that it does not overflow at large step sizes; its gradient is
-(1/n) sum_i sigma(-y_i <a_i, x>) y_i a_i. Weights have shape (..., d) broadcast against the
data sets: (S, d) for S runs on one data set, (K, B, d) for K runs on each of B data sets; every
method returns one value per weight vector. ``from_arrays`` wraps given data (two classes of a
real data set).

Used in: chapter 6 (from logistic regression to the perceptron with large step sizes).
"""

from __future__ import annotations

import torch

from repro.checks import positive_int


class SeparableData:
    """Separable data with a planted margin: ``features`` (..., n, d), ``labels`` (..., n), +-1."""

    def __init__(self, n: int = 200, d: int = 20, margin: float = 0.02, spread: float = 0.1,
                 offset: float = 1.0, positive: float = 0.7, batch: int | None = None,
                 seed: int = 0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        positive_int("n", n)
        positive_int("d", d)
        for name, v in (("margin", margin), ("spread", spread), ("offset", offset)):
            if not float(v) >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        if not 0.0 <= float(positive) <= 1.0:
            raise ValueError(f"positive must lie in [0, 1], got {positive}")
        g = torch.Generator().manual_seed(int(seed))
        shape = () if batch is None else (positive_int("batch", batch),)

        def orthogonal(v, w):       # v with its component along the unit vector w removed
            return v - (v * w).sum(-1, keepdim=True) * w

        w_star = torch.randn(*shape, d, generator=g, dtype=dtype)
        w_star = w_star / w_star.norm(dim=-1, keepdim=True)
        y = torch.where(torch.rand(*shape, n, generator=g, dtype=dtype) < float(positive),
                        1.0, -1.0).to(dtype)
        noise = orthogonal(torch.randn(*shape, n, d, generator=g, dtype=dtype) / d ** 0.5,
                           w_star[..., None, :])
        c = orthogonal(torch.randn(*shape, d, generator=g, dtype=dtype), w_star)
        c = float(offset) * c / c.norm(dim=-1, keepdim=True)
        along = float(margin) + float(spread) * torch.rand(*shape, n, generator=g, dtype=dtype)
        a = noise + c[..., None, :] + (y * along)[..., None] * w_star[..., None, :]
        self.w_star = w_star.to(device)
        self.features = a.to(device)
        self.labels = y.to(device)
        self.margin = float(margin)

    @classmethod
    def from_arrays(cls, features: torch.Tensor, labels: torch.Tensor) -> "SeparableData":
        """Wrap given data (labels +-1), e.g. two classes of a real data set."""
        self = cls.__new__(cls)
        if features.shape[:-1] != labels.shape:
            raise ValueError(f"features {tuple(features.shape)} and labels {tuple(labels.shape)} "
                             "do not match")
        if not bool((labels.abs() == 1).all()):
            raise ValueError("labels must be +-1")
        self.features, self.labels = features, labels.to(features.dtype)
        self.w_star, self.margin = None, float("nan")
        return self

    @property
    def radius(self) -> torch.Tensor:
        """R = max_i |a_i|, per data set."""
        return self.features.norm(dim=-1).amax(-1)

    def scores(self, w: torch.Tensor) -> torch.Tensor:
        """z_i = y_i <a_i, w>, shape (..., n): positive where point i is classified correctly."""
        return self.labels * (self.features * w[..., None, :]).sum(-1)

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        """The mean logistic loss (1/n) sum_i log(1 + exp(-z_i)), one per weight vector."""
        return torch.nn.functional.softplus(-self.scores(w)).mean(-1)

    def errors(self, w: torch.Tensor) -> torch.Tensor:
        """How many points are not strictly on their side (z_i <= 0), per weight vector."""
        return (self.scores(w) <= 0).sum(-1)

    def normalized_margin(self, w: torch.Tensor) -> torch.Tensor:
        """min_i z_i / |w|: positive iff w separates the data (``nan`` at w = 0)."""
        return self.scores(w).amin(-1) / w.norm(dim=-1)


__all__ = ["SeparableData"]
