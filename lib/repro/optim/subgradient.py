"""The subgradient method with a geometrically decaying step, one step size per run.

    U_{t+1} = U_t - lr_s * decay^t * g_t,      g_t a subgradient of the loss at U_t, t = 0, 1, ...

For a nonsmooth loss such as the l1 loss of robust matrix sensing, ``loss.backward()`` returns one
element of the subdifferential (torch differentiates |x| as sign(x), with sign(0) = 0), and that is
the direction the method steps along. A subgradient does not vanish at the minimiser, so with a
constant step (``decay = 1``) the iterates keep oscillating at a distance of order lr around it;
the geometric schedule lr * decay^t of Ma and Fattahi (2023) shrinks that oscillation to zero.

``lr`` has shape (S,) and every parameter leads with the S runs, as for the other per-run
optimizers (``repro.optim.per_run``); ``decay`` is one number in (0, 1] shared by the runs.

Used in: chapter 5 (Ma and Fattahi, sub-gradient method for robust matrix recovery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from repro.optim.per_run import PerRun

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


class SubGradient(PerRun):
    """The subgradient method with step lr_s * decay^t at step t = 0, 1, ... (per run s)."""

    def __init__(self, params: ParamsT, lr: torch.Tensor, decay: float = 1.0) -> None:
        decay = float(decay)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must lie in (0, 1], got {decay}")
        super().__init__(params, lr, decay=decay)

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        # state["step"] counts from 1, so the first step is lr * decay^0 = lr
        return group["decay"] ** (state["step"] - 1) * grad


__all__ = ["SubGradient"]
