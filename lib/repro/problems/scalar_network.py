"""Scalar networks: the product f(w) = w_1 w_2 ... w_D of D scalar weights (a deep linear network of
width one), trained on one target y with the squared loss (Kreisler et al., 2023, Sec. 3).

    L(w) = 1/2 (f(w) - y)^2,        f(w) = prod_i w_i,

    dL/dw_i = (f - y) prod_{j != i} w_j,
    d2L/dw_i dw_j = (f - y) prod_{k != i, j} w_k  (i != j)  +  prod_{k != i} w_k prod_{k != j} w_k.

Gradient flow conserves the balances w_i^2 - w_j^2 (d/dt w_i^2 = -2 (f - y) f is the same for every
i); gradient descent does not, and that is what the chapter is about. Products over "all but one"
or "all but two" weights are formed from prefix and suffix products, never by division, so a zero
weight is handled exactly.

Used in: chapter 13 (GD decreases the sharpness of gradient-flow solutions).
"""

from __future__ import annotations

import torch

from repro.checks import positive_int as _positive_int


def _products_without_one(w: torch.Tensor) -> torch.Tensor:
    """p_i = prod_{j != i} w_j along the last dimension, from prefix and suffix products."""
    ones = torch.ones_like(w[..., :1])
    prefix = torch.cumprod(torch.cat([ones, w[..., :-1]], -1), -1)          # w_1 ... w_{i-1}
    suffix = torch.cumprod(torch.cat([ones, w.flip(-1)[..., :-1]], -1), -1).flip(-1)  # w_{i+1} ...
    return prefix * suffix


def _products_without_two(w: torch.Tensor) -> torch.Tensor:
    """q_ij = prod_{k != i, j} w_k for i != j (0 on the diagonal), shape (..., D, D)."""
    D = w.shape[-1]
    eye = torch.eye(D, dtype=torch.bool, device=w.device)
    rows = []
    for i in range(D):
        # the weights with w_i replaced by 1: their products-without-one give q_ij for every j
        wi = torch.where(eye[i], torch.ones_like(w), w)
        rows.append(_products_without_one(wi))
    q = torch.stack(rows, -2)
    return q.masked_fill(eye, 0.0)


class ScalarNetwork:
    """L(w) = 1/2 (prod_i w_i - y)^2 for w in R^D, batched over any leading dimensions of w.

    Every method takes ``w`` of shape (..., D) and returns one value (or vector, or matrix) per
    leading index, so a sum of the losses of S runs trains them independently.
    """

    def __init__(self, depth: int, target: float = 1.0) -> None:
        self.depth = _positive_int("depth", depth)
        if self.depth < 2:
            raise ValueError("a scalar network needs depth >= 2 (depth 1 is a convex quadratic)")
        self.target = float(target)
        if self.target == 0.0:
            raise ValueError("target must be non-zero (y = 0 makes every GF solution a saddle "
                             "of the product)")

    def _check(self, w: torch.Tensor) -> torch.Tensor:
        if w.shape[-1] != self.depth:
            raise ValueError(f"expected a last dimension of depth = {self.depth}, got "
                             f"{w.shape[-1]}")
        return w

    # -- the function ---------------------------------------------------------------------------
    def output(self, w: torch.Tensor) -> torch.Tensor:
        """f(w) = prod_i w_i."""
        return self._check(w).prod(-1)

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.output(w) - self.target) ** 2

    def gradient(self, w: torch.Tensor) -> torch.Tensor:
        """(f - y) prod_{j != i} w_j, shape (..., D)."""
        w = self._check(w)
        return (w.prod(-1) - self.target)[..., None] * _products_without_one(w)

    def hessian(self, w: torch.Tensor) -> torch.Tensor:
        """(f - y) d2f + grad f grad f^T, shape (..., D, D)."""
        w = self._check(w)
        p = _products_without_one(w)                       # grad f
        residual = (w.prod(-1) - self.target)[..., None, None]
        return residual * _products_without_two(w) + p[..., :, None] * p[..., None, :]

    def sharpness(self, w: torch.Tensor) -> torch.Tensor:
        """The top eigenvalue of the Hessian, lambda_max(H(w)), exactly (eigvalsh of D x D)."""
        return torch.linalg.eigvalsh(self.hessian(w))[..., -1]

    # -- what gradient flow conserves -----------------------------------------------------------
    def balances(self, w: torch.Tensor) -> torch.Tensor:
        """w_i^2 - w_D^2 for i = 1 .. D-1, shape (..., D-1): constant along gradient flow."""
        w = self._check(w)
        return w[..., :-1] ** 2 - w[..., -1:] ** 2

    def gd_balance_factor(self, w: torch.Tensor, lr: float | torch.Tensor) -> torch.Tensor:
        """The factor by which one GD step of size lr multiplies each balance w_i^2 - w_j^2:

            w_i'^2 - w_j'^2 = (w_i^2 - w_j^2) (1 - lr^2 (f - y)^2 prod_{k != i, j} w_k^2),

        shape (..., D, D) (1 on the diagonal). ``lr`` broadcasts against the leading dimensions.
        """
        w = self._check(w)
        residual = w.prod(-1) - self.target
        lr = torch.as_tensor(lr, dtype=w.dtype, device=w.device)
        scale = (lr * residual) ** 2
        factor = 1.0 - scale[..., None, None] * _products_without_two(w) ** 2
        eye = torch.eye(self.depth, dtype=torch.bool, device=w.device)
        return factor.masked_fill(eye, 1.0)
