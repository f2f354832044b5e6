"""A single-index teacher: y = h(beta . x / sqrt(d)) on Gaussian inputs, the quadratic by default.

Inputs are standard Gaussian, x ~ N(0, I_d), so |x| is about sqrt(d) and a first-layer weight drawn
N(0, I / d) (``repro.models.TwoLayerNet``) gives pre-activations of order one. A planted direction
beta ~ N(0, I_d) and a link h give the labels

    y = h(z),   z = beta . x / sqrt(d),

with z exactly N(0, |beta|^2 / d) given beta (about N(0, 1)). The links are

    "quadratic"   h(z) = z^2 / 2           (Kumar et al., 2024, Sec. 5: the target (beta . x)^2 / 2)
    "linear"      h(z) = z
    "hermite2"    h(z) = (z^2 - 1) / sqrt(2)   (the quadratic with its mean removed, unit variance)

This is Kumar et al.'s polynomial regression task in the scaling of ``TwoLayerNet``: their inputs
are N(0, I / D) with weights N(0, I); rescaling x by sqrt(D) and w by 1 / sqrt(D) leaves every
pre-activation, hence every output, unchanged.

Several data sets can be drawn at once (``batch``): the inputs are then (B, n, d), the labels
(B, n), one planted beta per data set. ``constant_risk`` is the exact population mean squared error
of the best constant predictor, E[(y - E y)^2], the scale on which a test loss is "no better than
guessing": for the quadratic link with |beta|^2 = r d it is r^2 / 2.

Used in: chapter 8 (grokking as the transition from lazy to rich training).
"""

from __future__ import annotations

import math

import torch

from repro.checks import positive_int

__all__ = ["SingleIndexTeacher"]


class SingleIndexTeacher:
    """Gaussian inputs and labels y = h(beta . x / sqrt(d)): ``x_train`` (..., n_train, d),
    ``y_train`` (..., n_train), the same for the test set, and ``beta`` (..., d)."""

    LINKS = ("quadratic", "linear", "hermite2")

    @staticmethod
    def link(name: str, z: torch.Tensor) -> torch.Tensor:
        """h(z) for the link ``name`` (one of ``LINKS``)."""
        if name == "quadratic":
            return z * z / 2
        if name == "linear":
            return z
        if name == "hermite2":
            return (z * z - 1) / math.sqrt(2)
        raise ValueError(f"unknown link {name!r}; use one of {SingleIndexTeacher.LINKS}")

    def __init__(self, d: int = 30, n_train: int = 180, n_test: int = 1000,
                 target: str = "quadratic", batch: int | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        self.d = positive_int("d", d)
        self.n_train, self.n_test = positive_int("n_train", n_train), positive_int("n_test", n_test)
        if target not in self.LINKS:
            raise ValueError(f"unknown target {target!r}; use one of {self.LINKS}")
        self.target = target
        g = torch.Generator().manual_seed(int(seed))
        lead = () if batch is None else (positive_int("batch", batch),)
        self.beta = torch.randn(*lead, d, generator=g, dtype=dtype)
        self.x_train = torch.randn(*lead, n_train, d, generator=g, dtype=dtype)
        self.x_test = torch.randn(*lead, n_test, d, generator=g, dtype=dtype)
        self.y_train, self.y_test = self.labels(self.x_train), self.labels(self.x_test)
        for name in ("beta", "x_train", "x_test", "y_train", "y_test"):
            setattr(self, name, getattr(self, name).to(device))

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """z = beta . x / sqrt(d) for inputs (..., m, d): (..., m)."""
        return torch.einsum("...md,...d->...m", x, self.beta.to(x)) / math.sqrt(self.d)

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        """y = h(beta . x / sqrt(d)), without noise."""
        return self.link(self.target, self.index(x))

    def constant_risk(self) -> torch.Tensor:
        """Var(y) over fresh inputs, exactly: the risk of the best constant predictor (per set)."""
        r = (self.beta * self.beta).sum(-1) / self.d   # z ~ N(0, r)
        if self.target == "linear":
            return r
        if self.target == "quadratic":
            return r * r / 2          # Var(z^2 / 2) = 2 r^2 / 4
        return r * r                  # Var((z^2 - 1) / sqrt 2) = 2 r^2 / 2
