"""Optimizers, with the ``torch.optim.Optimizer`` interface, one method per module.

- ``gd``               ``GD``: gradient descent (heavy-ball momentum optional)
- ``noise_injection``  ``PGD``, ``AntiPGD``: a GD step plus the ``NoiseInjection`` component
                       (Orvieto et al., 2022); ``stop_noise`` turns the noise off mid-run
- ``per_run``          ``PerRunGD``, ``PerRunMomentum``, ``PerRunAdaGrad``, ``PerRunAdam``,
                       ``PerRunGroupRMSprop`` (the official optimizer of Arora et al., 2019): one
                       step size per run of a batched model

``OPTIMIZERS`` maps a short name to its class and ``make(name, params, **kwargs)`` builds one,
for loops over methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from repro.optim.gd import GD
from repro.optim.noise_injection import (
    DISTRIBUTIONS,
    PGD,
    AntiPGD,
    NoiseInjection,
    NoisyGD,
    stop_noise,
)
from repro.optim.per_run import (
    PerRun,
    PerRunAdaGrad,
    PerRunAdam,
    PerRunGD,
    PerRunGroupRMSprop,
    PerRunMomentum,
)

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


__all__ = ["DISTRIBUTIONS", "GD", "OPTIMIZERS", "AntiPGD", "NoiseInjection", "NoisyGD", "PGD",
           "PerRun", "PerRunAdaGrad", "PerRunAdam", "PerRunGD", "PerRunGroupRMSprop",
           "PerRunMomentum", "make",
           "stop_noise"]
