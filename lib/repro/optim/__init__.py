"""Optimizers, with the ``torch.optim.Optimizer`` interface, one method per module.

- ``gd``               ``GD``: gradient descent (heavy-ball momentum optional)
- ``noise_injection``  ``PGD``, ``AntiPGD``: a GD step plus the ``NoiseInjection`` component
                       (Orvieto et al., 2022); ``stop_noise`` turns the noise off mid-run
- ``per_run``          ``PerRunGD``, ``PerRunMomentum``, ``PerRunAdaGrad``, ``PerRunAdam``,
                       ``PerRunGroupRMSprop`` (the official optimizer of Arora et al., 2019): one
                       step size per run of a batched model
- ``normalized_gd``    ``PerRunNormalizedGD``: Normalized LR+GD, each run's step divided by its
                       loss (Tyurin, 2024)
- ``perceptron``       ``PerRunBatchPerceptron``, ``perceptron_direction``: the batch perceptron
                       as an update rule, one step size per run
- ``sam``              ``SAM``, ``ASAM``, ``USAM``: sharpness-aware minimization around any base
                       optimizer (Foret et al., 2021), adaptive and unnormalised; a closure-based
                       ``step``; ``frozen_batchnorm`` keeps batch-norm statistics of the first pass
- ``subgradient``      ``SubGradient``: the subgradient method with a geometrically decaying step
                       lr decay^t, one step size per run (Ma and Fattahi, 2023)
- ``langevin``         ``PerRunLangevin``: noisy gradient descent at a temperature with an l2
                       penalty (unadjusted Langevin), one step size and temperature per run
                       (mean-field noisy SGD, Shevchenko et al., 2022)

``PerRunNormalizedGD`` (its closure returns per-run losses) and ``PerRunBatchPerceptron`` (it holds
the data) are not in ``OPTIMIZERS``: the family tests there assume a gradient-only step. Nor is
``PerRunLangevin``: its runs share one noise stream, so S runs stepped together cannot equal S runs
stepped alone, which the family tests check step for step.

``OPTIMIZERS`` maps a short name to its class and ``make(name, params, **kwargs)`` builds one,
for loops over methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from repro.optim.gd import GD
from repro.optim.langevin import PerRunLangevin
from repro.optim.noise_injection import (
    DISTRIBUTIONS,
    PGD,
    AntiPGD,
    NoiseInjection,
    NoisyGD,
    stop_noise,
)
from repro.optim.normalized_gd import PerRunNormalizedGD
from repro.optim.per_run import (
    PerRun,
    PerRunAdaGrad,
    PerRunAdam,
    PerRunGD,
    PerRunGroupRMSprop,
    PerRunMomentum,
)
from repro.optim.perceptron import PerRunBatchPerceptron, perceptron_direction
from repro.optim.sam import ASAM, SAM, USAM, frozen_batchnorm
from repro.optim.subgradient import SubGradient

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "gd": GD,
    "pgd": PGD,
    "anti_pgd": AntiPGD,
    "per_run_gd": PerRunGD,
    "per_run_momentum": PerRunMomentum,
    "per_run_group_rmsprop": PerRunGroupRMSprop,
    "per_run_adagrad": PerRunAdaGrad,
    "per_run_adam": PerRunAdam,
    "sam": SAM,
    "asam": ASAM,
    "usam": USAM,
    "subgradient": SubGradient,
}


def make(name: str, params: ParamsT, **kwargs) -> torch.optim.Optimizer:
    """The optimizer registered as ``name``, built on ``params`` with ``kwargs``.

    ``make("gd", params, lr=0.1)`` and ``make("anti_pgd", params, lr=0.1, sigma=0.01)``. GD ignores
    the noise arguments (``sigma``, ``noise``, ``generator``), so one call serves a loop over
    ``("gd", "pgd", "anti_pgd")``.
    """
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; use one of {sorted(OPTIMIZERS)}") from None
    if cls is GD:
        for inert in ("sigma", "noise", "generator"):
            kwargs.pop(inert, None)
    return cls(params, **kwargs)


__all__ = ["ASAM", "DISTRIBUTIONS", "GD", "OPTIMIZERS", "SAM", "USAM", "AntiPGD",
           "NoiseInjection", "NoisyGD", "PGD", "PerRun", "PerRunAdaGrad", "PerRunAdam",
           "PerRunBatchPerceptron", "PerRunGD", "PerRunGroupRMSprop", "PerRunLangevin",
           "PerRunMomentum", "PerRunNormalizedGD", "SubGradient", "frozen_batchnorm", "make",
           "perceptron_direction", "stop_noise"]
