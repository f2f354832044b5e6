"""How far a reconstruction is from the truth.

Used in: chapter 40 (generative compressed sensing).
"""

from __future__ import annotations

import torch


def per_pixel_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, one value per image (the paper's metric)."""
    return ((x_hat - x) ** 2).mean(-1)


__all__ = ['per_pixel_mse']
