"""Argument checks and divergence detection, shared by every science module.

Each validator returns the checked value (converted where that is safe) or raises ``ValueError``
with one line that names the argument, what it must be and what it got, so a notebook or the
``repro`` command can show it as it is. ``Diverged`` is the one error a diverging run raises.

Used in: every chapter, through the library.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real
from typing import Any

import torch


class Diverged(RuntimeError):
    """A run produced a non-finite loss or parameter; the message says where."""


def check_finite(value: float | torch.Tensor, what: str = "loss",
                 step: int | None = None) -> None:
    """Raise Diverged if ``value`` (a number or tensor) holds a NaN or an infinity."""
    if isinstance(value, torch.Tensor):
        finite = bool(torch.isfinite(value).all())
    else:
        finite = math.isfinite(float(value))
    if not finite:
        where = f" at step {step}" if step is not None else ""
        raise Diverged(
            f"{what} became non-finite{where}: the run diverged "
            "(lower the step size or the noise level)"
        )


class FiniteWatch:
    """``check_finite`` without a host synchronisation per step, for training loops on a GPU.

    ``update(value, step)`` records, on the value's device, the first step at which ``value`` held
    a NaN or an infinity; ``check()`` reads that step back (one synchronisation) and raises the
    same ``Diverged`` as ``check_finite(value, what, step)`` would have raised at that step. With
    ``every=K``, ``update`` itself reads it after every K-th update; a loop then calls ``update``
    every step and ``check`` once at its end, and stops at most K - 1 steps after the divergence
    instead of at once, with the same message.
    """

    def __init__(self, what: str = "loss", every: int | None = None) -> None:
        self.what = what
        self.every = None if every is None else positive_int("every", every)
        self.updates = 0
        self.first: torch.Tensor | None = None    # () long on the device; -1: finite so far

    def update(self, value: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(value.detach()).all()
        if self.first is None:
            self.first = torch.full((), -1, dtype=torch.long, device=bad.device)
        self.first = torch.where(bad & (self.first < 0), step, self.first)
        self.updates += 1
        if self.every is not None and self.updates % self.every == 0:
            self.check()

    def check(self) -> None:
        if self.first is None:
            return
        step = int(self.first)
        if step >= 0:
            check_finite(math.nan, self.what, step)


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """An integer >= 1 (bools are refused: True is not a count)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    """An integer >= 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def positive(name: str, value: Any) -> float:
    """A number > 0 (anything ``float`` accepts: numpy and 0-d torch scalars too, not bools)."""
    try:
        ok = not isinstance(value, bool) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def nonnegative(name: str, value: Any) -> float:
    """A real number >= 0."""
    if not isinstance(value, Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def in_unit_interval(name: str, value: Any, closed_right: bool = False) -> float:
    """A real number in [0, 1) (or [0, 1] with ``closed_right``)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and (
        0 <= value <= 1 if closed_right else 0 <= value < 1)
    if not ok:
        raise ValueError(f"{name} must be in [0, 1{']' if closed_right else ')'}, got {value!r}")
    return float(value)


def one_of(name: str, value: Any, choices: Collection[str]) -> str:
    """One of a fixed set of names."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of {tuple(choices)}")
    return value


__all__ = ["Diverged", "FiniteWatch", "check_finite", "in_unit_interval", "nonnegative",
           "nonnegative_int", "one_of", "positive", "positive_int"]
