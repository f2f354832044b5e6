"""Knots of a piecewise linear function of one variable: where its slope changes, and how many.

A one-dimensional two-layer ReLU network f(x) = c * sum_j a_j relu(w_j x + b_j) is piecewise
linear; neuron j bends it at x = -b_j / w_j, where the slope jumps by c * a_j * |w_j|
(``relu_kinks``, exact). A wide network has one such kink per neuron, almost all of them tiny, so a
count of "knots" needs a rule that says which slope changes are large enough to count and which
neighbouring ones are one knot. ``find_knots`` states it explicitly:

1. on a sorted grid x_0 < ... < x_{G-1}, the slopes s_k = (f_{k+1} - f_k) / (x_{k+1} - x_k) and
   their changes D_k = s_k - s_{k-1} at the inner grid points x_k (a second difference);
2. a grid point is *bent* if |D_k| > rel_threshold * sum_k |D_k| (a share of the function's
   whole change of slope on the grid, its total curvature) and |D_k| > 1e-9 * (1 + max_k |s_k|)
   (above float rounding, so a straight line has no knot). The share depends on the grid spacing:
   a smooth function spreads its curvature evenly, about spacing / length per point, so on a grid
   of spacing 0.005 over a length 2 it has no bent point at a threshold of 1%, while a knot keeps
   its whole slope change at one point, or a few;
3. bent points closer than ``merge`` (in units of x) are chained into one cluster: one knot, at
   the |D|-weighted mean of its points, with the sum of its D as its slope change.

The share of the total curvature that the knots carry (``Knots.share``) says how piecewise linear
the function is: 1 for a piecewise linear function whose kinks are all kept, small for a smooth
one. ``count_per_gap`` then counts the knots strictly inside each interval between consecutive data
points, and ``off_data`` those farther than a fraction of the interval from both of its ends.

Used in: chapter 7 (knots of mean-field ReLU networks, Shevchenko, Kungurtsev and Mondelli, 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from repro.checks import nonnegative

__all__ = ["Knots", "count_per_gap", "find_knots", "off_data", "relu_kinks"]


@dataclass
class Knots:
    """The knots of one function: locations (K,), sorted, slope changes (K,), and the share of
    the function's total curvature sum |D| that they carry (1.0 where it is given exactly)."""

    location: torch.Tensor
    jump: torch.Tensor
    share: float = 1.0

    def __len__(self) -> int:
        return len(self.location)


def relu_kinks(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
               scale: float = 1.0) -> Knots:
    """The exact kinks of x -> scale * sum_j a_j relu(w_j x + b_j), one per neuron with w_j != 0:
    at -b_j / w_j, slope change scale * a_j * |w_j| (unsorted neurons in, sorted kinks out)."""
    a, w, b = (t.reshape(-1) for t in (a, w, b))
    keep = w != 0
    location = -b[keep] / w[keep]
    jump = scale * a[keep] * w[keep].abs()
    order = torch.argsort(location)
    return Knots(location[order], jump[order])


def find_knots(x: torch.Tensor, f: torch.Tensor, rel_threshold: float = 0.01,
               merge: float = 0.0) -> list[Knots]:
    """The knots of each row of ``f`` (..., G), sampled on the sorted grid ``x`` (G,), by the rule
    of the module docstring: bent points |D_k| > rel_threshold * sum |D|, chained when closer than
    ``merge``. Returns one ``Knots`` per row (a flat list over the leading dimensions)."""
    nonnegative("rel_threshold", rel_threshold)
    nonnegative("merge", merge)
    if x.ndim != 1 or f.shape[-1] != len(x) or len(x) < 3:
        raise ValueError(f"need a grid x of shape (G,), G >= 3, and f (..., G); got "
                         f"{tuple(x.shape)} and {tuple(f.shape)}")
    if not bool((x[1:] > x[:-1]).all()):
        raise ValueError("the grid x must be strictly increasing")
    slopes = (f[..., 1:] - f[..., :-1]) / (x[1:] - x[:-1])
    change = (slopes[..., 1:] - slopes[..., :-1]).reshape(-1, len(x) - 2)
    inner = x[1:-1]
    out = []
    rounding = 1e-9 * (1 + slopes.abs().reshape(len(change), -1).amax(-1))
    for d, floor in zip(change, rounding):
        total = d.abs().sum()
        bent = torch.nonzero((d.abs() > rel_threshold * total) & (d.abs() > floor)).reshape(-1)
        if len(bent) == 0:
            out.append(Knots(inner[:0], d[:0], 0.0))
            continue
        share = float(d[bent].abs().sum() / total)
        xs = inner[bent]
        # a new cluster starts wherever the next bent point is `merge` or more away
        starts = torch.ones(len(bent), dtype=torch.bool, device=d.device)
        starts[1:] = (xs[1:] - xs[:-1]) >= merge
        label = torch.cumsum(starts.long(), 0) - 1
        k = int(label[-1]) + 1
        weight = d[bent].abs()
        mass = d.new_zeros(k).index_add_(0, label, weight)
        centre = d.new_zeros(k).index_add_(0, label, weight * xs) / mass
        jump = d.new_zeros(k).index_add_(0, label, d[bent])
        out.append(Knots(centre, jump, share))
    return out


def count_per_gap(location: torch.Tensor, x_data: torch.Tensor) -> torch.Tensor:
    """How many of the knots ``location`` lie strictly inside each interval (x_i, x_{i+1}) of the
    sorted inputs ``x_data`` (n,): a LongTensor (n - 1,). Knots outside [x_0, x_{n-1}] or exactly
    at a data point are in no interval."""
    x_data = torch.sort(x_data.reshape(-1)).values
    left, right = x_data[:-1], x_data[1:]
    inside = (location[:, None] > left) & (location[:, None] < right)
    return inside.sum(0)


def off_data(location: torch.Tensor, x_data: torch.Tensor, fraction: float = 0.05) -> torch.Tensor:
    """Per interval (x_i, x_{i+1}), how many knots lie farther than ``fraction`` of its width from
    both of its ends: a LongTensor (n - 1,)."""
    nonnegative("fraction", fraction)
    x_data = torch.sort(x_data.reshape(-1)).values
    left, right = x_data[:-1], x_data[1:]
    margin = fraction * (right - left)
    inside = (location[:, None] > left + margin) & (location[:, None] < right - margin)
    return inside.sum(0)
