"""What every loader shares: the missing-data error, tensors on the device, the cache folder.

Used by: every loader of ``repro.data``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from repro.devices import device as default_device


class DatasetMissing(FileNotFoundError):
    """A data set is not on disk; the message says where we looked and how to get it."""


def _as_tensors(arrays: dict, device) -> dict:
    on = default_device() if device is None else torch.device(device)
    out = {}
    for key in ("x", "y", "x_test", "y_test"):
        dtype = torch.int64 if key.startswith("y") else torch.float32
        out[key] = torch.as_tensor(np.asarray(arrays[key])).to(device=on, dtype=dtype)
    return out


def _cache_root() -> Path | None:
    """The cache folder, or None when there is none (then we simply do not cache)."""
    try:
        from repro.paths import cache_dir

        return cache_dir()
    except (FileNotFoundError, OSError):
        return None


def _save_npz_atomic(path: Path, arrays: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # caching is an optimisation; a read-only cache must not break loading


__all__ = ['DatasetMissing']
