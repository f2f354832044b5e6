"""The widening valley of Orvieto et al. (2022), Sec. 3.

Used in: chapter 10 (Anti-PGD).
"""

from __future__ import annotations

import math

import torch

from repro.checks import positive as _positive
from repro.checks import positive_int as _positive_int


class WideningValley:
    """L(u, v) = 1/2 v^2 |u|^2 with u in R^d, v in R (Orvieto et al., 2022, Sec. 3).

    Every point with v = 0 is a minimum; the valley floor is flat along v and its width in u is
    set by |u|: Tr Hessian = d v^2 + |u|^2. Optimizers see the flat vector w = (u, v) in R^{d+1}
    (``loss_w``, ``start``); ``split`` goes back.
    """

    def __init__(self, d: int) -> None:
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
            raise ValueError(f"expected a last dimension of d + 1 = {self.d + 1}, got "
                             f"{w.shape[-1]}")
        return w[..., : self.d], w[..., self.d]

    def loss_w(self, w: torch.Tensor) -> torch.Tensor:
        return self.loss(*self.split(w))

    def hessian_trace_w(self, w: torch.Tensor) -> torch.Tensor:
        return self.hessian_trace(*self.split(w))

    def start(self, D: float, n_seeds: int = 1, dtype: torch.dtype = torch.float64,
              device: torch.device | str | None = None) -> torch.Tensor:
        """(u0, 0) with |u0|^2 = D, u0 along the diagonal, repeated for n_seeds: shape (S, d+1)."""
        D = _positive("D", D)
        w = torch.zeros(_positive_int("n_seeds", n_seeds), self.d + 1, dtype=dtype, device=device)
        w[:, : self.d] = math.sqrt(D / self.d)
        return w

    # -- Theorem 3.1 and Corollary 3.1 --------------------------------------------------------
    def theorem_3_1(self, alpha: float, D: float) -> dict:
        """Step size, noise limits and the four limit bounds of Thm 3.1 / Cor 3.1.

        Start at (u0, 0) with |u0|^2 = D, step lr = alpha / (2D), Bernoulli noise with
        sigma^2 <= min(alpha^3 D / 2, D / (8 alpha)). Then
          PGD (needs d >= 2 / alpha^2):           lim E|u|^2 >= D / alpha, lim E Tr H >= D / alpha;
          Anti-PGD (needs sigma^2 <= alpha D/(2d)): lim E|u|^2 <= alpha D, lim E Tr H <= 16 alpha D.
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
