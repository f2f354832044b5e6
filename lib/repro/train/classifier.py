"""Training a classifier: full-batch or mini-batch, any optimizer, one model or a batched ensemble
(outputs of shape (S, N, classes), one independent model per leading index).

Used in: chapter 10 (Anti-PGD: MNIST-1D and CIFAR-10).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tqdm import tqdm

from repro.checks import check_finite
from repro.losses import per_model_loss
from repro.metrics.classification import per_model_accuracy


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int | None = None) -> dict:
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


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: dict, epochs: int,
          batch_size: int | None = None, on_epoch_end: Callable[[int], None] | None = None,
          eval_every: int = 1, eval_batch_size: int | None = None,
          transform: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
          generator: torch.Generator | None = None,
          progress: bool = True, desc: str = "train") -> dict:
    """Train ``model`` on data = dict(x, y, x_test, y_test) and return its history.

    batch_size None means full batch (one step per epoch). ``on_epoch_end(epoch)`` runs after the
    steps of each epoch (1-based), before the evaluation: a schedule, or stopping a method's noise
    (``lambda e: e == 40 and repro.optim.stop_noise(optimizer)``). ``transform`` maps a
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
        if on_epoch_end is not None:
            on_epoch_end(epoch)
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


__all__ = ['evaluate', 'train']
