"""Robust matrix sensing: symmetric Gaussian sensing with a fraction of gross outliers.

``RobustSensing`` wraps ``SymmetricSensing`` (P instances: operator A, truth X* = U* U*^T) and
corrupts its measurements, y_i = <A_i, X*> + s_i, with s_i = 0 except on a recorded outlier mask,
where s_i ~ N(0, outlier_scale^2). Several outlier fractions are held at once, as a dimension after
the instance: ``y`` has shape (P, F, m). The masks are nested (the measurements corrupted at a
fraction are also corrupted at every larger one, with the same values s_i), so two fractions differ
only by the extra outliers.

A factor U has shape (P, F, ..., n, k): instance, fraction, then any batch dimensions (init
scales, seeds). Two losses, one per leading index:

    loss(U)     = (1/m) |y - A(U U^T)|_1          the l1 loss of Ma and Fattahi (2023)
    loss_l2(U)  = (1/2m) |y - A(U U^T)|_2^2       the least-squares loss, for comparison

and ``subgradient(U)`` = (2/m) sum_i sign(<A_i, U U^T> - y_i) A_i U, the element of the
subdifferential of the l1 loss that automatic differentiation returns.

Used in: chapter 5 (Ma and Fattahi, sub-gradient method for robust matrix recovery).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from repro.checks import positive_int as _positive_int
from repro.problems.matrix_sensing import SymmetricSensing
from repro.seeds import generator as _generator


class RobustSensing:
    """Symmetric Gaussian sensing of a PSD rank-r X* with gross outliers at F fractions."""

    def __init__(self, n: int = 20, r: int = 2, m: int = 400, n_instances: int = 1,
                 fractions: Sequence[float] = (0.0,), outlier_scale: float = 10.0,
                 seed: int = 0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        self.sensing = SymmetricSensing(n=n, r=r, m=m, n_instances=n_instances,
                                        measurements="gaussian", seed=seed, dtype=dtype,
                                        device=device)
        self.n, self.r, self.m, self.P = n, r, m, _positive_int("n_instances", n_instances)
        fractions = [float(p) for p in fractions]
        if not fractions or not all(0.0 <= p < 1.0 for p in fractions):
            raise ValueError(f"outlier fractions must lie in [0, 1), got {fractions}")
        if not outlier_scale >= 0:
            raise ValueError(f"outlier_scale must be >= 0, got {outlier_scale}")
        self.fractions, self.outlier_scale = fractions, float(outlier_scale)
        self.A, self.X_star, self.clean = self.sensing.A, self.sensing.X_star, self.sensing.y
        # a second stream, so the operator and truth do not depend on the outlier model
        g = _generator(seed + 7919)
        order = torch.argsort(torch.rand(self.P, m, generator=g), dim=-1)
        position = torch.argsort(order, dim=-1)          # where each measurement falls in the order
        counts = torch.tensor([round(p * m) for p in fractions])
        self.mask = (position[:, None, :] < counts[None, :, None]).to(device)   # (P, F, m)
        self.outliers = (self.outlier_scale
                         * torch.randn(self.P, m, generator=g, dtype=dtype)).to(device)
        self.y = self.corrupt(self.clean)

    def corrupt(self, clean: torch.Tensor) -> torch.Tensor:
        """The observations: ``clean`` (P, m) plus the outliers on each fraction's mask:
        (P, F, m)."""
        return clean[:, None, :] + self.mask * self.outliers[:, None, :]

    def residual(self, U: torch.Tensor) -> torch.Tensor:
        """A(U U^T) - y for U of shape (P, F, ..., n, k): shape (P, F, ..., m)."""
        r = self.sensing.measure(U @ U.transpose(-1, -2))
        y = self.y.reshape(self.P, len(self.fractions), *([1] * (U.ndim - 4)), self.m)
        return r - y

    def loss(self, U: torch.Tensor) -> torch.Tensor:
        """The l1 loss (1/m) |y - A(U U^T)|_1, one value per leading index (P, F, ...)."""
        return self.residual(U).abs().mean(-1)

    def loss_l2(self, U: torch.Tensor) -> torch.Tensor:
        """The least-squares loss (1/2m) |y - A(U U^T)|^2, one value per leading index."""
        return (self.residual(U) ** 2).mean(-1) / 2

    def subgradient(self, U: torch.Tensor) -> torch.Tensor:
        """(2/m) sum_i sign(r_i) A_i U: a subgradient of ``loss`` at U (shape of U)."""
        return 2 * self.sensing.adjoint(torch.sign(self.residual(U))) @ U / self.m

    def relative_error(self, U: torch.Tensor) -> torch.Tensor:
        """|U U^T - X*|_F / |X*|_F for U of shape (P, ..., n, k): shape (P, ...)."""
        return self.sensing.relative_error(U @ U.transpose(-1, -2))

    def start(self, scales: Sequence[float], k: int | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """The small initialisation U_0 = alpha B, B ~ N(0, 1/n) of shape (n, k) per instance,
        shared by every fraction and scale alpha (so runs differ only by what is compared):
        shape (P, F, len(scales), n, k); k defaults to n (the most over-parameterised factor)."""
        k = _positive_int("k", k if k is not None else self.n)
        B = torch.randn(self.P, 1, 1, self.n, k, generator=generator, dtype=self.A.dtype)
        alpha = torch.as_tensor(list(scales), dtype=self.A.dtype)[None, None, :, None, None]
        U = alpha * B / math.sqrt(self.n)
        return U.expand(self.P, len(self.fractions), -1, -1, -1).contiguous().to(self.A.device)


__all__ = ["RobustSensing"]
