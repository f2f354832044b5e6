"""Low-rank matrix sensing: recover a PSD rank-r matrix from linear measurements <A_i, X*>.

- ``MatrixSensing``     one Gaussian operator shared by all seeds (seeds differ by initialisation);
                        the loss of a factor U is (1/4m) sum_i (<A_i, U U^T> - y_i)^2
- ``SymmetricSensing``  P independent instances at once (operator, truth and observations carry
                        a leading instance dimension), Gaussian or commuting measurements; the
                        case Gunasekar et al. (2017) prove their conjecture for

A matrix argument has shape (P, ..., n, n) for ``SymmetricSensing``: instance first, then any batch
dimensions (initialisation scales, seeds).

Used in: chapter 1 (Gunasekar et al.) and chapter 10's exercises.
"""

from __future__ import annotations

import math

import torch

from repro.checks import positive_int as _positive_int
from repro.linalg import random_orthonormal
from repro.seeds import generator as _generator


def _orthonormal(P: int, n: int, k: int, g: torch.Generator, dtype) -> torch.Tensor:
    return random_orthonormal((P, n), k, g, dtype)


class MatrixSensing:
    """Recover X* = U* U*^T (n x n, rank r) from m Gaussian measurements y_i = <A_i, X*>.

    A_i are symmetrised Gaussian matrices, U* has orthonormal columns (so |X*|_F^2 = r). A factor
    U of shape (..., n, k) has loss L(U) = (1/4m) sum_i (<A_i, U U^T> - y_i)^2, one per leading
    index. The measurement operator is shared by all seeds; seeds differ by initialisation and
    noise.
    """

    def __init__(self, n: int = 20, r: int = 2, m: int | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
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


class SymmetricSensing:
    """Recover a PSD rank-r X* (n x n) from m linear measurements y_i = <A_i, X*>, A_i symmetric.

    ``measurements="gaussian"``: A_i = (G + G^T)/2 with G i.i.d. N(0, 1).
    ``measurements="commuting"``: A_i = Q diag(a_i) Q^T with one orthogonal Q per instance and
    a_i i.i.d. N(0, 1), so all A_i commute; X* = Q diag(x*) Q^T then shares their eigenvectors
    (r positive eigenvalues), the case where the implicit bias is a theorem (Gunasekar et al. 2017).

    Otherwise X* = U* U*^T with U* having orthonormal columns (eigenvalues 1). The loss of a
    factor U (P, ..., n, k) is f(U U^T) with f(X) = |A(X) - y|^2 / (2m), one value per (P, ...).
    """

    def __init__(self, n: int = 30, r: int = 2, m: int = 100, n_instances: int = 1,
                 measurements: str = "gaussian", seed: int = 0,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        self.n, self.r, self.m = _positive_int("n", n), _positive_int("r", r), _positive_int("m", m)
        self.P = _positive_int("n_instances", n_instances)
        if r > n:
            raise ValueError(f"rank r = {r} exceeds n = {n}")
        if measurements not in ("gaussian", "commuting"):
            raise ValueError(f"unknown measurements {measurements!r}; use 'gaussian' or "
                             "'commuting'")
        self.measurements = measurements
        g = _generator(seed)
        P = self.P
        if measurements == "gaussian":
            G = torch.randn(P, m, n, n, generator=g, dtype=dtype)
            A = (G + G.transpose(-1, -2)) / 2
            U = _orthonormal(P, n, r, g, dtype)
            X = U @ U.transpose(-1, -2)
            self.Q = None
        else:
            Q = _orthonormal(P, n, n, g, dtype)
            a = torch.randn(P, m, n, generator=g, dtype=dtype)
            A = torch.einsum("pij,pmj,pkj->pmik", Q, a, Q)
            # the truth: r of the n shared eigen-directions, with eigenvalues in [1, 2)
            support = torch.argsort(torch.rand(P, n, generator=g), dim=-1)[:, :r]
            lam = torch.zeros(P, n, dtype=dtype)
            lam.scatter_(1, support, 1 + torch.rand(P, r, generator=g, dtype=dtype))
            X = torch.einsum("pij,pj,pkj->pik", Q, lam, Q)
            self.Q, self.a = Q.to(device), a.to(device)
        self.A, self.X_star = A.to(device), X.to(device)
        self.y = self.measure(self.X_star)

    def measure(self, M: torch.Tensor) -> torch.Tensor:
        """<A_i, M> for every measurement of the matching instance:
        (P, ..., n, n) -> (P, ..., m)."""
        P, n = M.shape[0], self.n
        flat = M.reshape(P, -1, n * n)
        out = flat @ self.A.reshape(self.P, self.m, n * n).transpose(-1, -2)
        return out.reshape(*M.shape[:-2], self.m)

    def adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """sum_i v_i A_i: (P, ..., m) -> (P, ..., n, n)."""
        P, n = v.shape[0], self.n
        out = v.reshape(P, -1, self.m) @ self.A.reshape(self.P, self.m, n * n)
        return out.reshape(*v.shape[:-1], n, n)

    def _expand(self, t: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], *([1] * (M.ndim - t.ndim)), *t.shape[1:])

    def residual(self, X: torch.Tensor) -> torch.Tensor:
        return self.measure(X) - self._expand(self.y, X[..., 0])

    def loss_X(self, X: torch.Tensor) -> torch.Tensor:
        """f(X) = |A(X) - y|^2 / (2m), one value per leading index."""
        return (self.residual(X) ** 2).sum(-1) / (2 * self.m)

    def grad_X(self, X: torch.Tensor) -> torch.Tensor:
        """The gradient of f at X: (1/m) sum_i r_i A_i (symmetric)."""
        return self.adjoint(self.residual(X)) / self.m

    def loss(self, U: torch.Tensor) -> torch.Tensor:
        """f(U U^T) for a factor U of shape (P, ..., n, k)."""
        return self.loss_X(U @ U.transpose(-1, -2))

    def relative_error(self, X: torch.Tensor,
                       reference: torch.Tensor | None = None) -> torch.Tensor:
        """|X - R|_F / |R|_F with R the truth X* (default) or a given (P, n, n) reference."""
        R = self.X_star if reference is None else reference
        R = self._expand(R, X)
        return torch.linalg.matrix_norm(X - R) / torch.linalg.matrix_norm(R)


__all__ = ["MatrixSensing", "SymmetricSensing"]
