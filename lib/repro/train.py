"""Small training loops.

- ``train``       classification, full-batch or mini-batch, any optimizer, one model or a batched
                  ensemble (outputs of shape (S, N, classes), one independent model per leading index).
- ``fit_matrix``  a model whose forward() is a batch of matrices (``DeepLinear``), a per-run loss on
                  them (matrix completion or sensing) and an optional explicit penalty; it records
                  any per-run quantity (singular values, test error) along the way.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from repro._common import check_finite
from repro.models import per_model_cross_entropy


def per_model_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy: a scalar for logits (N, C), one per model (S,) for logits (S, N, C)."""
    if logits.ndim == 2:
        return F.cross_entropy(logits, y)
    return per_model_cross_entropy(logits, y)


def per_model_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions: a scalar, or one per model (S,)."""
    return (logits.argmax(-1) == y).to(torch.float64).mean(-1)


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> dict:
    """Loss and accuracy of ``model`` on (x, y), in eval mode; per model for an ensemble."""
    was_training = model.training
    model.eval()
    dev = _model_device(model)
    batch_size = batch_size or len(x)
    loss_sum, correct = 0.0, 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size].to(dev), y[start:start + batch_size].to(dev)
        logits = model(xb)
        loss_sum = loss_sum + per_model_loss(logits, yb).double() * len(xb)
        correct = correct + per_model_accuracy(logits, yb) * len(xb)
    model.train(was_training)
    return {"loss": _to_py(loss_sum / len(x)), "accuracy": _to_py(correct / len(x))}


def train(model, optimizer: torch.optim.Optimizer, data: dict, epochs: int,
          batch_size: int | None = None, noise_stop_epoch: int | None = None,
          eval_every: int = 1, eval_batch_size: int | None = None,
          transform=None, generator: torch.Generator | None = None,
          progress: bool = True, desc: str = "train") -> dict:
    """Train ``model`` on data = dict(x, y, x_test, y_test) and return its history.

    batch_size None means full batch (one step per epoch). After ``noise_stop_epoch`` epochs every
    param group's ``sigma`` is set to 0 (PGD and Anti-PGD then continue as GD). ``transform`` maps a
    training batch (x, generator) to an augmented one. The loss is checked every step: a non-finite
    loss raises repro.Diverged. The history holds, at every ``eval_every``-th epoch and the last,
    the epoch and the train/test loss and accuracy (floats, or per-model lists for an ensemble).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size!r}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every!r}")
    dev = _model_device(model)
    x, y = data["x"], data["y"]
    n = len(x)
    full_batch = batch_size is None or batch_size >= n
    if full_batch:
        xb_full, yb_full = x.to(dev), y.to(dev)
    history = {"epoch": [], "train_loss": [], "train_accuracy": [], "test_loss": [],
               "test_accuracy": [], "seconds": 0.0}
    started = time.perf_counter()
    step = 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, mininterval=2.0)
    for epoch in bar:
        model.train()
        if full_batch:
            batches = [(xb_full, yb_full)]
        else:
            order = torch.randperm(n, generator=generator)
            batches = ((x[idx].to(dev), y[idx].to(dev))
                       for idx in order.split(batch_size))
        for xb, yb in batches:
            if transform is not None:
                xb = transform(xb, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = per_model_loss(model(xb), yb)
            check_finite(loss, "training loss", step)
            loss.sum().backward()
            optimizer.step()
            step += 1
        if noise_stop_epoch is not None and epoch == noise_stop_epoch:
            for group in optimizer.param_groups:
                if "sigma" in group:
                    group["sigma"] = 0.0
        if epoch % eval_every == 0 or epoch == epochs:
            train_eval = evaluate(model, x, y, eval_batch_size)
            test_eval = evaluate(model, data["x_test"], data["y_test"], eval_batch_size)
            history["epoch"].append(epoch)
            history["train_loss"].append(train_eval["loss"])
            history["train_accuracy"].append(train_eval["accuracy"])
            history["test_loss"].append(test_eval["loss"])
            history["test_accuracy"].append(test_eval["accuracy"])
            bar.set_postfix(loss=_mean(train_eval["loss"]), test_acc=_mean(test_eval["accuracy"]))
    history["seconds"] = time.perf_counter() - started
    return history


def fit_matrix(model, loss_fn, optimizer: torch.optim.Optimizer, steps: int, penalty=None,
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


def _model_device(model) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _to_py(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.ndim == 0 else value.tolist()
    return float(value)


def _mean(value) -> float:
    return sum(value) / len(value) if isinstance(value, list) else value


__all__ = ["train", "fit_matrix", "evaluate", "per_model_loss", "per_model_accuracy"]
