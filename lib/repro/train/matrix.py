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
               check_every: int = 100, stop_each: bool = False) -> dict:
    """Minimise sum_s loss_fn(W)[s] + penalty(W)[s] over the S runs of ``model`` (W = model()).

    ``loss_fn`` and ``penalty`` map W (S, rows, cols) to one value per run; because the runs only
    meet in that sum, each factor's gradient is its own run's gradient, and any element-wise
    optimizer (GD, momentum, Adam, RMSprop) trains S independent runs at once. ``record`` maps
    names to functions of W (per-run tensors), evaluated without gradients at step 0, every
    ``record_every`` steps (0: never in between) and at the end. Training stops early once every
    run's loss (without the penalty) is below ``stop_below``. With ``stop_each`` each run stops at
    its own crossing, as separate runs would (the official protocol of Arora et al., 2019): from
    the step its loss is below ``stop_below``, its parameters are held where they are while the
    others go on, and ``stopped_at`` (S,) holds that step (-1: never crossed within ``steps``).
    This needs every parameter to lead with the run dimension. The loss is checked for finiteness
    every ``check_every`` steps (checking every step would synchronise a GPU each time): a
    diverging run raises repro.Diverged.

    Returns {"step": [...], "loss": (T, S), "objective": (T, S), name: (T, S, ...) for each
    recorded name, "steps": steps taken, "seconds": wall time, and with ``stop_each``
    "stopped_at": (S,)}; tensors are on the CPU.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if record_every < 0 or check_every < 1:
        raise ValueError("record_every must be >= 0 and check_every >= 1")
    if stop_each and stop_below is None:
        raise ValueError("stop_each needs stop_below: the loss at which each run stops")
    record = dict(record or {})
    # snapshots stay on the model's device until the end: one copy to the CPU for the whole run
    history: dict = {"step": [], "loss": [], "objective": [], **{k: [] for k in record}}

    def snapshot(step: int, W: torch.Tensor, loss: torch.Tensor, objective: torch.Tensor):
        history["step"].append(step)
        history["loss"].append(loss.detach().clone())
        history["objective"].append(objective.detach().clone())
        for name, fn in record.items():
            history[name].append(fn(W.detach()))

    params = [p for group in optimizer.param_groups for p in group["params"]]
    stopped_at = None
    # The stopping rule is evaluated on the device at every step, but read by the host only every
    # ``check_every`` steps (and at the last): ``done_at`` keeps the first step at which every run
    # was below ``stop_below``, and from then on every run is held where it was (as a run held by
    # ``stop_each``), so the steps between that one and the next check change nothing; their
    # snapshots are dropped and the run ends as it would have ended at ``done_at``.
    done_at = None
    started = time.perf_counter()
    step = 0
    while True:
        W = model()
        loss = loss_fn(W)
        objective = loss + penalty(W) if penalty is not None else loss
        if stop_below is not None:
            below = loss.detach() < stop_below
            if done_at is None:
                done_at = torch.full((), -1, dtype=torch.long, device=loss.device)
            done_at = torch.where((done_at < 0) & below.all(), step, done_at)
        if stop_each:
            if stopped_at is None:
                stopped_at = torch.full(loss.shape, -1, dtype=torch.long, device=loss.device)
            crossed = (stopped_at < 0) & below
            stopped_at = torch.where(crossed, torch.full_like(stopped_at, step), stopped_at)
        last = step == steps
        if done_at is not None and (step % check_every == 0 or last):
            ended = int(done_at)                      # the host reads the stopping rule here
            if ended >= 0:
                last = True
                # held since ``ended``: W, loss and objective are those of step ``ended``
                while history["step"] and history["step"][-1] >= ended:
                    for values in history.values():
                        values.pop()
                step = ended
        if step % check_every == 0 or last:
            check_finite(objective, "matrix training objective", step)
        if step == 0 or last or (record_every and step % record_every == 0):
            with torch.no_grad():
                snapshot(step, W, loss, objective)
        if last:
            break
        optimizer.zero_grad(set_to_none=True)
        objective.sum().backward()
        hold = None if stopped_at is None else stopped_at >= 0
        if done_at is not None:
            hold = (done_at >= 0) if hold is None else hold | (done_at >= 0)
        if hold is not None:
            # any optimizer may move a run with zero gradient (momentum, Adam): hold it instead;
            # a mask on the device, so that no step waits for the host
            held = [p.detach().clone() for p in params]
            optimizer.step()
            with torch.no_grad():
                for p, old in zip(params, held):
                    mask = hold.reshape(*hold.shape, *[1] * (p.ndim - hold.ndim))
                    p.copy_(torch.where(mask, old, p))
        else:
            optimizer.step()
        step += 1
    out = {k: torch.stack(v).cpu() for k, v in history.items() if k != "step"}
    out.update(step=history["step"], steps=step, seconds=time.perf_counter() - started)
    if stopped_at is not None:
        out["stopped_at"] = stopped_at.cpu()
    return out


__all__ = ['fit_matrix']
