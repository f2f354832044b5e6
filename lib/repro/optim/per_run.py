"""Optimizers with one step size per run, for sweeps trained as one batched model.

``lr`` has shape (S,), and every parameter's leading dimension indexes the S runs (as in
``DeepLinear``, ``EnsembleMLP`` or a plain (S, d) tensor of weights). Sweeps where each
configuration needs its own step size (the stable step depends on the depth, the sample count or
the scale of the data) then still train in one batched computation. Because each rule acts
element-wise, S runs stepped together are S independent runs.

``PerRun`` owns the bookkeeping (the step counter, the per-run step size, skipping parameters
without a gradient); a variant only says how a gradient becomes an update (``direction``), as
labml's ``GenericAdaptiveOptimizer`` does:

    PerRunGD        d = g
    PerRunMomentum  m = mu m + g;                           d = m          (heavy ball)
    PerRunAdaGrad   v = v + g^2;                            d = g / (sqrt(v) + eps)
    PerRunAdam      m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2;
                    d = m_hat / (sqrt(v_hat) + eps), bias-corrected (Kingma and Ba, 2015)

and every rule steps w = w - lr_s d. ``PerRunGroupRMSprop`` is the one rule that looks across
parameters: one second moment per run, of the squared norm of the run's whole gradient,

    PerRunGroupRMSprop  v_s = a v_s + (1 - a) sum over all parameters of |g_s|^2;
                        d = g / (sqrt(v_s / (1 - a^t)) + eps)

the optimizer of the official code of Arora et al. (2019) for deep matrix factorisation: every
factor of a run takes a step of the same size relative to the run's gradient norm.

Used in: chapters 2 and 3 (Part I: sweeps over step sizes and depths).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from repro.checks import in_unit_interval, positive

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


def on_device_of(cache: dict, value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """``value`` (a group's step sizes or radius) as a tensor on ``like``'s device and dtype,
    converted once and kept in ``cache`` while ``value`` is the same unchanged object: a copy to
    the GPU at every step would wait for the device each time (a tensor changed in place, or
    replaced, is converted again)."""
    if isinstance(value, torch.Tensor) and value.device == like.device \
            and value.dtype == like.dtype:
        return value
    key = (id(value), like.device, like.dtype)
    version = value._version if isinstance(value, torch.Tensor) else None
    hit = cache.get(key)
    if hit is not None and hit[0] is value and hit[1] == version:
        return hit[2]
    out = torch.as_tensor(value, device=like.device, dtype=like.dtype)
    cache[key] = (value, version, out)
    return out


class PerRun(torch.optim.Optimizer):
    """The per-run base: w = w - lr_s * direction(g) for run s.

    ``step`` walks the parameters once and hands each to ``update`` with its runs' step sizes;
    a method whose step is not "minus lr times a direction of the gradient" (a noise term, an
    update from held data) overrides ``update``, and sets ``uses_grad = False`` if it moves
    parameters that have no gradient."""

    uses_grad = True

    def __init__(self, params: ParamsT, lr: torch.Tensor, **defaults) -> None:
        lr = torch.as_tensor(lr)
        if lr.ndim != 1 or not bool((lr > 0).all()):
            raise ValueError("lr must be a 1-D tensor of positive step sizes, one per run")
        super().__init__(params, {"lr": lr, **defaults})
        self._cache: dict = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.shape[:1] != group["lr"].shape:
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} does not lead with "
                                     f"the {len(group['lr'])} runs of lr")

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        """The update direction for one parameter; ``state['step']`` counts from 1."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if self.uses_grad and p.grad is None:
                    continue
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                lr = on_device_of(self._cache, group["lr"], p).reshape(-1, *[1] * (p.ndim - 1))
                self.update(p, lr, state, group)
        return loss

    def update(self, p: torch.Tensor, lr: torch.Tensor, state: dict, group: dict) -> None:
        """Move ``p`` in place; ``lr`` holds its runs' step sizes, shaped to broadcast."""
        p.sub_(lr * self.direction(p.grad, state, group))


class PerRunGD(PerRun):
    """Plain gradient descent, one step size per run."""

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        return grad


class PerRunMomentum(PerRun):
    """Heavy-ball momentum m = mu m + g, one step size per run."""

    def __init__(self, params: ParamsT, lr: torch.Tensor, momentum: float = 0.9) -> None:
        super().__init__(params, lr, momentum=in_unit_interval("momentum", momentum))

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        m = state.get("momentum")
        state["momentum"] = m = grad.clone() if m is None else group["momentum"] * m + grad
        return m


class PerRunAdaGrad(PerRun):
    """AdaGrad (Duchi et al., 2011) with a running sum of squared gradients."""

    def __init__(self, params: ParamsT, lr: torch.Tensor, eps: float = 1e-10) -> None:
        super().__init__(params, lr, eps=positive("eps", eps))

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        v = state.get("sum_sq")
        state["sum_sq"] = v = grad * grad if v is None else v + grad * grad
        return grad / (v.sqrt() + group["eps"])


class PerRunAdam(PerRun):
    """Adam (Kingma and Ba, 2015) with bias correction, one step size per run."""

    def __init__(self, params: ParamsT, lr: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        b1, b2 = (in_unit_interval(f"betas[{i}]", b) for i, b in enumerate(betas))
        super().__init__(params, lr, betas=(b1, b2), eps=positive("eps", eps))

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        b1, b2 = group["betas"]
        t = state["step"]
        m, v = state.get("exp_avg"), state.get("exp_avg_sq")
        m = (1 - b1) * grad if m is None else b1 * m + (1 - b1) * grad
        v = (1 - b2) * grad * grad if v is None else b2 * v + (1 - b2) * grad * grad
        state["exp_avg"], state["exp_avg_sq"] = m, v
        return (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + group["eps"])


class PerRunGroupRMSprop(PerRun):
    """RMSprop with one second moment per run, shared by all of the run's parameters."""

    def __init__(self, params, lr: torch.Tensor, alpha: float = 0.99, eps: float = 1e-4):
        super().__init__(params, lr, alpha=in_unit_interval("alpha", alpha),
                         eps=positive("eps", eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            live = [p for p in group["params"] if p.grad is not None]
            if not live:
                continue
            # the run's whole squared gradient norm, summed over its entries of every parameter
            sq = sum(p.grad.reshape(p.shape[0], -1).pow(2).sum(1) for p in live)
            # the shared state lives with the group's first parameter, so state_dict() keeps it
            shared = self.state[group["params"][0]]
            step = shared.get("step", 0) + 1
            v = group["alpha"] * shared.get("square_avg", torch.zeros_like(sq)) \
                + (1 - group["alpha"]) * sq
            shared.update(step=step, square_avg=v)
            scale = on_device_of(self._cache, group["lr"], v) / (
                (v / (1 - group["alpha"] ** step)).sqrt() + group["eps"])
            for p in live:
                p.sub_(scale.to(p.dtype).reshape(-1, *[1] * (p.ndim - 1)) * p.grad)
        return loss


__all__ = ["PerRun", "PerRunAdaGrad", "PerRunAdam", "PerRunGD", "PerRunGroupRMSprop",
           "PerRunMomentum"]
