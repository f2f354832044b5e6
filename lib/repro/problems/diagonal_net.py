"""Quadratically parameterised regression (a diagonal linear network) with a sparse teacher.

Minibatches (``sample_batch``, and ``batch=`` in ``loss`` and ``gradient``) turn a sweep of
per-run step sizes into SGD: ``repro.optim.PerRunGD`` stepping on each run's own minibatch
gradient. ``gauss_newton_factors`` gives the per-example factors g_i of the Hessian at an
interpolating minimum, H = (1/n) sum_i g_i g_i^T, which the stability tools of
``repro.metrics.stability`` take.

Used in: chapter 10 (Anti-PGD: the sparse regression of Fig. 1); chapter 11 (Wu and Su: the
trace bound of SGD's stable minima, l1 norm against the step size).
"""

from __future__ import annotations

import torch

from repro.checks import positive_int as _positive_int
from repro.devices import to_device
from repro.seeds import generator as _generator


class QuadraticRegression:
    """Quadratically parameterised linear regression with a sparse teacher (Orvieto et al., Fig. 1).

    Inputs x ~ N(0, I_d); teacher s* >= 0 with k entries equal to 1 at random positions; targets
    y = <x, s*> + noise * N(0, 1). The model predicts <x, w*w>, and the loss on the n training
    points is L(w) = (1/4n) |X (w*w) - y|^2. With n < d it has many interpolating minima; the
    flattest ones (small Tr H ~ 2 |w*w|_1 at interpolation) are the sparse ones.
    """

    def __init__(self, d: int = 100, n: int = 40, k: int = 5, noise: float = 0.0, seed: int = 0,
                 n_test: int = 1000, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
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

    def _batch_residual(self, w: torch.Tensor, batch: torch.Tensor):
        """Each run's residuals on its own minibatch: w (S, d), batch (S, B) -> X_b (S, B, d),
        r (S, B)."""
        batch = torch.as_tensor(batch, device=self.X.device)
        if w.ndim != 2 or batch.ndim != 2 or batch.shape[0] != w.shape[0]:
            raise ValueError(f"a minibatch needs w of shape (S, d) and batch of shape (S, B), got "
                             f"{tuple(w.shape)} and {tuple(batch.shape)}")
        Xb = self.X[batch]
        return Xb, ((w * w).unsqueeze(1) * Xb).sum(-1) - self.y[batch]

    def loss(self, w: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """L(w) = (1/4n) |X (w*w) - y|^2; with ``batch`` (S, B) of example indices, run s's loss
        on its own minibatch, (1/4B) sum over its B examples."""
        if batch is not None:
            _, r = self._batch_residual(w, batch)
            return (r**2).sum(-1) / (4 * r.shape[-1])
        r = self._residual(w, self.X, self.y)
        return (r**2).sum(-1) / (4 * self.n)

    def test_loss(self, w: torch.Tensor) -> torch.Tensor:
        """The same loss on fresh inputs from the same distribution (noiseless teacher targets)."""
        r = self._residual(w, self.X_test, self.y_test)
        return (r**2).sum(-1) / (4 * self.n_test)

    def population_loss(self, w: torch.Tensor) -> torch.Tensor:
        """The test loss's expectation over x ~ N(0, I): |w*w - s*|^2 / 4."""
        return ((w * w - self.s_star) ** 2).sum(-1) / 4

    def gradient(self, w: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """The gradient of ``loss(w, batch)``: w * X^T r / n (full batch) or per run on its
        minibatch."""
        if batch is not None:
            Xb, r = self._batch_residual(w, batch)
            return w * (r.unsqueeze(-1) * Xb).sum(-2) / r.shape[-1]
        r = self._residual(w, self.X, self.y)
        return w * (r @ self.X) / self.n

    def sample_batch(self, n_runs: int, batch_size: int, generator: torch.Generator,
                     replacement: bool = False) -> torch.Tensor:
        """Independent minibatches of example indices for ``n_runs`` runs: shape (S, B).

        Without replacement (the default) a run's B examples are distinct, a uniform subset of
        the n; with replacement they are B independent uniform draws. ``generator`` lives on the
        CPU; the indices move to the problem's device without waiting for it.
        """
        S, B = _positive_int("n_runs", n_runs), _positive_int("batch_size", batch_size)
        if B > self.n and not replacement:
            raise ValueError(f"batch_size {B} exceeds the n = {self.n} examples")
        if replacement or B == 1:
            idx = torch.randint(0, self.n, (S, B), generator=generator)
        else:
            idx = torch.rand(S, self.n, generator=generator).argsort(-1)[:, :B]
        return to_device(idx, self.X.device)

    def gauss_newton_factors(self, w: torch.Tensor) -> torch.Tensor:
        """The per-example factors g_i = sqrt(2) w * x_i, shape (..., n, d): the Gauss-Newton part
        of the Hessian is (1/n) sum_i g_i g_i^T, which is the whole Hessian where the residuals
        vanish (at an interpolating minimum), and example i's own Hessian there is g_i g_i^T."""
        return 2**0.5 * w.unsqueeze(-2) * self.X

    def l1_norm(self, w: torch.Tensor) -> torch.Tensor:
        """|w*w|_1 = |w|^2, the l1 norm of the linear predictor the network represents."""
        return (w * w).sum(-1)

    def hessian_trace(self, w: torch.Tensor) -> torch.Tensor:
        """Tr H = (1/n) [sum_i (X^T r)_i + 2 sum_i w_i^2 |X_{:,i}|^2], r = X (w*w) - y."""
        r = self._residual(w, self.X, self.y)
        return ((r @ self.X).sum(-1) + 2 * (w**2 * self._col_norms2).sum(-1)) / self.n

    def start(self, scale: float, n_seeds: int = 1) -> torch.Tensor:
        """w0 = scale * (1, ..., 1) for every seed: shape (S, d). Seeds then differ by noise
        only."""
        return torch.full((_positive_int("n_seeds", n_seeds), self.d), float(scale),
                          dtype=self.X.dtype, device=self.X.device)
