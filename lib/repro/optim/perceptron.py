"""The batch perceptron as an update rule, one step size per run.

For data a_i with labels y_i = +-1 and scores z_i = y_i <a_i, x>, one step of the batch perceptron
adds the mean of the misclassified points, signed by their labels:

    x <- x + (lr / n) sum_i h(-z_i) y_i a_i,      h(u) = 1 (u > 0), 1/2 (u = 0), 0 (u < 0).

The weight 1/2 on a point exactly on the boundary is the limit of the logistic weight
sigma(-gamma z) as gamma -> infinity, so this rule is exactly the limit of LR+GD divided by its step
size (Tyurin, 2024): from x = 0 every point has z = 0, and the first step moves along half the mean
signed point, as LR+GD's does. The direction of the iterates does not depend on ``lr`` when the
start is 0.

A point within rounding of the boundary, |z_i| <= ``tie`` * |a_i| |x| (``tie`` = 1e-12), counts as
on it: in exact arithmetic its score is often exactly 0 (an image whose pixels cancel), and a
rounding error of 1e-16 must not decide whether it weighs 0 or 1 (LR+GD, whose weight is
sigma(-gamma z), would give it 1/2 for every gamma up to about 1/|z|).

The optimizer holds the data. Parameters have shape (N, d), the N runs laid out as a ``Grid``
lays them out (data set fastest): with features of shape (B, n, d) run r uses data set r mod B.
``step`` ignores gradients.

Used in: chapter 6 (from logistic regression to the perceptron with large step sizes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from repro.optim.per_run import PerRun

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


def perceptron_direction(x: torch.Tensor, features: torch.Tensor, labels: torch.Tensor,
                         tie: float = 1e-12) -> torch.Tensor:
    """(1/n) sum_i h(-z_i) y_i a_i for each run of x (N, d); features (n, d) or (B, n, d)."""
    batched = features.ndim == 3
    w = x.reshape(-1, features.shape[0], x.shape[-1]) if batched else x
    z = labels * (features * w[..., None, :]).sum(-1)
    scale = features.norm(dim=-1) * w.norm(dim=-1, keepdim=True)
    z = torch.where(z.abs() <= tie * scale, torch.zeros_like(z), z)
    weight = torch.heaviside(-z, torch.full_like(z, 0.5))
    d = ((weight * labels)[..., None] * features).mean(-2)
    return d.reshape(x.shape)


class PerRunBatchPerceptron(PerRun):
    """The batch perceptron x <- x + lr_s * perceptron_direction(x), one step size per run."""

    def __init__(self, params: ParamsT, lr: torch.Tensor, features: torch.Tensor,
                 labels: torch.Tensor) -> None:
        super().__init__(params, lr)
        if features.shape[:-1] != labels.shape or features.ndim not in (2, 3):
            raise ValueError("features must be (n, d) or (B, n, d), labels (n,) or (B, n)")
        self.features, self.labels = features, labels.to(features.dtype)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2 or p.shape[-1] != features.shape[-1]:
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} is not (N, d)")
                if features.ndim == 3 and p.shape[0] % features.shape[0]:
                    raise ValueError(f"{p.shape[0]} runs do not split over {features.shape[0]} "
                                     "data sets")

    uses_grad = False   # the direction comes from the held data, not from a gradient

    def update(self, p: torch.Tensor, lr: torch.Tensor, state: dict, group: dict) -> None:
        p.add_(lr * perceptron_direction(p, self.features, self.labels))


__all__ = ["PerRunBatchPerceptron", "perceptron_direction"]
