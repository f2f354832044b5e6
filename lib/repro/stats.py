"""Statistics over seeds: means, standard errors, log-log slopes, paired differences.

Every ordering of noisy numbers in the book is decided over the seeds both methods share, not on
two means; ``paired`` gives what such a decision needs (the mean paired difference, its standard
error, and how many standard errors separate it from zero).

Each takes a sequence, a numpy array or a torch tensor on any device (a GPU tensor is copied to
the host once, here, rather than at every call site).

Used in: every experiments notebook.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def _array(xs) -> np.ndarray:
    """``xs`` as float64 numpy; a tensor (on any device), or a sequence of tensors, via the host."""
    if hasattr(xs, "detach"):                                  # a torch tensor
        return xs.detach().cpu().double().numpy()
    if isinstance(xs, (list, tuple)) and any(hasattr(x, "detach") for x in xs):
        return np.asarray([_array(x) for x in xs], dtype=np.float64)
    return np.asarray(xs, dtype=np.float64)


def mean(xs: ArrayLike) -> float:
    """The mean of a sequence or array, as a float."""
    return float(np.mean(_array(xs)))


def sem(xs: ArrayLike) -> float:
    """The standard error of the mean over seeds (NaN for a single value)."""
    xs = _array(xs).ravel()
    return float(np.std(xs, ddof=1) / np.sqrt(len(xs))) if len(xs) > 1 else float("nan")


def slope(xs: ArrayLike, ys: ArrayLike) -> float:
    """The least-squares slope of log y against log x: the exponent k in y ~ x^k."""
    xs, ys = _array(xs), _array(ys)
    if xs.shape != ys.shape or xs.size < 2:
        raise ValueError(f"slope needs two equal-length sequences of >= 2 points, got {xs.shape} "
                         f"and {ys.shape}")
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("slope on a log-log scale needs positive values")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


@dataclass(frozen=True)
class Paired:
    """The paired difference a - b over n shared seeds."""

    mean: float
    sem: float
    n: int

    @property
    def z(self) -> float:
        """The mean difference in standard errors (inf when every difference is the same)."""
        if self.sem == 0 or math.isnan(self.sem):
            return math.copysign(math.inf, self.mean) if self.mean else 0.0
        return self.mean / self.sem

    def as_dict(self) -> dict:
        return {"mean": self.mean, "sem": self.sem, "n": self.n}


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """The paired difference a - b seed by seed: its mean, standard error and count."""
    a, b = _array(a).ravel(), _array(b).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired needs two equal-length, non-empty sequences, got {a.size} and "
                         f"{b.size}")
    d = a - b
    return Paired(mean(d), sem(d), int(d.size))


__all__ = ["Paired", "mean", "paired", "sem", "slope"]
