"""Compressed sensing with a generative prior: CSGM and CS-BGM (MAP), batched over problems.

- :func:`csgm`    Bora et al. (2017): ``min_z (1/m)||y - A G(z)||^2 + lam_z ||z||^2`` with the
  generator's weights fixed; best of several random restarts.
- :func:`cs_bgm`  Zhang et al. (2022), MAP form: the weights theta of ``G`` become variables too,
  pulled towards the trained ``theta0`` by ``lam_theta * ||theta - theta0||^2`` (or by the
  authors' code's per-layer mean ``sum_l mean((theta_l - theta0_l)^2)``). Solved as their code
  does: per restart, reset ``theta = theta0``, run ``steps_z`` Adam steps on ``z``, then
  ``steps_theta`` Adam steps on ``theta`` (beta1 = 0.5); keep the restart with the smallest
  objective.

All problems and restarts run in one set of tensors: ``z`` is ``(B, R, k)`` and each
(problem, restart) gets its own copy of the decoder's weights, called through
``torch.func.functional_call`` under ``vmap``. Adam acts per coordinate and the total loss is a sum
of per-problem losses, so one optimizer over the stacked tensors is exactly B x R independent runs.
Problems come padded as ``repro.problems.pad_problems`` makes them.

Used in: chapter 40 (uncertainty in generative compressed sensing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from repro.checks import FiniteWatch

CHECK_EVERY = 100   # steps between reads of the divergence check (one host sync each)


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


def map_estimate(decoder: nn.Module, A: torch.Tensor, y: torch.Tensor, *,
                 lam_z: float | torch.Tensor, lam_theta: float | torch.Tensor = math.inf,
                 steps_z: int = 500, steps_theta: int = 0,
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
    penalties can run as one batch. ``steps_theta=0`` (or ``lam_theta=inf``) is CSGM. ``A`` is
    ``(B, M, n)`` or ``(M, n)`` (shared), ``y`` ``(B, M)``; ``m`` the true measurement counts
    (default ``M``). Initial latents are drawn from N(0, I) with ``generator`` (or given as
    ``z_init``, ``(B, R, k)``). ``chunk`` bounds how many problems run at once (memory); it does
    not change the result.
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
    watch = FiniteWatch("CSGM objective (z steps)", every=CHECK_EVERY)
    for step in range(int(steps_z)):
        x = functional_call(decoder, params0, (z,))  # detached weights: no gradient for theta
        loss = _residual_fit(A_r, y_r, x, m_r) + lam_z * (z**2).sum(-1)
        watch.update(loss, step)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    watch.check()
    z = z.detach()

    shift = torch.zeros(B, R, dtype=y.dtype, device=y.device)
    if steps_theta:
        # Phase 2: one copy of the weights per (problem, restart), z fixed.
        K = B * R
        theta = {n: p.unsqueeze(0).repeat(K, *([1] * p.ndim)).requires_grad_(True)
                 for n, p in params0.items()}
        call = vmap(lambda p, zz: functional_call(decoder, p, (zz,)))
        zf, Af, yf, mf = (z.reshape(K, k), A_r.reshape(K, *A.shape[1:]), y_r.reshape(K, -1),
                          m_r.reshape(K))
        lam_theta_k = lam_theta.expand(B, R).reshape(K)
        opt = _adam(list(theta.values()), lr=lr_theta, betas=(0.5, 0.999))
        watch = FiniteWatch("CS-BGM objective (theta steps)", every=CHECK_EVERY)
        for step in range(int(steps_theta)):
            shift_k = _theta_shift(theta, params0, layer_mean)
            loss = _residual_fit(Af, yf, call(theta, zf), mf) + lam_theta_k * shift_k
            watch.update(loss, step)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        watch.check()
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

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t[torch.arange(B, device=t.device), best]

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


def csgm(decoder: nn.Module, A: torch.Tensor, y: torch.Tensor, *, lam_z: float | torch.Tensor,
         steps: int = 500, restarts: int = 1, lr: float = 0.05,
         generator: torch.Generator | None = None, m: torch.Tensor | None = None,
         z_init: torch.Tensor | None = None, chunk: int | None = None) -> MAPResult:
    """Bora et al.'s estimator: the best G(z) over z (generator weights fixed)."""
    return map_estimate(decoder, A, y, lam_z=lam_z, steps_z=steps, steps_theta=0,
                        restarts=restarts, lr_z=lr, generator=generator, m=m, z_init=z_init,
                        chunk=chunk)


def cs_bgm(decoder: nn.Module, A: torch.Tensor, y: torch.Tensor, *,
           lam_z: float | torch.Tensor, lam_theta: float | torch.Tensor,
           steps_z: int = 500, steps_theta: int = 400, restarts: int = 1, lr_z: float = 0.05,
           lr_theta: float = 2e-4, generator: torch.Generator | None = None,
           m: torch.Tensor | None = None, z_init: torch.Tensor | None = None,
           chunk: int | None = None,
           penalty: str = "sum") -> MAPResult:
    """Zhang et al.'s MAP estimator: z steps, then theta steps around theta0; best restart."""
    return map_estimate(decoder, A, y, lam_z=lam_z, lam_theta=lam_theta, steps_z=steps_z,
                        steps_theta=steps_theta, restarts=restarts, lr_z=lr_z, lr_theta=lr_theta,
                        generator=generator, m=m, z_init=z_init, chunk=chunk, penalty=penalty)


__all__ = ['MAPResult', 'cs_bgm', 'csgm', 'map_estimate']
