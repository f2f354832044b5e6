"""Per-example quadratic losses with planted Hessians of controlled coherence.

Each example i has the loss l_i(w) = (x_i^T w)^2 / 2, whose Hessian H_i = x_i x_i^T is rank one
(as for the squared loss of a linear model at interpolation), and the training loss is their mean
L(w) = (1/n) sum_i l_i(w), minimised at w = 0. The directions are planted:

    x_i = c (sqrt(a) u + sqrt(1 - a) e_i),

with one shared unit direction u and one own unit direction e_i per example. ``alignment`` a in
[0, 1] moves the Hessians from mutually orthogonal (a = 0, incoherent) to identical (a = 1,
coherent). With ``directions="orthogonal"`` (d >= n + 1) the e_i are orthonormal and orthogonal to
u, so x_i^T x_j = c^2 a for i != j: the coherence measure of Dexter et al. (2024) is then exactly
sigma = 1 + (n - 1) a, and lambda_max(H) = c^2 sigma / n. With ``directions="gaussian"`` the e_i
are independent random unit vectors (any d): the same picture with random overlaps. The scale c
is chosen so that lambda_max(H) of the mean Hessian equals ``sharpness``, which keeps the
sharpness fixed while the coherence varies.

References: [Dexter et al., 2024](https://arxiv.org/abs/2401.12332), Sec. 5 (synthetic problems
with per-example Hessians of controlled alignment).

Used in: chapter 12 (SGD stability and loss-surface geometry).
"""

from __future__ import annotations

import torch

from repro.checks import in_unit_interval as _in_unit_interval
from repro.checks import one_of as _one_of
from repro.checks import positive as _positive
from repro.checks import positive_int as _positive_int
from repro.seeds import generator as _generator


class PlantedQuadratic:
    """n rank-one quadratic losses l_i(w) = (x_i^T w)^2 / 2 in R^d with planted alignment.

    Args:
      n: number of examples.
      d: dimension of w (``directions="orthogonal"`` needs d >= n + 1).
      alignment: a in [0, 1], the weight of the shared direction (0: orthogonal Hessians,
        1: identical ones).
      sharpness: lambda_max of the mean Hessian H = (1/n) sum_i H_i after scaling.
      directions: "orthogonal" (exact, equiangular overlaps) or "gaussian" (random overlaps).
      seed: seed of the random frame (the directions are a random rotation of the planted ones).
    """

    def __init__(self, n: int = 16, d: int = 17, alignment: float = 0.0, sharpness: float = 1.0,
                 directions: str = "orthogonal", seed: int = 0,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        self.n, self.d = _positive_int("n", n), _positive_int("d", d)
        self.alignment = _in_unit_interval("alignment", alignment, closed_right=True)
        self.sharpness = _positive("sharpness", sharpness)
        self.directions = _one_of("directions", directions, ("orthogonal", "gaussian"))
        g = _generator(seed)
        if self.directions == "orthogonal":
            if d < n + 1:
                raise ValueError(f"orthogonal directions need d >= n + 1, got n = {n}, d = {d}")
            q, r = torch.linalg.qr(torch.randn(d, n + 1, generator=g, dtype=dtype))
            q = q * torch.sign(torch.diagonal(r))            # a Haar-random orthonormal frame
            u, own = q[:, 0], q[:, 1:].T                      # (d,), (n, d)
        else:
            u = torch.randn(d, generator=g, dtype=dtype)
            u = u / u.norm()
            own = torch.randn(n, d, generator=g, dtype=dtype)
            own = own / own.norm(dim=1, keepdim=True)
        a = self.alignment
        X = a**0.5 * u + (1 - a) ** 0.5 * own                # (n, d), unit rows when orthogonal
        lam = torch.linalg.eigvalsh(X.T @ X / n)[-1]
        self.X = (X * (self.sharpness / lam) ** 0.5).to(device)

    def example_losses(self, w: torch.Tensor) -> torch.Tensor:
        """l_i(w) = (x_i^T w)^2 / 2 for every example: w of shape (..., d) -> (..., n)."""
        return 0.5 * (w @ self.X.T) ** 2

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        """L(w) = (1/n) sum_i l_i(w): w of shape (..., d) -> (...)."""
        return self.example_losses(w).mean(-1)

    def hessians(self) -> torch.Tensor:
        """The per-example Hessians H_i = x_i x_i^T, shape (n, d, d)."""
        return self.X[:, :, None] * self.X[:, None, :]

    def mean_hessian(self) -> torch.Tensor:
        """H = (1/n) sum_i H_i = X^T X / n, shape (d, d); its top eigenvalue is ``sharpness``."""
        return self.X.T @ self.X / self.n

    def planted_coherence(self) -> float:
        """The coherence measure in closed form, 1 + (n - 1) a (``directions="orthogonal"``)."""
        if self.directions != "orthogonal":
            raise ValueError("the closed form holds for orthogonal directions only")
        return 1.0 + (self.n - 1) * self.alignment
