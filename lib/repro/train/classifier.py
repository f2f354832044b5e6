"""Training a classifier: full-batch or mini-batch, any optimizer, one model or a batched ensemble
(outputs of shape (S, N, classes), one independent model per leading index).

The loop never waits for the device inside a step: the divergence check runs on the device and is
read every ``check_every`` steps (``repro.checks.FiniteWatch``), evaluations stay on the device
until the end of the run, and a mini-batch order is moved to the data's device once per epoch. On
CUDA, ``precision="bf16"`` runs the training steps' forward passes under bfloat16 autocast (the
parameters, the optimizer and every evaluation stay in float32). ``compile_mode`` compiles the
training step's forward and backward passes with ``torch.compile`` (``"reduce-overhead"`` also
captures them in CUDA graphs on a GPU); the optimizer and the evaluations stay eager.

Used in: chapter 10 (Anti-PGD: MNIST-1D and CIFAR-10).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable

import torch
from tqdm import tqdm

from repro.checks import FiniteWatch, one_of, positive_int
from repro.losses import per_model_loss
from repro.metrics.classification import per_model_accuracy

PRECISIONS = ("float32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")   # torch.compile's modes


def precision_context(precision: str,
                      device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context a training step runs in: bfloat16 autocast for ``"bf16"`` on CUDA, else none.

    On a device other than CUDA, ``"bf16"`` warns once (one line) and the step runs as it is."""
    one_of("precision", precision, PRECISIONS)
    device = torch.device(device)
    if precision == "float32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        warnings.warn(f"precision='bf16' is a CUDA option; on {device.type} the run stays in "
                      "full precision", stacklevel=3)
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


@torch.no_grad()
def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
              batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and accuracy as tensors on the model's device (no synchronisation)."""
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
    return torch.as_tensor(loss_sum / len(x)), torch.as_tensor(correct / len(x))


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int | None = None) -> dict:
    """Loss and accuracy of ``model`` on (x, y), in eval mode; per model for an ensemble."""
    loss, accuracy = _evaluate(model, x, y, batch_size)
    return {"loss": _to_py(loss), "accuracy": _to_py(accuracy)}


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: dict, epochs: int,
          batch_size: int | None = None, on_epoch_end: Callable[[int], None] | None = None,
          eval_every: int = 1, eval_batch_size: int | None = None,
          transform: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
          generator: torch.Generator | None = None,
          progress: bool = True, desc: str = "train", check_every: int = 100,
          precision: str = "float32", compile_mode: str | None = None) -> dict:
    """Train ``model`` on data = dict(x, y, x_test, y_test) and return its history.

    batch_size None means full batch (one step per epoch). ``on_epoch_end(epoch)`` runs after the
    steps of each epoch (1-based), before the evaluation: a schedule, or stopping a method's noise
    (``lambda e: e == 40 and repro.optim.stop_noise(optimizer)``). ``transform`` maps a
    training batch (x, generator) to an augmented one. The loss is checked every step on the
    device and read every ``check_every`` steps and at the end: a non-finite loss raises
    repro.Diverged naming the step where it first appeared. The history holds, at every
    ``eval_every``-th epoch and the last, the epoch and the train/test loss and accuracy (floats,
    or per-model lists for an ensemble), copied from the device once, at the end. ``precision``
    is ``"float32"`` or ``"bf16"`` (bfloat16 autocast of the training steps, CUDA only; see the
    module docstring). ``compile_mode`` (None: eager) is one of ``COMPILE_MODES``: the loss of a
    training batch is computed by ``torch.compile(..., mode=compile_mode)`` (the first steps pay
    for the compilation; results agree with eager to rounding). With ``progress`` the bar shows
    the latest evaluation, which costs one synchronisation per evaluation.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size!r}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every!r}")
    positive_int("check_every", check_every)
    if compile_mode is not None:
        one_of("compile_mode", compile_mode, COMPILE_MODES)
    dev = _model_device(model)
    cast = precision_context(precision, dev)

    def batch_loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with cast:
            return per_model_loss(model(xb), yb)

    if compile_mode is not None:
        batch_loss = torch.compile(batch_loss, mode=compile_mode)
    x, y = data["x"], data["y"]
    n = len(x)
    full_batch = batch_size is None or batch_size >= n
    if full_batch:
        xb_full, yb_full = x.to(dev), y.to(dev)
    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    evals: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    history = {"epoch": [], **{k: [] for k in keys}, "seconds": 0.0}
    watch = FiniteWatch("training loss", every=check_every)
    started = time.perf_counter()
    step = 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, mininterval=2.0)
    for epoch in bar:
        model.train()
        if full_batch:
            batches = [(xb_full, yb_full)]
        else:
            # drawn where the generator lives (the same order on every device), moved once
            order = torch.randperm(n, generator=generator).to(x.device)
            batches = ((x[idx].to(dev), y[idx].to(dev))
                       for idx in order.split(batch_size))
        for xb, yb in batches:
            if transform is not None:
                xb = transform(xb, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(xb, yb)
            watch.update(loss, step)
            loss.sum().backward()
            optimizer.step()
            step += 1
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        if epoch % eval_every == 0 or epoch == epochs:
            train_loss, train_acc = _evaluate(model, x, y, eval_batch_size)
            test_loss, test_acc = _evaluate(model, data["x_test"], data["y_test"], eval_batch_size)
            history["epoch"].append(epoch)
            for k, v in zip(keys, (train_loss, train_acc, test_loss, test_acc)):
                evals[k].append(v)
            if progress:
                bar.set_postfix(loss=_mean(_to_py(train_loss)), test_acc=_mean(_to_py(test_acc)))
    watch.check()
    for k in keys:
        history[k] = _to_py(torch.stack(evals[k]))   # one copy per quantity for the whole run
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


__all__ = ["COMPILE_MODES", "PRECISIONS", "evaluate", "precision_context", "train"]
