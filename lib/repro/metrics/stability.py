"""Linear stability of SGD at an interpolating minimum, in the mean-square sense.

Near a minimum theta* of a square loss that fits every example, the Hessian is
H = (1/n) sum_i g_i g_i^T, where example i's own Hessian is g_i g_i^T (for the loss
(1/2n) sum_i (f_i - y_i)^2, g_i = grad f_i). Linearised SGD with batch size B steps

    x_{t+1} = (I - eta H_b) x_t,    H_b = (1/B) sum_{i in b} g_i g_i^T,    x = theta - theta*.

Only the residuals r = G x (r_i = g_i . x) matter: the part of x that no g_i sees never moves.
They follow r_{t+1} = (I - eta K P_b) r_t, with K = G G^T the examples' Gram matrix and P_b the
(n, n) diagonal matrix of the batch's counts divided by B. Their second moment R = E r r^T then
follows a linear map on n x n matrices,

    T(R) = R - (eta/n)(K R + R K) + eta^2 K E[P_b R P_b] K,

    E[P_b R P_b] = (1/B^2) [ (B/n) Diag(R) + c_B (R - Diag(R)) ],
    c_B = B(B-1) / (n(n-1))  (a uniform subset of B examples, without replacement)
    c_B = B(B-1) / n^2       (B independent uniform draws, with replacement; R - Diag(R) -> R).

The minimum is linearly stable for SGD in the mean-square sense (E|r_t|^2 bounded for every start)
exactly when the spectral radius of T is at most 1 (Wu et al., 2018; Mulayoff and Michaeli, 2023).
T maps positive semi-definite matrices to positive semi-definite ones, so its spectral radius is an
eigenvalue with a PSD eigenvector, and power iteration from a positive definite start (on the
range of K) finds it.

- ``sgd_moment_map(K, lr, batch_size, replacement)``: the map T, batched over runs
- ``sgd_stability_radius(...)``: the spectral radius of T, per run
- ``sgd_stability_threshold(K, batch_size, ...)``: the largest stable step size, per run (bisection)
- ``gd_stability_threshold(K)``: GD's 2 / lambda_max(H) = 2 n / lambda_max(K)

K may carry leading run dimensions (..., n, n); ``lr`` is a number or a tensor of shape (...,).

``repro.metrics.mean_square_stability`` treats the general case (any per-example Hessians H_i, the
operator on the range of H, one problem at a time). This module is its rank-one special case, the
square loss at interpolation: in the residual coordinates it needs only the n x n Gram matrix, so
it runs batched over the runs of a sweep (every run ends at its own minimum). The tests check the
two against each other.

Used in: chapter 11 (Wu and Su, 2023: SGD's stable minima have tr H <= 2/eta).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from repro.checks import positive_int


def _check(K: torch.Tensor, batch_size: int, replacement: bool) -> tuple[int, int]:
    if K.ndim < 2 or K.shape[-1] != K.shape[-2]:
        raise ValueError(f"K must be a (..., n, n) Gram matrix, got shape {tuple(K.shape)}")
    n, B = K.shape[-1], positive_int("batch_size", batch_size)
    if B > n and not replacement:
        raise ValueError(f"batch_size {B} exceeds the n = {n} examples")
    return n, B


def sgd_moment_map(K: torch.Tensor, lr: float | torch.Tensor, batch_size: int = 1,
                   replacement: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map R -> E[(I - lr K P_b) R (I - lr P_b K)] of the residuals' second moment."""
    n, B = _check(K, batch_size, replacement)
    lr = torch.as_tensor(lr, dtype=K.dtype, device=K.device)[..., None, None]
    if replacement:
        same, other = 1.0 / (n * B), (B - 1) / (B * n * n)
    else:
        same, other = 1.0 / (n * B), ((B - 1) / (B * n * (n - 1)) if n > 1 else 0.0)

    def T(R: torch.Tensor) -> torch.Tensor:
        diag = torch.diag_embed(torch.diagonal(R, dim1=-2, dim2=-1))
        # E[P_b R P_b]: the diagonal comes from an example meeting itself, the rest from pairs
        middle = same * diag + other * (R if replacement else R - diag)
        return R - (lr / n) * (K @ R + R @ K) + lr**2 * (K @ middle @ K)

    return T


def sgd_stability_radius(K: torch.Tensor, lr: float | torch.Tensor, batch_size: int = 1,
                         replacement: bool = False, iters: int = 2000) -> torch.Tensor:
    """The spectral radius of ``sgd_moment_map``, per run: > 1 means the minimum is unstable.

    Power iteration from R = K; the radius is the geometric mean of the growth of the
    trace over the second half of the iterations (robust to a slowly converging direction).
    """
    iters = positive_int("iters", iters)
    T = sgd_moment_map(K, lr, batch_size, replacement)
    n = K.shape[-1]
    lead = torch.broadcast_shapes(K.shape[:-2], torch.as_tensor(lr).shape)
    # Residuals live in the range of K (r = G x). Start from the second moment of an isotropic x,
    # R = K, and project every iterate back onto that range, so that rounding cannot grow a
    # component the true dynamics never has.
    vals, vecs = torch.linalg.eigh(K)
    keep = (vals > vals[..., -1:] * n * torch.finfo(K.dtype).eps).to(K.dtype)
    P = (vecs * keep.unsqueeze(-2)) @ vecs.transpose(-1, -2)
    P = P.expand(*lead, n, n)
    R = K.expand(*lead, n, n).clone()
    log_growth = torch.zeros(lead, dtype=K.dtype, device=K.device)
    tail = 0
    for k in range(iters):
        R = T(R)
        R = P @ ((R + R.transpose(-1, -2)) / 2) @ P  # nor an antisymmetric part
        s = torch.diagonal(R, dim1=-2, dim2=-1).sum(-1).clamp_min(torch.finfo(K.dtype).tiny)
        R = R / s[..., None, None]
        if k >= iters // 2:
            log_growth, tail = log_growth + s.log(), tail + 1
    return (log_growth / tail).exp()


def gd_stability_threshold(K: torch.Tensor) -> torch.Tensor:
    """GD's largest stable step size 2 / lambda_max(H) = 2 n / lambda_max(K), per run."""
    n = K.shape[-1]
    return 2 * n / torch.linalg.eigvalsh(K)[..., -1]


def sgd_stability_threshold(K: torch.Tensor, batch_size: int = 1, replacement: bool = False,
                            iters: int = 1000, bisections: int = 30) -> torch.Tensor:
    """The largest step size at which the minimum is mean-square stable for SGD, per run.

    Bisection on [0, 2 n / lambda_max(K)]: SGD's threshold is never above GD's (a batch's own
    step already has to be stable on average), and the radius grows with the step size.
    """
    hi = gd_stability_threshold(K)
    lo = torch.zeros_like(hi)
    for _ in range(positive_int("bisections", bisections)):
        mid = (lo + hi) / 2
        stable = sgd_stability_radius(K, mid, batch_size, replacement, iters) <= 1
        lo, hi = torch.where(stable, mid, lo), torch.where(stable, hi, mid)
    return lo


__all__ = ["gd_stability_threshold", "sgd_moment_map", "sgd_stability_radius",
           "sgd_stability_threshold"]
