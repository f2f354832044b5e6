"""Normalized gradient descent for logistic regression, one step size per run (Normalized LR+GD).

Each run s divides its step by its own current loss:

    x <- x - (lr_s / f_s(x)) grad f_s(x).

On separable data the logistic loss f and its gradient shrink together (both are dominated by the
points with the smallest score), so the step stays of the size it would have at the start and does
not fade as plain GD's does; this is the normalisation that Tyurin (2024) proposes, from the
connection between LR+GD and the perceptron.

``step(closure)`` needs the closure: it must zero the gradients, compute the per-run losses
(shape (N,)), call ``backward`` on their sum and return them.

Used in: chapter 6 (from logistic regression to the perceptron with large step sizes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from repro.optim.per_run import PerRun, on_device_of


class PerRunNormalizedGD(PerRun):
    """x <- x - lr_s * grad / f_s(x) for run s; the closure returns the (N,) per-run losses."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        if closure is None:
            raise ValueError("PerRunNormalizedGD.step needs a closure that returns the per-run "
                             "losses (N,) after calling backward on their sum")
        with torch.enable_grad():
            loss = closure()
        loss = torch.as_tensor(loss)
        for group in self.param_groups:
            if loss.shape != group["lr"].shape:
                raise ValueError(f"the closure returned losses of shape {tuple(loss.shape)}, "
                                 f"not one per run {tuple(group['lr'].shape)}")
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                f = loss.detach().to(p.device, p.dtype)
                # a loss that underflowed to 0 has a zero gradient too: such a run stays put
                scale = torch.where(f > 0, on_device_of(self._cache, group["lr"], p) / f, 0.0)
                p.sub_(scale.reshape(-1, *[1] * (p.ndim - 1)) * p.grad)
        return loss


__all__ = ["PerRunNormalizedGD"]
