"""Plain (stochastic) gradient descent, optionally with heavy-ball momentum.

The reference every other optimizer of the book is compared with. It is ``torch.optim.SGD``
with its arguments checked; with momentum it follows PyTorch's convention v = mu v + g,
w = w - lr v (Sutskever et al. put lr inside v; the two agree for a constant lr).

Used in: chapters 1-4 (Part I) and 10 (Anti-PGD).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from repro.checks import nonnegative

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


class GD(torch.optim.SGD):
    """Gradient descent: w = w - lr * grad L(w) (with momentum: the heavy-ball variant)."""

    def __init__(self, params: ParamsT, lr: float, momentum: float = 0.0) -> None:
        nonnegative("lr", lr)
        nonnegative("momentum", momentum)
        super().__init__(params, lr=lr, momentum=momentum)


__all__ = ["GD"]
