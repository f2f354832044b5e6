"""The sharpness of the gradient-flow solution (GFS sharpness) of Kreisler et al. (2023): from a
point w, follow gradient flow dw/dt = -grad L(w) until it converges, to S_GF(w); the GFS sharpness
is the top Hessian eigenvalue there, phi(w) = lambda_max(grad^2 L(S_GF(w))).

Two ways to get it:

- ``scalar_gfs_point`` / ``scalar_gfs_sharpness``: in closed form for a scalar network
  f(w) = prod_i w_i with L = 1/2 (f - y)^2. Gradient flow conserves the balances w_i^2 - w_j^2, so
  S_GF(w) is the point of the hyperbola prod_i w_i = y with the same balances: its squares are
  z_i = a_i + u with a_i = w_i^2 - min_j w_j^2 and u > 0 the one root of prod_i (a_i + u) = y^2.
  At a global minimum the Hessian is grad f grad f^T (the residual vanishes), whose one non-zero
  eigenvalue is |grad f|^2 = sum_i prod_{j != i} z_j = y^2 sum_i 1 / z_i.
- ``gradient_flow_solution``: for any model, by rolling the flow out numerically (Euler or
  classical Runge-Kutta steps of a fixed small size) until the loss falls below a tolerance; the
  caller then measures the top eigenvalue at the returned point.

Used in: chapter 13 (GD decreases the sharpness of gradient-flow solutions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from repro.checks import one_of, positive, positive_int

FLOW_METHODS = ("euler", "rk4")


def _gfs_squares(w: torch.Tensor, target: float, iters: int = 200) -> torch.Tensor:
    """z_i = w_i^2 + c with c chosen so that prod_i z_i = target^2 (the squares of S_GF(w))."""
    if w.shape[-1] < 2:
        raise ValueError("a scalar network needs depth >= 2")
    if float(target) == 0.0:
        raise ValueError("target must be non-zero")
    sq = w**2
    a = sq - sq.min(-1, keepdim=True).values                  # >= 0, one of them exactly 0
    log_y2 = torch.log(torch.as_tensor(float(target) ** 2, dtype=w.dtype, device=w.device))
    D = w.shape[-1]
    # Newton on h(v) = sum_i log(a_i + e^v) - log y^2, increasing and convex in v = log u, started
    # where h >= 0 (u = |y|^(2/D) makes every factor at least u): the iterates fall monotonically
    # to the root.
    v = torch.full(w.shape[:-1], float(log_y2) / D, dtype=w.dtype, device=w.device)
    for _ in range(iters):
        u = v.exp()[..., None]
        h = torch.log(a + u).sum(-1) - log_y2
        dh = (u / (a + u)).sum(-1)
        step = h / dh
        v = v - step
        if bool((step.abs() <= 4 * torch.finfo(w.dtype).eps * (1 + v.abs())).all()):
            break
    return a + v.exp()[..., None]


def scalar_gfs_point(w: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """S_GF(w) for the scalar network L = 1/2 (prod_i w_i - target)^2, in closed form, (..., D).

    Magnitudes from the conserved balances. Signs: gradient flow changes the sign of a weight only
    by passing it through zero, which only the weight of smallest magnitude can reach; it does so
    exactly when the sign of prod_i w_i differs from the target's. (Assumes a unique weight of
    smallest magnitude in that case; ties are saddles of measure zero.)
    """
    z = _gfs_squares(w, target)
    signs = torch.where(w < 0, -1.0, 1.0).to(w.dtype)
    k = (w**2).argmin(-1, keepdim=True)
    others = signs.scatter(-1, k, 1.0).prod(-1, keepdim=True)
    sign_y = 1.0 if target > 0 else -1.0
    signs = signs.scatter(-1, k, sign_y * others)
    return signs * z.sqrt()


def scalar_gfs_sharpness(w: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """phi(w) = target^2 sum_i 1 / z_i, the top Hessian eigenvalue at S_GF(w); shape (...)."""
    z = _gfs_squares(w, target)
    return float(target) ** 2 * (1.0 / z).sum(-1)


@dataclass
class FlowResult:
    """Where a numerical gradient flow ended: ``params`` (the structure that was passed in,
    detached), the final ``loss`` and, per model, the number of ``steps`` taken, the flow ``time``
    (steps x step size) and whether the loss fell below the tolerance (``converged``)."""

    params: torch.Tensor | list[torch.Tensor]
    loss: torch.Tensor
    steps: torch.Tensor
    time: torch.Tensor
    converged: torch.Tensor


def gradient_flow_solution(loss_fn: Callable[..., torch.Tensor],
                           params: torch.Tensor | Sequence[torch.Tensor], *, step: float,
                           tol: float, max_steps: int = 100_000, method: str = "rk4",
                           per_model: bool | None = None) -> FlowResult:
    """Roll gradient flow dw/dt = -grad L(w) out from ``params`` until L < ``tol``.

    ``loss_fn(params)`` returns a scalar, or one loss per model (shape (S,)) when every parameter
    leads with the S models of a batched ensemble; then each model stops on its own (its weights
    freeze once its loss is below ``tol``). ``method`` is ``"euler"`` (w -= step * g) or ``"rk4"``
    (the classical fourth-order Runge-Kutta step, four gradients per step). The step must be small
    against 1 / lambda_max along the path for either to follow the flow rather than a
    discretisation of it; ``tests/metrics/test_gfs_sharpness.py`` checks the rollout against the
    closed form of a scalar network. A model that has not converged after ``max_steps`` is returned
    where it stands, with ``converged`` False.
    """
    step = positive("step", step)
    tol = positive("tol", tol)
    max_steps = positive_int("max_steps", max_steps)
    method = one_of("method", method, FLOW_METHODS)
    single = isinstance(params, torch.Tensor)
    ws = [p.detach().clone() for p in ([params] if single else list(params))]

    def losses_and_grads(point: list[torch.Tensor]):
        xs = [x.detach().requires_grad_(True) for x in point]
        with torch.enable_grad():
            loss = loss_fn(xs[0] if single else xs)
            grads = torch.autograd.grad(loss.sum(), xs)
        return loss.detach(), [g.detach() for g in grads]

    loss, grads = losses_and_grads(ws)
    if per_model is None:
        per_model = loss.ndim == 1 and all(w.ndim >= 1 and w.shape[0] == loss.shape[0] for w in ws)
    shape = loss.shape if per_model else ()
    steps = torch.zeros(shape, dtype=torch.long, device=loss.device)

    def masked(g: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        if per_model:
            return g * active.to(g.dtype).reshape(-1, *[1] * (g.ndim - 1))
        return g * active.to(g.dtype)

    for _ in range(max_steps):
        active = loss >= tol
        if not bool(active.any()):
            break
        if method == "euler":
            update = grads
        else:
            k1 = grads
            _, k2 = losses_and_grads([w - 0.5 * step * k for w, k in zip(ws, k1)])
            _, k3 = losses_and_grads([w - 0.5 * step * k for w, k in zip(ws, k2)])
            _, k4 = losses_and_grads([w - step * k for w, k in zip(ws, k3)])
            update = [(a + 2 * b + 2 * c + d) / 6 for a, b, c, d in zip(k1, k2, k3, k4)]
        ws = [w - step * masked(u, active) for w, u in zip(ws, update)]
        steps = steps + active.long()
        loss, grads = losses_and_grads(ws)
    return FlowResult(params=ws[0] if single else ws, loss=loss, steps=steps,
                      time=steps.to(loss.dtype) * step, converged=loss < tol)


__all__ = ["FlowResult", "gradient_flow_solution", "scalar_gfs_point",
           "scalar_gfs_sharpness"]
