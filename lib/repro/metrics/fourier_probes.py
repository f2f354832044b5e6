"""How periodic a neuron is: the inverse participation ratio (IPR) of its Fourier spectrum, and
pruning by it.

For a vector a of non-negative numbers, ``ipr(a, r) = sum_k (a_k / |a|_2)^(2r)``: 1 when a has a
single non-zero entry, 1/K^(r-1) when it is spread evenly over K entries. Applied to the magnitudes
of the real discrete Fourier transform of a neuron's weights over Z_p (``fourier_ipr``), it is
near 1 for a neuron that is a single cosine of a/p (a "generalising" neuron of modular
arithmetic) and small for a neuron whose weights look random (a "memorising" one) (Doshi et al.,
2024; the official code uses r = 2 and numpy's rfft, as here).

``neuron_ipr(vectors)`` averages the IPRs of a neuron's vectors (``ModularMLP.neuron_vectors``:
u, v, w). ``ipr_pruning_mask(scores, fraction)`` keeps all but the ``round(fraction * N)``
lowest-scoring neurons of each run; ``random_pruning_mask`` drops as many neurons chosen at
random, the control for it.

Used in: chapter 9 (to grok or not to grok).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["fourier_ipr", "fourier_spectrum", "ipr", "ipr_pruning_mask", "neuron_ipr",
           "random_pruning_mask"]


def ipr(a: torch.Tensor, r: float = 2.0, dim: int = -1) -> torch.Tensor:
    """sum_k (|a_k| / |a|_2)^(2r) along ``dim``: the inverse participation ratio."""
    if not r > 0:
        raise ValueError(f"r must be > 0, got {r!r}")
    a = a.abs()
    norm = torch.linalg.vector_norm(a, dim=dim, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("the IPR of a zero vector is undefined")
    return ((a / norm) ** (2 * r)).sum(dim=dim)


def fourier_spectrum(w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """|rfft(w)| along ``dim``: the magnitudes at the frequencies 0 .. floor(p / 2)."""
    return torch.fft.rfft(w, dim=dim).abs()


def fourier_ipr(w: torch.Tensor, r: float = 2.0, dim: int = -1) -> torch.Tensor:
    """The IPR of the Fourier magnitudes of ``w`` along ``dim``."""
    return ipr(fourier_spectrum(w, dim=dim), r=r, dim=dim)


def neuron_ipr(vectors: Mapping[str, torch.Tensor] | torch.Tensor, r: float = 2.0) -> torch.Tensor:
    """The mean over a neuron's vectors (a mapping name -> (..., N, p), or one tensor) of their
    Fourier IPRs: (..., N)."""
    if isinstance(vectors, torch.Tensor):
        return fourier_ipr(vectors, r=r)
    if not vectors:
        raise ValueError("no vectors given")
    return torch.stack([fourier_ipr(v, r=r) for v in vectors.values()]).mean(dim=0)


def _count(n: int, fraction: float) -> int:
    if not 0 <= float(fraction) <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    return int(round(float(fraction) * n))


def ipr_pruning_mask(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keep-mask (bool, shape of ``scores`` (..., N)) without the ``round(fraction * N)``
    lowest-scoring neurons of each row (ties broken by position)."""
    k = _count(scores.shape[-1], fraction)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if k:
        lowest = torch.argsort(scores, dim=-1, stable=True)[..., :k]
        keep.scatter_(-1, lowest, False)
    return keep


def random_pruning_mask(shape: tuple[int, ...] | torch.Size, fraction: float,
                        generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Keep-mask (bool, ``shape`` (..., N)) without ``round(fraction * N)`` neurons of each row,
    drawn uniformly without replacement from ``generator``."""
    shape = tuple(shape)
    k = _count(shape[-1], fraction)
    order = torch.rand(shape, generator=generator).argsort(dim=-1)
    keep = torch.ones(shape, dtype=torch.bool)
    if k:
        keep.scatter_(-1, order[..., :k], False)
    return keep.to(device) if device is not None else keep
