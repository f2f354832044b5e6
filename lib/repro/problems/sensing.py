"""Low-rank matrix sensing with Gaussian measurements."""

from __future__ import annotations

import math

import torch

from repro._common import generator as _generator
from repro.problems._checks import _positive, _positive_int


class MatrixSensing:
    """Recover X* = U* U*^T (n x n, rank r) from m Gaussian measurements y_i = <A_i, X*>.

    A_i are symmetrised Gaussian matrices, U* has orthonormal columns (so |X*|_F^2 = r). A factor
    U of shape (..., n, k) has loss L(U) = (1/4m) sum_i (<A_i, U U^T> - y_i)^2, one per leading
    index. The measurement operator is shared by all seeds; seeds differ by initialisation and noise.
    """

    def __init__(self, n: int = 20, r: int = 2, m: int | None = None, seed: int = 0,
                 dtype=torch.float64, device=None):
        self.n, self.r = _positive_int("n", n), _positive_int("r", r)
        if r > n:
            raise ValueError(f"rank r = {r} exceeds n = {n}")
        self.m = _positive_int("m", m if m is not None else 5 * n * r)
        g = _generator(seed)
        U_star, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=dtype))
        A = torch.randn(self.m, n, n, generator=g, dtype=dtype)
        A = (A + A.transpose(1, 2)) / 2
        self.U_star = U_star.to(device)
        self.X_star = (U_star @ U_star.T).to(device)
        self.A = A.to(device)
        self.y = self.measure(self.X_star)

    def measure(self, M: torch.Tensor) -> torch.Tensor:
        """<A_i, M> for every measurement: shape (..., m)."""
        return torch.einsum("ijk,...jk->...i", self.A, M)

    def loss(self, U: torch.Tensor) -> torch.Tensor:
        r = self.measure(U @ U.transpose(-1, -2)) - self.y
        return (r**2).sum(-1) / (4 * self.m)

    def recovery_error(self, U: torch.Tensor) -> torch.Tensor:
        """|U U^T - X*|_F / |X*|_F: the test error of sensing."""
        diff = U @ U.transpose(-1, -2) - self.X_star
        return torch.linalg.matrix_norm(diff) / torch.linalg.matrix_norm(self.X_star)

    def start(self, scale: float, k: int | None = None, n_seeds: int = 1,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """A small Gaussian factor scale * N(0, 1/n) of shape (S, n, k) (k defaults to n)."""
        k = _positive_int("k", k if k is not None else self.n)
        S = _positive_int("n_seeds", n_seeds)
        U = torch.randn(S, self.n, k, generator=generator, dtype=self.A.dtype)
        return (scale / math.sqrt(self.n) * U).to(self.A.device)


__all__ = ["WideningValley", "QuadraticRegression", "MatrixSensing"]
