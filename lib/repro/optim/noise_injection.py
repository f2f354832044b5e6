"""Gradient descent with injected noise: PGD and Anti-PGD (Orvieto et al., 2022, Eqs. 1-2).

Both are a gradient step followed by one component, ``NoiseInjection``, the same composition as
optax's ``noisy_sgd`` (an SGD step chained with ``add_noise``):

    PGD:       w_{n+1} = w_n - lr * grad L(w_n) + xi_{n+1}
    Anti-PGD:  w_{n+1} = w_n - lr * grad L(w_n) + (xi_{n+1} - xi_n),   xi_0 = 0

with xi i.i.d. per coordinate, N(0, sigma^2) ("gaussian") or +-sigma with probability 1/2
("bernoulli"). The noise level is the param-group entry ``sigma``: ``stop_noise(optimizer)`` (or
setting ``group["sigma"] = 0.0``) mid-run stops the noise; Anti-PGD then adds -xi_n once, which
takes back the last injected noise.

Parameters may carry a leading seed dimension: the noise is independent per element, so minimising
a sum of per-seed losses trains the seeds as independent runs.

Used in: chapter 10 (Anti-PGD).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING

import torch

from repro.checks import nonnegative
from repro.devices import to_device
from repro.optim.gd import GD

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT

DISTRIBUTIONS = ("gaussian", "bernoulli")


class NoiseInjection:
    """The perturbation added after each step: xi_{n+1} (PGD) or xi_{n+1} - xi_n (Anti-PGD).

    ``perturbation(param, sigma, state)`` draws xi_{n+1} with the shape of ``param`` and returns the
    tensor to add. Anti-correlated noise needs xi_n, which is kept per parameter in ``state`` (the
    optimizer passes its per-parameter state, so xi_n travels with ``state_dict``) or, when no state
    is given, in the component itself.
    """

    def __init__(
        self,
        sigma: float,
        distribution: str = "gaussian",
        anticorrelated: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        nonnegative("sigma", sigma)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown noise distribution {distribution!r}; use one of "
                             f"{DISTRIBUTIONS}")
        self.sigma = float(sigma)
        self.distribution = distribution
        self.anticorrelated = bool(anticorrelated)
        self.generator = generator
        self._own_state: dict[int, dict] = {}

    def sample(self, like: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """One draw of xi with the shape, dtype and device of ``like``."""
        sigma = self.sigma if sigma is None else sigma
        if sigma == 0:
            # No draw at all: a stopped noise must not advance the generator's stream.
            return torch.zeros_like(like)
        # Draw where the generator lives (a CPU generator can drive a GPU run), then move.
        on = self.generator.device if self.generator is not None else like.device
        if self.distribution == "gaussian":
            xi = torch.randn(like.shape, generator=self.generator, device=on, dtype=like.dtype)
        else:
            bits = torch.randint(0, 2, like.shape, generator=self.generator, device=on)
            xi = (2 * bits - 1).to(like.dtype)
        return to_device(sigma * xi, like.device)   # a CPU generator can drive a GPU run

    def perturbation(
        self,
        param: torch.Tensor,
        sigma: float | None = None,
        state: MutableMapping | None = None,
    ) -> torch.Tensor:
        """The tensor to add to ``param`` after its SGD step (and xi_n advanced to xi_{n+1})."""
        xi_next = self.sample(param, sigma)
        if not self.anticorrelated:
            return xi_next
        if state is None:
            state = self._own_state.setdefault(id(param), {})
        xi_prev = state.get("xi")
        state["xi"] = xi_next
        return xi_next if xi_prev is None else xi_next - xi_prev


class NoisyGD(GD):
    """An SGD step followed by a perturbation from a NoiseInjection component.

    The base of PGD and AntiPGD; each param group carries its own ``sigma``. Parameters without a
    gradient are skipped, as SGD skips them.
    """

    def __init__(self, params: ParamsT, lr: float, noise: NoiseInjection,
                 momentum: float = 0.0) -> None:
        self.noise = noise
        super().__init__(params, lr=lr, momentum=momentum)
        for group in self.param_groups:
            group.setdefault("sigma", noise.sigma)
            nonnegative("sigma", group["sigma"])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.add_(self.noise.perturbation(p, group["sigma"], self.state[p]))
        return loss


class PGD(NoisyGD):
    """Perturbed gradient descent: i.i.d. noise xi_{n+1} added after every step (Eq. 1)."""

    def __init__(self, params: ParamsT, lr: float, sigma: float, noise: str = "gaussian",
                 momentum: float = 0.0, generator: torch.Generator | None = None) -> None:
        component = NoiseInjection(sigma, noise, anticorrelated=False, generator=generator)
        super().__init__(params, lr=lr, noise=component, momentum=momentum)


class AntiPGD(NoisyGD):
    """Anti-correlated PGD: the increment xi_{n+1} - xi_n added after every step (Eq. 2)."""

    def __init__(self, params: ParamsT, lr: float, sigma: float, noise: str = "gaussian",
                 momentum: float = 0.0, generator: torch.Generator | None = None) -> None:
        component = NoiseInjection(sigma, noise, anticorrelated=True, generator=generator)
        super().__init__(params, lr=lr, noise=component, momentum=momentum)


def stop_noise(optimizer: torch.optim.Optimizer) -> None:
    """Set every param group's ``sigma`` to 0: PGD and Anti-PGD continue as plain GD."""
    for group in optimizer.param_groups:
        if "sigma" in group:
            group["sigma"] = 0.0


__all__ = ["AntiPGD", "DISTRIBUTIONS", "NoiseInjection", "NoisyGD", "PGD", "stop_noise"]
