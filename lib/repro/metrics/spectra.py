"""Spectra of matrices: singular values, nuclear norm, effective rank (Part I: implicit low-rank
bias).

Used in: chapters 1-4 (Part I).
"""

from __future__ import annotations

import torch


def singular_values(X: torch.Tensor) -> torch.Tensor:
    """Singular values of the last two dimensions, in decreasing order: (..., min(rows, cols))."""
    return torch.linalg.svdvals(X)


def nuclear_norm(X: torch.Tensor) -> torch.Tensor:
    """The nuclear norm |X|_* (sum of singular values), one value per leading index."""
    return torch.linalg.svdvals(X).sum(-1)


def effective_rank(X: torch.Tensor) -> torch.Tensor:
    """exp of the Shannon entropy of the normalised singular values (Roy and Vetterli, 2007).

    Between 1 and min(rows, cols); equal to k for a matrix with k equal non-zero singular values.
    """
    s = torch.linalg.svdvals(X)
    p = s / s.sum(-1, keepdim=True)
    # 0 log 0 = 0: zero singular values add nothing to the entropy
    entropy = -(torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))).sum(-1)
    return torch.exp(entropy)


__all__ = ['effective_rank', 'nuclear_norm', 'singular_values']
