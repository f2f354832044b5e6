"""Accuracy of a classifier or of each model of a batched ensemble.

Used in: chapter 10 (Anti-PGD).
"""

from __future__ import annotations

import torch


def per_model_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions: a scalar, or one per model (S,)."""
    return (logits.argmax(-1) == y).to(torch.float64).mean(-1)


__all__ = ['per_model_accuracy']
