"""Small things every module needs: the device, seeded generators, divergence checks."""

from __future__ import annotations

import math
import os

import torch


class Diverged(RuntimeError):
    """A run produced a non-finite loss or parameter; the message says where."""


def device() -> torch.device:
    """The GPU when there is one (and REPRO_DEVICE does not say otherwise), else the CPU."""
    wanted = os.environ.get("REPRO_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def generator(seed: int, on: torch.device | str | None = None) -> torch.Generator:
    """A torch generator seeded explicitly: every random draw in the book goes through one."""
    g = torch.Generator(device=on if on is not None else "cpu")
    g.manual_seed(int(seed))
    return g


def check_finite(value, what: str = "loss", step: int | None = None) -> None:
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
