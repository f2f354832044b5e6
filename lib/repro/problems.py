"""Test problems with closed forms: the widening valley, quadratically parameterised regression,
and low-rank matrix sensing.

Every problem takes its parameters with any leading batch dimensions (typically one seed dimension)
and returns one loss per batch element, so a sum of the losses trains independent runs at once.
Data are drawn from an explicit seed.
"""

from __future__ import annotations

import math

import torch

from repro._common import generator as _generator


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _positive(name: str, value) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


class WideningValley:
    """L(u, v) = 1/2 v^2 |u|^2 with u in R^d, v in R (Orvieto et al., 2022, Sec. 3).

    Every point with v = 0 is a minimum; the valley floor is flat along v and its width in u is
    set by |u|: Tr Hessian = d v^2 + |u|^2. Optimizers see the flat vector w = (u, v) in R^{d+1}
    (``loss_w``, ``start``); ``split`` goes back.
    """

    def __init__(self, d: int):
        self.d = _positive_int("d", d)

    # -- the function ---------------------------------------------------------------------------
    def loss(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * v**2 * (u**2).sum(-1)

    def gradient(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return v[..., None] ** 2 * u, v * (u**2).sum(-1)

    def hessian_trace(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # d^2L/du_i^2 = v^2 (d of them), d^2L/dv^2 = |u|^2.
        return self.d * v**2 + (u**2).sum(-1)

    # -- the flat parameter vector w = (u, v) -----------------------------------------------------
    def split(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if w.shape[-1] != self.d + 1:
            raise ValueError(f"expected a last dimension of d + 1 = {self.d + 1}, got {w.shape[-1]}")
        return w[..., : self.d], w[..., self.d]

    def loss_w(self, w: torch.Tensor) -> torch.Tensor:
        return self.loss(*self.split(w))

    def hessian_trace_w(self, w: torch.Tensor) -> torch.Tensor:
        return self.hessian_trace(*self.split(w))

    def start(self, D: float, n_seeds: int = 1, dtype=torch.float64, device=None) -> torch.Tensor:
        """(u0, 0) with |u0|^2 = D, u0 along the diagonal, repeated for n_seeds: shape (S, d+1)."""
        D = _positive("D", D)
        w = torch.zeros(_positive_int("n_seeds", n_seeds), self.d + 1, dtype=dtype, device=device)
        w[:, : self.d] = math.sqrt(D / self.d)
        return w

    # -- Theorem 3.1 and Corollary 3.1 --------------------------------------------------------------
    def theorem_3_1(self, alpha: float, D: float) -> dict:
        """Step size, noise limits and the four limit bounds of Thm 3.1 / Cor 3.1.

        Start at (u0, 0) with |u0|^2 = D, step lr = alpha / (2D), Bernoulli noise with
        sigma^2 <= min(alpha^3 D / 2, D / (8 alpha)). Then
          PGD (needs d >= 2 / alpha^2):           lim E|u|^2 >= D / alpha,  lim E Tr H >= D / alpha;
          Anti-PGD (needs sigma^2 <= alpha D/(2d)): lim E|u|^2 <= alpha D,  lim E Tr H <= 16 alpha D.
        ``sigma2`` is the largest noise level that meets the conditions of both statements.
        """
        alpha, D = _positive("alpha", alpha), _positive("D", D)
        sigma2_pgd = min(alpha**3 * D / 2, D / (8 * alpha))
        sigma2_anti = min(sigma2_pgd, alpha * D / (2 * self.d))
        d_min = 2 / alpha**2
        return {
            "alpha": alpha,
            "D": D,
            "d": self.d,
            "lr": alpha / (2 * D),
            "sigma2_max_pgd": sigma2_pgd,
            "sigma2_max_anti_pgd": sigma2_anti,
            "sigma2": sigma2_anti,
            "d_min": d_min,
            "d_ok": self.d >= d_min,
            "pgd_u2_lower": D / alpha,
            "pgd_trace_lower": D / alpha,
            "anti_pgd_u2_upper": alpha * D,
            "anti_pgd_trace_upper": 16 * alpha * D,
        }


class QuadraticRegression:
    """Quadratically parameterised linear regression with a sparse teacher (Orvieto et al., Fig. 1).

    Inputs x ~ N(0, I_d); teacher s* >= 0 with k entries equal to 1 at random positions; targets
    y = <x, s*> + noise * N(0, 1). The model predicts <x, w*w>, and the loss on the n training
    points is L(w) = (1/4n) |X (w*w) - y|^2. With n < d it has many interpolating minima; the
    flattest ones (small Tr H ~ 2 |w*w|_1 at interpolation) are the sparse ones.
    """

    def __init__(self, d: int = 100, n: int = 40, k: int = 5, noise: float = 0.0, seed: int = 0,
                 n_test: int = 1000, dtype=torch.float64, device=None):
        self.d, self.n, self.k = _positive_int("d", d), _positive_int("n", n), _positive_int("k", k)
        self.n_test = _positive_int("n_test", n_test)
        if k > d:
            raise ValueError(f"k = {k} nonzero teacher entries do not fit in d = {d}")
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        self.noise = float(noise)
        g = _generator(seed)
        support = torch.randperm(d, generator=g)[:k]
        s_star = torch.zeros(d, dtype=dtype)
        s_star[support] = 1.0
        X = torch.randn(n, d, generator=g, dtype=dtype)
        y = X @ s_star + self.noise * torch.randn(n, generator=g, dtype=dtype)
        X_test = torch.randn(self.n_test, d, generator=g, dtype=dtype)
        # Test targets are the teacher's noiseless outputs: the test loss measures the distance to
        # the teacher function, not the label noise.
        y_test = X_test @ s_star
        self.s_star, self.X, self.y = s_star.to(device), X.to(device), y.to(device)
        self.X_test, self.y_test = X_test.to(device), y_test.to(device)
        self._col_norms2 = (self.X**2).sum(0)  # |X_{:,i}|^2, for the Hessian trace

    def _residual(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (w * w) @ X.T - y

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        r = self._residual(w, self.X, self.y)
        return (r**2).sum(-1) / (4 * self.n)

    def test_loss(self, w: torch.Tensor) -> torch.Tensor:
        """The same loss on fresh inputs from the same distribution (noiseless teacher targets)."""
        r = self._residual(w, self.X_test, self.y_test)
        return (r**2).sum(-1) / (4 * self.n_test)

    def population_loss(self, w: torch.Tensor) -> torch.Tensor:
        """The test loss's expectation over x ~ N(0, I): |w*w - s*|^2 / 4."""
        return ((w * w - self.s_star) ** 2).sum(-1) / 4

    def gradient(self, w: torch.Tensor) -> torch.Tensor:
        r = self._residual(w, self.X, self.y)
        return w * (r @ self.X) / self.n

    def hessian_trace(self, w: torch.Tensor) -> torch.Tensor:
        """Tr H = (1/n) [sum_i (X^T r)_i + 2 sum_i w_i^2 |X_{:,i}|^2], r = X (w*w) - y."""
        r = self._residual(w, self.X, self.y)
        return ((r @ self.X).sum(-1) + 2 * (w**2 * self._col_norms2).sum(-1)) / self.n

    def start(self, scale: float, n_seeds: int = 1) -> torch.Tensor:
        """w0 = scale * (1, ..., 1) for every seed: shape (S, d). Seeds then differ by noise only."""
        return torch.full((_positive_int("n_seeds", n_seeds), self.d), float(scale),
                          dtype=self.X.dtype, device=self.X.device)


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
