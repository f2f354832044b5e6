"""Where tensors live: the GPU when there is one, else the CPU.

Used in: every chapter (``repro.device()``).
"""

from __future__ import annotations

import os

import torch


def device() -> torch.device:
    """The GPU when there is one (and REPRO_DEVICE does not say otherwise), else the CPU."""
    wanted = os.environ.get("REPRO_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = ["device"]
