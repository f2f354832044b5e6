"""Compressed sensing with a generative prior: the problem, CSGM, CS-BGM (MAP) and Lasso.

The problem is ``y = A x + noise`` with ``A`` an ``m x n`` Gaussian matrix, ``m`` much smaller
than ``n``. Three estimators recover ``x``:

- :func:`csgm`    Bora et al. (2017): ``min_z (1/m)||y - A G(z)||^2 + lam_z ||z||^2`` with the
  generator's weights fixed; best of several random restarts.
- :func:`cs_bgm`  Zhang et al. (2022), MAP form: the weights theta of ``G`` become variables too,
  pulled towards the trained ``theta0`` by ``lam_theta * ||theta - theta0||^2`` (or by the
  authors' code's per-layer mean ``sum_l mean((theta_l - theta0_l)^2)``). Solved as their code does: per restart, reset
  ``theta = theta0``, run ``steps_z`` Adam steps on ``z``, then ``steps_theta`` Adam steps on
  ``theta`` (beta1 = 0.5); keep the restart with the smallest objective.
- :func:`lasso_dct`  the classical baseline: an l1 penalty on the image's 2-D DCT coefficients,
  solved by scikit-learn's ``Lasso``.

Batching: ``A`` is ``(B, M, n)`` and ``y`` ``(B, M)``, one row per problem (image, seed and
number of measurements). Problems with fewer measurements are zero-padded to ``M`` rows and carry
their own count in ``m`` (:func:`pad_problems` does this); zero rows add nothing to the residual.
All problems and restarts run in one set of tensors: ``z`` is ``(B, R, k)`` and each
(problem, restart) gets its own copy of the decoder's weights, called through
``torch.func.functional_call`` under ``vmap``. Adam acts per coordinate and the total loss is a sum
of per-problem losses, so one optimizer over the stacked tensors is exactly B x R independent runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from repro._common import check_finite
from repro._common import generator as _generator

__all__ = [
    "CompressedSensing",
    "MAPResult",
    "cs_bgm",
    "csgm",
    "dct_basis",
    "gaussian_matrix",
    "lasso_dct",
    "map_estimate",
    "pad_problems",
    "per_pixel_mse",
]


def gaussian_matrix(m: int, n: int, generator: torch.Generator, batch: Sequence[int] = (),
                    std: float = 1.0, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(*batch, m, n)`` with i.i.d. N(0, std^2) entries.

    ``std=1`` is the CS-BGM code's ``randn``; ``std=1/sqrt(m)`` makes E||A x||^2 = ||x||^2 (Bora
    et al.'s normalisation). The two differ only by the scale of y, i.e. of the noise.
    """
    if m < 1 or n < 1:
        raise ValueError(f"gaussian_matrix: m and n must be positive, got m={m}, n={n}")
    a = torch.randn(*batch, m, n, generator=generator, dtype=dtype, device=generator.device)
    return (a * std).to(device if device is not None else a.device)


class CompressedSensing:
    """``y = A x + noise_std * eps`` with ``A`` drawn by :func:`gaussian_matrix` from ``seed``
    (entries N(0, a_std^2)); the noise is drawn from the same seeded generator, after ``A``.

    ``batch`` gives ``A`` leading dimensions (for example one matrix per seed and image).
    """

    def __init__(self, n: int, m: int, noise_std: float = 0.0, seed: int = 0,
                 batch: Sequence[int] = (), a_std: float = 1.0, device=None,
                 dtype=torch.float32):
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.n, self.m, self.noise_std = int(n), int(m), float(noise_std)
        self.generator = _generator(seed)
        self.A = gaussian_matrix(self.m, self.n, self.generator, tuple(batch), a_std, device, dtype)

    def measure(self, x: torch.Tensor) -> torch.Tensor:
        """Noisy measurements of ``x`` (``(..., n)``, broadcast against ``A``'s batch)."""
        clean = torch.einsum("...mn,...n->...m", self.A, x.to(self.A))
        noise = torch.randn(clean.shape, generator=self.generator, dtype=clean.dtype)
        return clean + self.noise_std * noise.to(clean.device)


def pad_problems(As: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]):
    """Stack problems with different m: zero-pad each ``A`` ``(..., m_i, n)`` and ``y``
    ``(..., m_i)`` to the largest m and concatenate along the first dimension.

    Returns ``(A, y, m)`` with ``m`` the true count of every stacked problem.
    """
    if len(As) != len(ys) or not As:
        raise ValueError("pad_problems: give as many y as A, at least one")
    M = max(a.shape[-2] for a in As)
    out_a, out_y, out_m = [], [], []
    for a, y in zip(As, ys):
        if y.shape != a.shape[:-1]:
            raise ValueError(f"pad_problems: y {tuple(y.shape)} does not match A {tuple(a.shape)}")
        a2, y2 = a.reshape(-1, *a.shape[-2:]), y.reshape(-1, y.shape[-1])
        rows = M - a2.shape[-2]
        out_a.append(torch.nn.functional.pad(a2, (0, 0, 0, rows)))
        out_y.append(torch.nn.functional.pad(y2, (0, rows)))
        out_m.append(torch.full((len(a2),), a2.shape[-2], dtype=torch.long, device=a2.device))
    return torch.cat(out_a), torch.cat(out_y), torch.cat(out_m)


def per_pixel_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, one value per image (the paper's metric)."""
    return ((x_hat - x) ** 2).mean(-1)


# ---------------------------------------------------------------------------------------------
# MAP estimators


@dataclass
class MAPResult:
    """The best restart of every problem: image ``x``, latent ``z``, objective and its parts."""

    x: torch.Tensor          # (B, n)
    z: torch.Tensor          # (B, k)
    objective: torch.Tensor  # (B,) the full MAP objective at the returned point
    fit: torch.Tensor        # (B,) (1/m)||y - A x||^2
    theta_shift: torch.Tensor  # (B,) the penalty P(theta - theta0) without lam_theta; 0 for CSGM
    z_all: torch.Tensor      # (B, R, k) every restart's latent at the end: CSGM's z_all, passed
    #                          as z_init with steps_z=0, continues into CS-BGM's theta steps


def _residual_fit(A, y, x, m):
    r = y - torch.einsum("...mn,...n->...m", A, x)
    return (r**2).sum(-1) / m


def map_estimate(decoder: nn.Module, A: torch.Tensor, y: torch.Tensor, *, lam_z: float,
                 lam_theta: float = math.inf, steps_z: int = 500, steps_theta: int = 0,
                 restarts: int = 1, lr_z: float = 0.05, lr_theta: float = 2e-4,
                 generator: torch.Generator | None = None, m: torch.Tensor | None = None,
                 z_init: torch.Tensor | None = None, chunk: int | None = None,
                 penalty: str = "sum") -> MAPResult:
    """Minimise ``(1/m)||y - A G_theta(z)||^2 + lam_z||z||^2 + lam_theta * P(theta - theta0)``
    per problem, with ``P`` the squared norm ``||theta - theta0||^2`` (``penalty="sum"``) or the
    authors' code's ``sum_l mean((theta_l - theta0_l)^2)`` (``penalty="layer_mean"``).
    Per restart: ``steps_z`` Adam steps on z with theta = theta0, then ``steps_theta`` Adam steps
    (beta1 = 0.5) on theta with z fixed; the restart with the smallest objective is kept.

    ``lam_z`` and ``lam_theta`` are numbers or one value per problem (``(B,)``), so a grid of
    penalties can run as one batch. ``steps_theta=0`` (or ``lam_theta=inf``) is CSGM. ``A`` is ``(B, M, n)`` or ``(M, n)``
    (shared), ``y`` ``(B, M)``; ``m`` the true measurement counts (default ``M``). Initial
    latents are drawn from N(0, I) with ``generator`` (or given as ``z_init``, ``(B, R, k)``).
    ``chunk`` bounds how many problems run at once (memory); it does not change the result.
    """
    params0 = {k: v.detach() for k, v in decoder.named_parameters()}
    first = next(iter(params0.values()))
    y = y.to(first)
    B = y.shape[0]
    A = A.to(first).expand(B, *A.shape[-2:]) if A.ndim == 2 else A.to(first)
    if A.shape[:2] != y.shape:
        raise ValueError(f"map_estimate: A {tuple(A.shape)} and y {tuple(y.shape)} disagree")
    m = torch.full((B,), A.shape[-2], device=y.device) if m is None else m.to(y.device)
    m = m.to(y.dtype)
    latent = _latent_dim(decoder, params0)
    if z_init is None:
        where = generator.device if generator is not None else "cpu"
        z_init = torch.randn(B, restarts, latent, generator=generator, device=where, dtype=y.dtype)
    z_init = z_init.to(first)
    lam_z = torch.as_tensor(lam_z, dtype=y.dtype, device=y.device).expand(B)
    lam_theta = torch.as_tensor(lam_theta, dtype=y.dtype, device=y.device).expand(B)
    if torch.isinf(lam_theta).all():
        steps_theta = 0  # an infinite penalty pins theta to theta0: CSGM
    elif torch.isinf(lam_theta).any() and steps_theta:
        raise ValueError("map_estimate: lam_theta is infinite for some problems only; run those "
                         "as CSGM (steps_theta=0) separately")
    if (lam_z < 0).any() or (lam_theta < 0).any():
        raise ValueError("map_estimate: the penalties lam_z and lam_theta must be >= 0")
    if penalty not in ("sum", "layer_mean"):
        raise ValueError(f"penalty must be 'sum' or 'layer_mean', got {penalty!r}")
    chunk = B if chunk is None else max(1, int(chunk))
    parts = [
        _map_chunk(decoder, params0, A[s:s + chunk], y[s:s + chunk], m[s:s + chunk],
                   z_init[s:s + chunk], lam_z[s:s + chunk, None], lam_theta[s:s + chunk, None],
                   steps_z, steps_theta, lr_z, lr_theta,
                   penalty == "layer_mean")
        for s in range(0, B, chunk)
    ]
    return MAPResult(*(torch.cat([getattr(p, f) for p in parts]) for f in
                       ("x", "z", "objective", "fit", "theta_shift", "z_all")))


def _latent_dim(decoder, params0) -> int:
    first_linear = next(mod for mod in decoder.modules() if isinstance(mod, nn.Linear))
    return first_linear.in_features


def _map_chunk(decoder, params0, A, y, m, z0, lam_z, lam_theta, steps_z, steps_theta, lr_z,
               lr_theta, layer_mean) -> MAPResult:
    B, R, k = z0.shape
    A_r, y_r, m_r = (t.unsqueeze(1).expand(B, R, *t.shape[1:]) for t in (A, y, m))

    # Phase 1: z with theta = theta0, shared by every problem (one ordinary batched forward).
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr_z)
    for step in range(int(steps_z)):
        x = functional_call(decoder, params0, (z,))  # detached weights: no gradient for theta
        loss = _residual_fit(A_r, y_r, x, m_r) + lam_z * (z**2).sum(-1)
        check_finite(loss.sum(), "CSGM objective (z steps)", step)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    z = z.detach()

    shift = torch.zeros(B, R, dtype=y.dtype, device=y.device)
    if steps_theta:
        # Phase 2: one copy of the weights per (problem, restart), z fixed.
        K = B * R
        theta = {n: p.unsqueeze(0).repeat(K, *([1] * p.ndim)).requires_grad_(True)
                 for n, p in params0.items()}
        call = vmap(lambda p, zz: functional_call(decoder, p, (zz,)))
        zf, Af, yf, mf = z.reshape(K, k), A_r.reshape(K, *A.shape[1:]), y_r.reshape(K, -1), m_r.reshape(K)
        lam_theta_k = lam_theta.expand(B, R).reshape(K)
        opt = _adam(list(theta.values()), lr=lr_theta, betas=(0.5, 0.999))
        for step in range(int(steps_theta)):
            shift_k = _theta_shift(theta, params0, layer_mean)
            loss = _residual_fit(Af, yf, call(theta, zf), mf) + lam_theta_k * shift_k
            check_finite(loss.sum(), "CS-BGM objective (theta steps)", step)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        with torch.no_grad():
            x = call(theta, zf).reshape(B, R, -1)
            shift = _theta_shift(theta, params0, layer_mean).reshape(B, R)
    else:
        with torch.no_grad():
            x = functional_call(decoder, params0, (z,))

    with torch.no_grad():
        fit = _residual_fit(A_r, y_r, x, m_r)
        penalty = lam_theta * shift if steps_theta else torch.zeros_like(shift)
        objective = fit + lam_z * (z**2).sum(-1) + penalty
        best = objective.argmin(1)
        pick = lambda t: t[torch.arange(B, device=t.device), best]
        return MAPResult(pick(x), pick(z), pick(objective), pick(fit), pick(shift), z)


def _adam(params, **kwargs) -> torch.optim.Adam:
    """Adam, fused where this torch build supports it (one kernel for all the stacked copies)."""
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, **kwargs)


def _theta_shift(theta: dict, params0: dict, layer_mean: bool) -> torch.Tensor:
    """||theta - theta0||^2 (or the sum over layers of the mean square), one value per copy."""
    total = 0.0
    for name, p in theta.items():
        d = ((p - params0[name]) ** 2).reshape(len(p), -1)
        total = total + (d.mean(-1) if layer_mean else d.sum(-1))
    return total


def csgm(decoder: nn.Module, A: torch.Tensor, y: torch.Tensor, *, lam_z: float, steps: int = 500,
         restarts: int = 1, lr: float = 0.05, generator=None, m=None, z_init=None,
         chunk=None) -> MAPResult:
    """Bora et al.'s estimator: the best G(z) over z (generator weights fixed)."""
    return map_estimate(decoder, A, y, lam_z=lam_z, steps_z=steps, steps_theta=0,
                        restarts=restarts, lr_z=lr, generator=generator, m=m, z_init=z_init,
                        chunk=chunk)


def cs_bgm(decoder: nn.Module, A: torch.Tensor, y: torch.Tensor, *, lam_z: float, lam_theta: float,
           steps_z: int = 500, steps_theta: int = 400, restarts: int = 1, lr_z: float = 0.05,
           lr_theta: float = 2e-4, generator=None, m=None, z_init=None, chunk=None,
           penalty: str = "sum") -> MAPResult:
    """Zhang et al.'s MAP estimator: z steps, then theta steps around theta0; best restart."""
    return map_estimate(decoder, A, y, lam_z=lam_z, lam_theta=lam_theta, steps_z=steps_z,
                        steps_theta=steps_theta, restarts=restarts, lr_z=lr_z, lr_theta=lr_theta,
                        generator=generator, m=m, z_init=z_init, chunk=chunk, penalty=penalty)


# ---------------------------------------------------------------------------------------------
# Lasso in a DCT basis


def dct_basis(shape: Sequence[int]) -> np.ndarray:
    """``Psi`` (n x n, orthonormal) with ``x = Psi @ c``: the inverse 2-D (or N-D) DCT-II.

    Column j is the image whose orthonormal DCT has a single 1 in position j.
    """
    from scipy.fft import idctn

    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape))
    eye = np.eye(n).reshape(n, *shape)
    return np.stack([idctn(e, norm="ortho").ravel() for e in eye], axis=1)


def lasso_dct(A, y, shape: Sequence[int], alpha: float, m=None, clip=(0.0, 1.0),
              max_iter: int = 10000, tol: float = 1e-4) -> np.ndarray:
    """Lasso in the DCT basis, one problem at a time with scikit-learn:
    ``min_c (1/(2m))||y - A Psi c||^2 + alpha ||c||_1``, ``x = Psi c`` clipped to ``clip``.

    ``A`` ``(B, M, n)`` or ``(M, n)``, ``y`` ``(B, M)``; ``m`` the true row counts (padding).
    Returns ``(B, n)`` as a numpy array.
    """
    from sklearn.linear_model import Lasso

    A = np.asarray(A.detach().cpu() if torch.is_tensor(A) else A, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if torch.is_tensor(y) else y, dtype=np.float64)
    if A.ndim == 2:
        A = np.broadcast_to(A, (len(y), *A.shape))
    counts = np.full(len(y), A.shape[-2]) if m is None else np.asarray(
        m.cpu() if torch.is_tensor(m) else m).astype(int)
    psi = dct_basis(shape)
    out = np.empty((len(y), A.shape[-1]))
    for b in range(len(y)):
        rows = counts[b]
        design = A[b, :rows] @ psi
        model = Lasso(alpha=alpha, fit_intercept=False, max_iter=max_iter, tol=tol)
        model.fit(design, y[b, :rows])
        out[b] = psi @ model.coef_
    return np.clip(out, *clip) if clip is not None else out
