"""Noisy gradient descent at a temperature (unadjusted Langevin), one step size per run.

The discretised Langevin dynamics of the free energy F = L + (lambda / 2) |w|^2 at temperature
T = 1 / beta,

    w_{k+1} = w_k - lr_s * (grad L(w_k) + lambda * w_k) + sqrt(2 * lr_s * T_s) * xi_k,

with xi_k i.i.d. N(0, I). Its stationary law, as lr -> 0, is the Gibbs measure
exp(-beta F(w)) / Z. This is the "noisy SGD" of the mean-field literature (Mei, Montanari and
Nguyen, 2018; Shevchenko, Kungurtsev and Mondelli, 2022): applied to the neurons of a two-layer
network in the mean-field scaling, with the loss multiplied by the width N so that each neuron
moves at a rate of order one, it is the particle system whose width-N limit is the gradient flow
of the free energy of the neurons' distribution. T = 0 is gradient descent with weight decay
lambda (the l2 penalty).

Like every ``PerRun`` rule, ``lr`` has shape (S,) and every parameter leads with the S runs; the
temperature is one number or one per run, shape (S,). The noise comes from ``generator`` (an
explicit seed), drawn for each parameter in the order of the parameter groups.

``PerRunLangevin`` is not in ``OPTIMIZERS``: the family tests there check that S runs stepped
together equal S runs stepped alone, step for step, which a noise stream shared by the runs cannot
do; its own tests check the rule, the noise level and the stationary law.

Used in: chapter 7 (mean-field ReLU networks in one dimension).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from repro.checks import nonnegative
from repro.devices import to_device
from repro.optim.per_run import PerRun

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


class PerRunLangevin(PerRun):
    """w = w - lr_s (g + lambda w) + sqrt(2 lr_s T_s) xi, xi ~ N(0, I), one lr and T per run."""

    def __init__(self, params: ParamsT, lr: torch.Tensor,
                 temperature: float | torch.Tensor = 0.0, weight_decay: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        temperature = torch.as_tensor(temperature, dtype=torch.float64)
        if temperature.ndim > 1 or not bool((temperature >= 0).all()):
            raise ValueError("temperature must be >= 0: one number, or a 1-D tensor with one "
                             "per run")
        super().__init__(params, lr, temperature=temperature,
                         weight_decay=nonnegative("weight_decay", weight_decay))
        if temperature.ndim == 1 and temperature.shape != self.param_groups[0]["lr"].shape:
            raise ValueError(f"temperature has {len(temperature)} entries but lr has "
                             f"{len(self.param_groups[0]['lr'])} runs")
        self.generator = generator

    def update(self, p: torch.Tensor, lr: torch.Tensor, state: dict, group: dict) -> None:
        drift = p.grad + group["weight_decay"] * p if group["weight_decay"] else p.grad
        p.sub_(lr * drift)
        temperature = group["temperature"]
        if bool((temperature > 0).any()):   # a CPU tensor: no wait for the device
            t = to_device(temperature, p.device).to(p.dtype)
            t = t.reshape(lr.shape) if t.ndim == 1 else t
            # drawn where the generator lives (the same noise on every device), then moved
            where = self.generator.device if self.generator is not None else p.device
            xi = torch.randn(p.shape, generator=self.generator, dtype=p.dtype, device=where)
            p.add_(torch.sqrt(2 * lr * t) * to_device(xi, p.device))

