"""Where tensors live: the GPU when there is one, else the CPU.

Used in: every chapter (``repro.device()``); ``to_device`` in the loops that draw on a CPU
generator and compute on the GPU (noise injection, Langevin, mini-batch indices).
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


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` on ``device``. From the CPU to a GPU the copy goes through pinned memory and does
    not wait: a plain copy of pageable memory holds the host until the GPU has caught up, which in
    a loop that draws on a CPU generator (the same numbers on every device) is a wait per step."""
    device = torch.device(device)
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


__all__ = ["device", "to_device"]
