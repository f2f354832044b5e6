"""Random matrices the chapters draw: orthogonal and orthonormal frames, balanced factorisations,
and powers of PSD matrices.

QR's signs are a convention of the LAPACK build; fixing them (R's diagonal made positive) makes a
draw a function of the generator's state alone.

Used in: chapters 1-4 (Part I: factorisations and their balanced initialisations).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def random_orthonormal(shape: Sequence[int], k: int, generator: torch.Generator | None = None,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
    """Orthonormal columns: Q of shape (*shape[:-1], n, k) with n = shape[-1], Q^T Q = I_k, Haar
    distributed (QR of a Gaussian matrix with R's diagonal made positive)."""
    *batch, n = shape
    g = torch.randn(*batch, n, k, generator=generator, dtype=dtype,
                    device=generator.device if generator is not None else None)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def random_orthogonal(n: int, generator: torch.Generator | None = None,
                      dtype: torch.dtype | None = None) -> torch.Tensor:
    """A Haar-distributed n x n orthogonal matrix."""
    return random_orthonormal((n,), n, generator, dtype)


def balanced_factors(singular_values: torch.Tensor, depth: int,
                     generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Balanced factors W_1, ..., W_N (W_1 first, each with a leading run dimension of 1) whose
    product is U diag(s) V^T: W_j = Q_j diag(s)^(1/N) Q_{j-1}^T with random orthogonal Q_0..Q_N.

    Balanced means W_{j+1}^T W_{j+1} = W_j W_j^T, the condition under which the end-to-end
    dynamics of a deep linear network have a closed form (Arora et al., 2018, 2019).
    """
    n = len(singular_values)
    # drawn in the dtype of the singular values (the chapters' draws: both in the default dtype),
    # on the generator's device, then moved to theirs
    Q = [random_orthogonal(n, generator, singular_values.dtype).to(singular_values.device)
         for _ in range(depth + 1)]
    root = torch.diag(singular_values ** (1.0 / depth))
    return [(Q[j + 1] @ root @ Q[j].T)[None] for j in range(depth)]


def psd_power(M: torch.Tensor, alpha: float, rel_zero: float = 1e-12) -> torch.Tensor:
    """M^alpha for a symmetric PSD M (batched), through its eigenvalues.

    Round-off leaves "zero" eigenvalues at about 1e-16, and a small power would blow them up
    (1e-16 ** 0.2 = 6e-4): eigenvalues below ``rel_zero`` times the largest count as exactly 0.
    """
    values, vectors = torch.linalg.eigh(M)
    zero = values <= rel_zero * values.abs().amax(-1, keepdim=True)
    powered = torch.where(zero, torch.full_like(values, 1.0 if alpha == 0 else 0.0),
                          values.clamp_min(1e-300) ** alpha)
    return vectors @ torch.diag_embed(powered) @ vectors.transpose(-1, -2)


__all__ = ["balanced_factors", "psd_power", "random_orthogonal", "random_orthonormal"]
