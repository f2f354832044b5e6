"""Gradient descent with injected noise: GD, PGD and Anti-PGD; and PerRunGD, one step size per run.

All three are torch.optim.SGD underneath; PGD and Anti-PGD add one component, NoiseInjection, after
the SGD step (Orvieto et al., 2022, Eqs. 1-2):

    PGD:       w_{n+1} = w_n - lr * grad L(w_n) + xi_{n+1}
    Anti-PGD:  w_{n+1} = w_n - lr * grad L(w_n) + (xi_{n+1} - xi_n),   xi_0 = 0

with xi i.i.d. per coordinate, N(0, sigma^2) ("gaussian") or +-sigma with probability 1/2
("bernoulli"). The noise level is the param-group entry ``sigma``: setting ``group["sigma"] = 0.0``
mid-run stops the noise (Anti-PGD then adds -xi_n once, which takes back the last injected noise).

Parameters may carry a leading seed dimension: the noise is independent per element, so minimising
a sum of per-seed losses trains the seeds as independent runs.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from numbers import Real

import torch

DISTRIBUTIONS = ("gaussian", "bernoulli")


def _check_nonnegative(name: str, value: float) -> None:
    if not isinstance(value, Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


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
    ):
        _check_nonnegative("sigma", sigma)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown noise distribution {distribution!r}; use one of {DISTRIBUTIONS}")
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
        return (sigma * xi).to(like.device)

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


class GD(torch.optim.SGD):
    """Plain (stochastic) gradient descent, optionally with heavy-ball momentum."""

    def __init__(self, params, lr: float, momentum: float = 0.0):
        _check_nonnegative("lr", lr)
        _check_nonnegative("momentum", momentum)
        super().__init__(params, lr=lr, momentum=momentum)


class NoisyGD(GD):
    """An SGD step followed by a perturbation from a NoiseInjection component.

    The base of PGD and AntiPGD; each param group carries its own ``sigma``. Parameters without a
    gradient are skipped, as SGD skips them.
    """

    def __init__(self, params, lr: float, noise: NoiseInjection, momentum: float = 0.0):
        self.noise = noise
        super().__init__(params, lr=lr, momentum=momentum)
        for group in self.param_groups:
            group.setdefault("sigma", noise.sigma)
            _check_nonnegative("sigma", group["sigma"])

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.add_(self.noise.perturbation(p, group["sigma"], self.state[p]))
        return loss


class PGD(NoisyGD):
    """Perturbed gradient descent: i.i.d. noise xi_{n+1} added after every step (Eq. 1)."""

    def __init__(self, params, lr: float, sigma: float, noise: str = "gaussian",
                 momentum: float = 0.0, generator: torch.Generator | None = None):
        component = NoiseInjection(sigma, noise, anticorrelated=False, generator=generator)
        super().__init__(params, lr=lr, noise=component, momentum=momentum)


class AntiPGD(NoisyGD):
    """Anti-correlated PGD: the increment xi_{n+1} - xi_n added after every step (Eq. 2)."""

    def __init__(self, params, lr: float, sigma: float, noise: str = "gaussian",
                 momentum: float = 0.0, generator: torch.Generator | None = None):
        component = NoiseInjection(sigma, noise, anticorrelated=True, generator=generator)
        super().__init__(params, lr=lr, noise=component, momentum=momentum)


class PerRunGD(torch.optim.Optimizer):
    """Plain gradient descent with one step size per run: ``lr`` has shape (S,), and every
    parameter's leading dimension indexes the S runs (as in ``DeepLinear`` or ``EnsembleMLP``).

    Sweeps where each configuration needs its own step size (the step that is stable depends on
    the depth, the sample count or the scale of the data) then still train in one batched model.
    """

    def __init__(self, params, lr: torch.Tensor):
        lr = torch.as_tensor(lr)
        if lr.ndim != 1 or not bool((lr > 0).all()):
            raise ValueError("lr must be a 1-D tensor of positive step sizes, one per run")
        super().__init__(params, {"lr": lr})
        for group in self.param_groups:
            for p in group["params"]:
                if p.shape[:1] != group["lr"].shape:
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} does not lead with "
                                     f"the {len(group['lr'])} runs of lr")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    lr = group["lr"].to(p.device, p.dtype).reshape(-1, *[1] * (p.ndim - 1))
                    p.sub_(lr * p.grad)
        return loss


def make(method: str, params, lr: float, sigma: float = 0.0, noise: str = "gaussian",
         momentum: float = 0.0, generator: torch.Generator | None = None) -> torch.optim.Optimizer:
    """The optimizer named ``method`` ("gd", "pgd" or "anti_pgd"), for loops over methods."""
    if method == "gd":
        return GD(params, lr=lr, momentum=momentum)
    if method == "pgd":
        return PGD(params, lr=lr, sigma=sigma, noise=noise, momentum=momentum, generator=generator)
    if method == "anti_pgd":
        return AntiPGD(params, lr=lr, sigma=sigma, noise=noise, momentum=momentum,
                       generator=generator)
    raise ValueError(f"unknown method {method!r}; use 'gd', 'pgd' or 'anti_pgd'")


__all__ = ["GD", "PerRunGD", "PGD", "AntiPGD", "NoiseInjection", "NoisyGD", "make", "DISTRIBUTIONS"]
