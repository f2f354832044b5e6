"""Sharpness-aware minimization (Foret et al., 2021) as a wrapper around any base optimizer.

SAM minimises the worst loss in a ball of radius rho around the weights,
min_w max_{|eps| <= rho} L(w + eps). To first order the inner maximiser is the dual vector of
the gradient, eps(w) = rho g / |g|; dropping the derivative of eps(w) itself, the gradient of the
SAM objective is the ordinary gradient taken at the perturbed point. One SAM step is therefore

    g   = grad L(w)                       (first pass, at w)
    eps = perturbation(g, w)              (the ascent step)
    g'  = grad L(w + eps)                 (second pass, at the perturbed point)
    w   = base_step(w, g')                (any optimizer: GD, momentum, Adam, per-run rules)

and the three members of the family differ only in the ascent step:

    SAM   eps = rho g / |g|                              (Foret et al., 2021)
    ASAM  eps = rho T^2 g / |T g|,  T = |w| + eta        (Kwon et al., 2021: adaptive sharpness,
                                                          invariant to rescaling a layer)
    USAM  eps = rho g                                    (unnormalised SAM, e.g. Andriushchenko
                                                          and Flammarion, 2022)

The norms are global over every parameter the optimizer holds, as in the official JAX code
(``dual_vector`` in ``sam_jax/training_utils/flax_training.py``); ``per_run=True`` takes them per
leading index instead, so that S runs of a batched model (``EnsembleMLP``, a (S, d) tensor) are S
independent SAM runs, and ``rho`` may then be a tensor (S,), one radius per run (rho = 0 is the
base optimizer exactly, with a wasted second pass).

``step(closure)`` calls the closure twice, as ``torch.optim.LBFGS`` does; the closure computes
the loss and calls ``backward`` (the gradients are zeroed before each call). With ``chunks = k``
the closure is called as ``closure(i)`` for each chunk i of the batch and each chunk gets its own
ascent step: m-sharpness with m = batch size / k (Foret et al., Sec. 4.1, where a chunk is one
accelerator's share of the batch); the update uses the mean of the k perturbed gradients.

**Batch norm.** The official code keeps the batch-norm statistics of the first pass and drops
those of the second. ``step`` does the same when it is given the ``model``: the perturbed pass
runs inside ``frozen_batchnorm(model)``, which still normalises with the batch statistics but
leaves the running statistics unchanged. Without the model, a second pass through a batch-norm
layer would update its running statistics twice per step, a known pitfall of PyTorch ports.

Departures from the official code: weight decay and gradient clipping are the base optimizer's
or the closure's business (the official code puts the L2 penalty in the loss of both passes and
clips the final gradient to norm 5); the norm has a floor ``1e-12`` so that a zero gradient gives
a zero perturbation rather than NaN.

Used in: chapter 14 (SAM: mnist1d with label noise, CIFAR-10 ResNet-18); planned for chapter 15.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from repro.checks import nonnegative, positive_int
from repro.optim.per_run import on_device_of

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT

_TINY = 1e-12


@contextlib.contextmanager
def frozen_batchnorm(model: torch.nn.Module | None) -> Iterator[None]:
    """Inside the block, every batch-norm layer of ``model`` in training mode normalises with the
    batch's statistics (as usual) but does not update its running statistics
    (``track_running_stats`` off); on exit each layer is as it was. ``None`` does nothing."""
    layers = [] if model is None else [
        m for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimization around a base optimizer (see the module docstring).

    ``base`` is a name of ``repro.optim.OPTIMIZERS`` or an optimizer class, built on this
    optimizer's parameter groups with ``base_kwargs`` (``lr=...``, ``momentum=...``); change the
    step size through either optimizer's ``param_groups`` (they are the same dicts). ``rho`` is
    the radius (a tensor (S,) with ``per_run=True``), ``eta`` ASAM's offset, ``model`` the module
    whose batch-norm statistics the perturbed pass must not update, ``chunks`` the number of
    sub-batches with an ascent step each (m-sharpness).
    """

    def __init__(self, params: ParamsT, base: str | type[torch.optim.Optimizer] = "gd",
                 rho: float | torch.Tensor = 0.05, *, per_run: bool = False, eta: float = 0.0,
                 model: torch.nn.Module | None = None, chunks: int = 1, **base_kwargs) -> None:
        rho_t = torch.as_tensor(rho, dtype=torch.float64)
        if rho_t.ndim > 1 or (rho_t.ndim == 1 and not per_run):
            raise ValueError("rho must be a number, or a 1-D tensor (one radius per run) with "
                             "per_run=True")
        if not bool((rho_t >= 0).all()):
            raise ValueError(f"rho must be >= 0, got {rho}")
        nonnegative("eta", eta)
        self.chunks = positive_int("chunks", chunks)
        self.per_run, self.model = bool(per_run), model
        super().__init__(params, {"rho": rho if rho_t.ndim == 0 else rho_t, "eta": float(eta)})
        if isinstance(base, str):
            from repro.optim import OPTIMIZERS

            try:
                base = OPTIMIZERS[base]
            except KeyError:
                raise ValueError(f"unknown base optimizer {base!r}; use one of "
                                 f"{sorted(OPTIMIZERS)}") from None
        if isinstance(base, type) and issubclass(base, SAM):
            raise ValueError("the base of SAM cannot itself be a SAM optimizer")
        self.base = base(self.param_groups, **base_kwargs)
        self.param_groups = self.base.param_groups  # one set of groups: a schedule sees both
        self.defaults.update(self.base.defaults)
        if self.per_run:
            sizes = {p.shape[0] for g in self.param_groups for p in g["params"] if p.ndim}
            n = next(iter(sizes)) if len(sizes) == 1 else None
            if n is None or any(p.ndim == 0 for g in self.param_groups for p in g["params"]):
                raise ValueError("per_run=True needs every parameter to lead with the same "
                                 f"number of runs, got leading sizes {sorted(sizes)}")
            for g in self.param_groups:
                r = torch.as_tensor(g["rho"])
                if r.ndim == 1 and r.shape[0] != n:
                    raise ValueError(f"rho has {r.shape[0]} radii for {n} runs")

    # --- the ascent step ------------------------------------------------------------------------

    def _scale(self, p: torch.Tensor, group: dict) -> torch.Tensor | None:
        """T for one parameter: None (the identity) for SAM and USAM."""
        return None

    def _norms(self) -> torch.Tensor:
        """|T g| over every parameter: a scalar, or (S,) per run."""
        total = 0.0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                t = self._scale(p, group)
                v = p.grad if t is None else t * p.grad
                sq = v.pow(2)
                total = total + (sq.reshape(sq.shape[0], -1).sum(1) if self.per_run else sq.sum())
        return torch.as_tensor(total).sqrt()

    def _per_run(self, x: torch.Tensor | float, p: torch.Tensor) -> torch.Tensor:
        """A number or a per-run vector (S,), shaped to broadcast against ``p``."""
        x = torch.as_tensor(x, device=p.device, dtype=p.dtype)
        return x.reshape(-1, *[1] * (p.ndim - 1)) if x.ndim == 1 else x

    def _rho(self, group: dict, p: torch.Tensor) -> torch.Tensor:
        """The group's radius on ``p``'s device, converted once (not copied to a GPU each step)."""
        if not hasattr(self, "_cache"):
            self._cache: dict = {}
        rho = on_device_of(self._cache, group["rho"], p)
        return rho.reshape(-1, *[1] * (p.ndim - 1)) if rho.ndim == 1 else rho

    def _coefficient(self, group: dict, norm: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """c in eps = c T^2 g: rho / |T g| (SAM, ASAM)."""
        return self._rho(group, p) / self._per_run(norm, p).clamp_min(_TINY)

    @torch.no_grad()
    def first_step(self) -> None:
        """Move every parameter to w + eps (from the gradients at w) and remember eps."""
        norm = self._norms()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                t = self._scale(p, group)
                eps = self._coefficient(group, norm, p) * (p.grad if t is None else t * t * p.grad)
                p.add_(eps)
                self.state[p]["sam_eps"] = eps

    @torch.no_grad()
    def restore(self) -> None:
        """Move every perturbed parameter back to w."""
        for group in self.param_groups:
            for p in group["params"]:
                eps = self.state[p].pop("sam_eps", None)
                if eps is not None:
                    p.sub_(eps)

    def perturbation(self) -> list[torch.Tensor]:
        """The ascent step eps for each parameter, from the gradients it holds now (no move)."""
        with torch.no_grad():
            norm = self._norms()
            out = []
            for group in self.param_groups:
                for p in group["params"]:
                    t = self._scale(p, group)
                    g = torch.zeros_like(p) if p.grad is None else p.grad
                    out.append(self._coefficient(group, norm, p) * (g if t is None else t * t * g))
            return out

    # --- the step -------------------------------------------------------------------------------

    def step(self, closure: Callable[..., torch.Tensor] | None = None) -> torch.Tensor | None:
        """One SAM step; ``closure()`` (``closure(i)`` for chunk i when ``chunks > 1``) computes
        the loss and calls ``backward``. Returns the loss at w (the mean over chunks)."""
        if closure is None:
            raise RuntimeError("SAM needs a closure that recomputes the loss and its gradient "
                               "(step(closure), as torch.optim.LBFGS)")
        params = [p for g in self.param_groups for p in g["params"]]
        total = [torch.zeros_like(p) for p in params]
        losses = []
        for i in range(self.chunks):
            call = (lambda: closure()) if self.chunks == 1 else (lambda i=i: closure(i))
            self.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = call()                        # first pass, at w: updates BN statistics
            if loss is not None:
                losses.append(torch.as_tensor(loss).detach())
            self.first_step()
            self.zero_grad(set_to_none=True)
            with torch.enable_grad(), frozen_batchnorm(self.model):
                call()                               # second pass, at w + eps
            self.restore()
            with torch.no_grad():
                for acc, p in zip(total, params):
                    if p.grad is not None:
                        acc.add_(p.grad)
        with torch.no_grad():
            for acc, p in zip(total, params):
                p.grad = acc / self.chunks
        self.base.step()
        return torch.stack(losses).mean(0) if losses else None

    # the base optimizer's state (momentum buffers, step counts) is SAM's state
    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups


class ASAM(SAM):
    """Adaptive SAM (Kwon et al., 2021): eps = rho T^2 g / |T g| with T = |w| + eta elementwise,
    so that the neighbourhood scales with each weight."""

    def __init__(self, params: ParamsT, base: str | type[torch.optim.Optimizer] = "gd",
                 rho: float | torch.Tensor = 0.5, *, eta: float = 0.01, **kwargs) -> None:
        super().__init__(params, base, rho, eta=eta, **kwargs)

    def _scale(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        return p.detach().abs() + group["eta"]


class USAM(SAM):
    """Unnormalised SAM: eps = rho g, the ascent step without the division by |g|."""

    def _coefficient(self, group: dict, norm: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self._rho(group, p)

    def _norms(self) -> torch.Tensor:
        return torch.tensor(1.0)


__all__ = ["ASAM", "SAM", "USAM", "frozen_batchnorm"]
