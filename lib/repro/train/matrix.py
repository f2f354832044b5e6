"""Training a model whose forward() is a batch of matrices (``DeepLinear``), with a per-run loss on
them (matrix completion or sensing) and an optional explicit penalty.

Used in: chapters 1, 2 and 4 (Part I).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from repro.checks import check_finite


def fit_matrix(model: Callable[[], torch.Tensor], loss_fn: Callable[[torch.Tensor], torch.Tensor],
               optimizer: torch.optim.Optimizer, steps: int,
               penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
               record: dict | None = None, record_every: int = 0, stop_below: float | None = None,
               check_every: int = 100) -> dict:
    """Minimise sum_s loss_fn(W)[s] + penalty(W)[s] over the S runs of ``model`` (W = model()).

    ``loss_fn`` and ``penalty`` map W (S, rows, cols) to one value per run; because the runs only
    meet in that sum, each factor's gradient is its own run's gradient, and any element-wise
    optimizer (GD, momentum, Adam, RMSprop) trains S independent runs at once. ``record`` maps
    names to functions of W (per-run tensors), evaluated without gradients at step 0, every
    ``record_every`` steps (0: never in between) and at the end. Training stops early once every
    run's loss (without the penalty) is below ``stop_below``. The loss is checked for finiteness
    every ``check_every`` steps (checking every step would synchronise a GPU each time): a
    diverging run raises repro.Diverged.

    Returns {"step": [...], "loss": (T, S), "objective": (T, S), name: (T, S, ...) for each
    recorded name, "steps": steps taken, "seconds": wall time}; tensors are on the CPU.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if record_every < 0 or check_every < 1:
        raise ValueError("record_every must be >= 0 and check_every >= 1")
    record = dict(record or {})
    history: dict = {"step": [], "loss": [], "objective": [], **{k: [] for k in record}}

    def snapshot(step: int, W: torch.Tensor, loss: torch.Tensor, objective: torch.Tensor):
        history["step"].append(step)
        history["loss"].append(loss.detach().cpu())
        history["objective"].append(objective.detach().cpu())
        for name, fn in record.items():
            history[name].append(fn(W.detach()).cpu())

    started = time.perf_counter()
    step = 0
    while True:
        W = model()
        loss = loss_fn(W)
        objective = loss + penalty(W) if penalty is not None else loss
        last = step == steps or (stop_below is not None and bool((loss < stop_below).all()))
        if step % check_every == 0 or last:
            check_finite(objective, "matrix training objective", step)
        if step == 0 or last or (record_every and step % record_every == 0):
            with torch.no_grad():
                snapshot(step, W, loss, objective)
        if last:
            break
        optimizer.zero_grad(set_to_none=True)
        objective.sum().backward()
        optimizer.step()
        step += 1
    out = {k: torch.stack(v) for k, v in history.items() if k != "step"}
    out.update(step=history["step"], steps=step, seconds=time.perf_counter() - started)
    return out


__all__ = ['fit_matrix']
