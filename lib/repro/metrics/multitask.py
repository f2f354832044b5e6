"""Metrics of multi-task learning: Delta_m% and the mean rank of methods.

Used in: chapter 39 (Nash-MTL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def delta_m(metrics: ArrayLike, baseline: ArrayLike, higher_is_better: ArrayLike) -> float:
    """Delta_m% = 100/K sum_k (-1)^{delta_k} (M_k - B_k) / B_k (lower is better)."""
    m = np.asarray(metrics, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    sign = np.where(np.asarray(higher_is_better, dtype=bool), -1.0, 1.0)
    return float(100.0 * np.mean(sign * (m - b) / b))


def mean_rank(table: ArrayLike) -> np.ndarray:
    """Mean rank (1 = best) of each row of a (methods x metrics) table, lower values best."""
    t = np.asarray(table, dtype=np.float64)
    ranks = t.argsort(0).argsort(0) + 1.0
    return ranks.mean(1)


__all__ = ['delta_m', 'mean_rank']
