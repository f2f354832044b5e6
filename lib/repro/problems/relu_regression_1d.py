"""Univariate regression on a handful of points, for wide two-layer ReLU networks.

n inputs x_1 < ... < x_n in [-1, 1] with targets y_i, and the squared loss of S batched models,

    L_s = 1 / (2n) * sum_i (f_s(x_i) - y_i)^2,

one number per run, so a sum over runs trains them independently. ``default()`` is the data set
of chapter 7: seven unevenly spaced points, fixed (no draw): a "V" whose corner at x = 0 lies
inside the interval (-0.25, 0.2), away from both of its data points, then a flat step and a
drop, so every run and every preset sees the same points. ``draw(n, generator)`` gives n uniform
sorted inputs with targets from a smooth function, for exercises. ``grid(G)`` is a fine grid over
the inputs' range, padded by ``pad`` on each side, on which knots are counted.

Used in: chapter 7 (knots of mean-field ReLU networks, Shevchenko, Kungurtsev and Mondelli, 2022).
"""

from __future__ import annotations

import torch

from repro.checks import nonnegative, positive_int

__all__ = ["ReluRegression1D"]

# chapter 7's points: uneven gaps; y = |x| up to x = 0.5 (its corner between two inputs), then
# flat, then down
_DEFAULT_X = (-0.9, -0.6, -0.25, 0.2, 0.5, 0.7, 0.9)
_DEFAULT_Y = (0.9, 0.6, 0.25, 0.2, 0.5, 0.5, 0.3)


class ReluRegression1D:
    """n points (x_i, y_i) on the line and the squared loss of S models evaluated at them."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
        y = torch.as_tensor(y, dtype=torch.float64).reshape(-1)
        if len(x) != len(y) or len(x) < 2:
            raise ValueError(f"need n >= 2 inputs and as many targets, got {len(x)} and {len(y)}")
        order = torch.argsort(x)
        x, y = x[order], y[order]
        if not bool((x[1:] > x[:-1]).all()):
            raise ValueError("the inputs must be distinct")
        self.x, self.y, self.n = x, y, len(x)

    @classmethod
    def default(cls) -> ReluRegression1D:
        """Chapter 7's seven points (fixed, no draw)."""
        return cls(torch.tensor(_DEFAULT_X), torch.tensor(_DEFAULT_Y))

    @classmethod
    def draw(cls, n: int, generator: torch.Generator | None = None) -> ReluRegression1D:
        """n sorted uniform inputs in [-1, 1] with targets sin(3x) + x / 2."""
        x = torch.sort(2 * torch.rand(positive_int("n", n), generator=generator,
                                      dtype=torch.float64) - 1).values
        return cls(x, torch.sin(3 * x) + x / 2)

    def inputs(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The inputs as an (n, 1) tensor, the layout of ``repro.models.TwoLayerNet``."""
        return self.x.reshape(-1, 1).to(device)

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        """1 / (2n) sum_i (f_s(x_i) - y_i)^2 for outputs (S, n): one loss per run, shape (S,)."""
        if outputs.shape[-1] != self.n:
            raise ValueError(f"outputs must end with the {self.n} points, got "
                             f"{tuple(outputs.shape)}")
        return 0.5 * ((outputs - self.y.to(outputs.device, outputs.dtype)) ** 2).mean(-1)

    def grid(self, points: int = 2001, pad: float = 0.1) -> torch.Tensor:
        """``points`` evenly spaced inputs from x_1 - pad to x_n + pad, shape (points,)."""
        positive_int("points", points)
        nonnegative("pad", pad)
        return torch.linspace(float(self.x[0]) - pad, float(self.x[-1]) + pad, points,
                              dtype=torch.float64)

    def interpolant_knots(self) -> int:
        """Knots of the piecewise linear interpolant of the points: the inner points where the
        slope changes (an upper bound on what a minimal-norm interpolant needs, n - 2 at most)."""
        s = (self.y[1:] - self.y[:-1]) / (self.x[1:] - self.x[:-1])
        return int(((s[1:] - s[:-1]).abs() > 1e-12).sum())

    def __repr__(self) -> str:
        return f"ReluRegression1D(n={self.n}, x in [{float(self.x[0]):g}, {float(self.x[-1]):g}])"

