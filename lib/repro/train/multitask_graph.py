"""Multi-task training of a graph network with any aggregator of ``repro.mtl`` (QM9, Table 1 of
Navon et al., 2022): model selection on the validation Delta_m, per-target test MAE in the
paper's units.

Task gradients. Like the paper's Nash-MTL, ``fit`` differentiates each task's loss with respect
to *all shared parameters* (one backward pass per task, ``grads="parameters"``). The cheaper
variant the paper also reports (gradients with respect to the shared representation, about 6x
faster on QM9 but a worse Delta_m) is ``grads="representation"``.

The single-task errors that Delta_m is measured against are the paper's numbers: the chapter
passes them as ``baseline``.

Used in: chapter 39 (Nash-MTL, paper preset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from repro.checks import FiniteWatch, check_finite
from repro.data.qm9 import MEV, TARGETS, QM9Splits
from repro.data.qm9 import require_torch_geometric as _pyg
from repro.devices import device as default_device
from repro.metrics.multitask import delta_m
from repro.models.mpnn import MPNN
from repro.mtl.base import Aggregator, set_grad, task_gradients
from repro.seeds import generator

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from torch_geometric.data import Batch


def qm9_delta_m(mae: ArrayLike, baseline: Sequence[float]) -> float:
    """Delta_m% of per-target MAEs (paper units) against the single-task errors; all 11 targets
    are errors (lower is better)."""
    return delta_m(mae, baseline, [False] * len(baseline))


def _units(mae: torch.Tensor) -> np.ndarray:
    out = mae.detach().double().cpu().numpy().copy()
    if out.shape[-1] == len(TARGETS):
        out[..., list(MEV)] *= 1000.0                      # eV -> meV
    return out


@torch.no_grad()
def evaluate_mae(model: MPNN, loader: Iterable[Batch], mean: torch.Tensor,
                 std: torch.Tensor) -> np.ndarray:
    """Per-target mean absolute error over ``loader``, in the paper's units (meV where MEV)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for data in loader:
        data = data.to(dev)
        pred = model(data).double() * std.to(dev) + mean.to(dev)
        total = total + (pred - data.y.double()).abs().sum(0)
        count += data.y.shape[0]
    model.train(was_training)
    return _units(total / count)


# --- training ---------------------------------------------------------------------------------

@dataclass
class FitResult:
    test_mae: np.ndarray             # per target, paper units, at the best validation Delta_m
    test_delta_m: float
    val_delta_m: float               # the best one
    best_epoch: int                  # 1-based
    history: dict = field(default_factory=dict)   # per epoch: train_loss, val_delta_m, lr
    seconds: float = 0.0


def train_step(model: MPNN, data: Batch, aggregator: Aggregator,
               optimizer: torch.optim.Optimizer, mean: torch.Tensor, std: torch.Tensor,
               grads: str = "parameters", max_norm: float = 0.0, step: int | None = None,
               watch: FiniteWatch | None = None) -> torch.Tensor:
    """One multi-task step; returns the K task losses (mean squared error on standardised targets).

    The shared parameters follow the aggregator's direction. Head k gets the gradient of w_k l_k,
    w the aggregator's task weights (all 1 for methods without weights, such as PCGrad): with
    Nash-MTL that is the gradient of sum_k alpha_k l_k, as in the paper's code. ``max_norm`` > 0
    clips the shared gradient's norm (the paper's code does so, at 1, for Nash-MTL). Non-finite
    losses raise :class:`repro.Diverged` at once, or, with a ``watch``, when the caller next
    reads it (``watch.check()``: no host synchronisation in the step itself)."""
    optimizer.zero_grad(set_to_none=True)
    z = model.representation(data)
    out = model.heads(z)
    y = ((data.y - mean) / std).to(out.dtype)
    losses = ((out - y) ** 2).mean(0)                   # (K,)
    if watch is None:
        check_finite(losses, "QM9 task losses", step)
    else:
        watch.update(losses, step or 0)
    shared = model.shared_parameters()
    if grads == "parameters":
        G = task_gradients(losses, shared)                            # one backward per task
        d = aggregator(G.double()).to(G.dtype)
    elif grads == "representation":
        G = task_gradients(losses, [z])                                # (K, batch * dim)
        d = aggregator(G.double()).to(G.dtype)
    else:
        raise ValueError(f"grads must be 'parameters' or 'representation', got {grads!r}")
    w = aggregator.weights
    w = torch.ones_like(losses) if w is None else w.detach().to(losses.dtype).reshape(-1)
    heads = model.task_parameters()
    head_grads = torch.autograd.grad((w * losses).sum(), heads, retain_graph=grads != "parameters")
    if grads == "parameters":
        set_grad(shared, d)
    else:   # push the aggregated direction on the representation through the shared network
        grads_shared = torch.autograd.grad(z, shared, grad_outputs=d.view_as(z))
        for p, g in zip(shared, grads_shared):
            p.grad = g
    for p, g in zip(heads, head_grads):
        p.grad = g
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(shared, max_norm)
    optimizer.step()
    return losses.detach()


def fit(model: MPNN, splits: QM9Splits, aggregator: Aggregator, baseline: Sequence[float],
        epochs: int = 300, batch_size: int = 120, lr: float = 1e-3, seed: int = 0,
        grads: str = "parameters", max_norm: float = 0.0,
        device: torch.device | str | None = None, workers: int = 0,
        log: Callable[[str], None] | None = None) -> FitResult:
    """Train ``model`` on ``splits.train`` with Adam (``lr``) and the paper's schedule: the step is
    multiplied by 0.7 when the validation Delta_m has not improved for 5 epochs (down to 1e-5).
    After each epoch the validation and test MAEs are measured; the result is the test MAE of the
    epoch with the best validation Delta_m (the paper's model selection). ``workers`` > 0 builds
    the graphs (complete graph, distances: about 1 ms per molecule) in that many processes.
    ``baseline`` holds the single-task test MAE of every target (the chapter's paper numbers)."""
    if len(baseline) != len(TARGETS):
        raise ValueError(f"baseline must hold the {len(TARGETS)} single-task test MAEs that "
                         f"Delta_m is measured against, got {len(baseline)} values")
    _pyg()
    from torch_geometric.loader import DataLoader

    dev = default_device() if device is None else torch.device(device)
    model.to(dev)
    mean, std = splits.mean.to(dev, torch.float32), splits.std.to(dev, torch.float32)
    more = {"num_workers": workers, "persistent_workers": True} if workers > 0 else {}
    train = DataLoader(splits.train, batch_size=batch_size, shuffle=True,
                       generator=generator(seed), **more)
    val = DataLoader(splits.val, batch_size=batch_size, **more)
    test = DataLoader(splits.test, batch_size=batch_size, **more)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.7,
                                                          patience=5, min_lr=1e-5)
    history = {"train_loss": [], "val_delta_m": [], "test_delta_m": [], "lr": []}
    best, step = None, 0
    watch = FiniteWatch("QM9 task losses", every=100)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total, batches = torch.zeros((), dtype=torch.float64, device=dev), 0
        for data in train:
            data = data.to(dev)
            step += 1
            losses = train_step(model, data, aggregator, optimizer, mean, std, grads, max_norm,
                                step, watch)
            total = total + losses.detach().double().mean()   # read once per epoch
            batches += 1
        watch.check()
        total = float(total)
        val_mae = evaluate_mae(model, val, mean, std)
        test_mae = evaluate_mae(model, test, mean, std)
        val_dm, test_dm = qm9_delta_m(val_mae, baseline), qm9_delta_m(test_mae, baseline)
        history["train_loss"].append(total / max(batches, 1))
        history["val_delta_m"].append(val_dm)
        history["test_delta_m"].append(test_dm)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if best is None or val_dm <= best[1]:
            best = (epoch, val_dm, test_mae, test_dm)
        schedule.step(val_dm)
        if log is not None:
            log(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, validation "
                f"Delta_m {val_dm:.1f}%, test Delta_m {test_dm:.1f}%")
    epoch, val_dm, test_mae, test_dm = best
    return FitResult(test_mae, test_dm, val_dm, epoch, history, time.perf_counter() - started)


__all__ = ['FitResult', 'evaluate_mae', 'fit', 'qm9_delta_m', 'train_step']
