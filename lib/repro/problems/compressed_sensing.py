"""Compressed sensing: y = A x + noise with a Gaussian m x n matrix A, m much smaller than n.

Batching: ``A`` is ``(B, M, n)`` and ``y`` ``(B, M)``, one row per problem (image, seed and
number of measurements). Problems with fewer measurements are zero-padded to ``M`` rows and carry
their own count in ``m`` (:func:`pad_problems` does this); zero rows add nothing to the residual.

Used in: chapter 40 (uncertainty in generative compressed sensing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from repro.seeds import generator as _generator


def gaussian_matrix(m: int, n: int, generator: torch.Generator, batch: Sequence[int] = (),
                    std: float = 1.0, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(*batch, m, n)`` with i.i.d. N(0, std^2) entries.

    ``std=1`` is the CS-BGM code's ``randn``; ``std=1/sqrt(m)`` makes E||A x||^2 = ||x||^2 (Bora
    et al.'s normalisation). The two differ only by the scale of y, i.e. of the noise.
    """
    if m < 1 or n < 1:
        raise ValueError(f"gaussian_matrix: m and n must be positive, got m={m}, n={n}")
    a = torch.randn(*batch, m, n, generator=generator, dtype=dtype, device=generator.device)
    return (a * std).to(device if device is not None else a.device)


class CompressedSensing:
    """``y = A x + noise_std * eps`` with ``A`` drawn by :func:`gaussian_matrix` from ``seed``
    (entries N(0, a_std^2)); the noise is drawn from the same seeded generator, after ``A``.

    ``batch`` gives ``A`` leading dimensions (for example one matrix per seed and image).
    """

    def __init__(self, n: int, m: int, noise_std: float = 0.0, seed: int = 0,
                 batch: Sequence[int] = (), a_std: float = 1.0,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.n, self.m, self.noise_std = int(n), int(m), float(noise_std)
        self.generator = _generator(seed)
        self.A = gaussian_matrix(self.m, self.n, self.generator, tuple(batch), a_std, device, dtype)

    def measure(self, x: torch.Tensor) -> torch.Tensor:
        """Noisy measurements of ``x`` (``(..., n)``, broadcast against ``A``'s batch)."""
        clean = torch.einsum("...mn,...n->...m", self.A, x.to(self.A))
        noise = torch.randn(clean.shape, generator=self.generator, dtype=clean.dtype)
        return clean + self.noise_std * noise.to(clean.device)


def pad_problems(As: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack problems with different m: zero-pad each ``A`` ``(..., m_i, n)`` and ``y``
    ``(..., m_i)`` to the largest m and concatenate along the first dimension.

    Returns ``(A, y, m)`` with ``m`` the true count of every stacked problem.
    """
    if len(As) != len(ys) or not As:
        raise ValueError("pad_problems: give as many y as A, at least one")
    M = max(a.shape[-2] for a in As)
    out_a, out_y, out_m = [], [], []
    for a, y in zip(As, ys):
        if y.shape != a.shape[:-1]:
            raise ValueError(f"pad_problems: y {tuple(y.shape)} does not match A {tuple(a.shape)}")
        a2, y2 = a.reshape(-1, *a.shape[-2:]), y.reshape(-1, y.shape[-1])
        rows = M - a2.shape[-2]
        out_a.append(torch.nn.functional.pad(a2, (0, 0, 0, rows)))
        out_y.append(torch.nn.functional.pad(y2, (0, rows)))
        out_m.append(torch.full((len(a2),), a2.shape[-2], dtype=torch.long, device=a2.device))
    return torch.cat(out_a), torch.cat(out_y), torch.cat(out_m)


__all__ = ['CompressedSensing', 'gaussian_matrix', 'pad_problems']
