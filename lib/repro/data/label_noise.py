"""Symmetric label noise that records which labels it flipped, and subsets of a data set.

``symmetric_label_noise(y, rate, num_classes, generator)`` flips exactly ``round(rate * N)``
labels of each row, chosen uniformly without replacement, each to a class drawn uniformly from
the *other* ``num_classes - 1`` classes, so that every flipped label is wrong and the returned
mask says exactly which ones are. ``y`` may be one label vector (N,) or S of them (S, N) with one
rate per row: the labels of S runs of a batched model (``per_model_cross_entropy`` takes labels
(S, N)), each with its own noise.

``with_label_noise(data, ...)`` applies it to a data dict's training labels (the test labels stay
clean) and keeps the clean labels and the mask; ``subset(data, n, generator)`` keeps n training
examples.

(Foret et al. (2021, Sec. 3.3) corrupt a fraction of CIFAR-10's training labels in this way to
show SAM's robustness to label noise; whether their flips could land on the true class was not
checked here: ours never do.)

Used in: chapter 14 (SAM with noisy labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def symmetric_label_noise(y: torch.Tensor, rate: float | Sequence[float] | torch.Tensor,
                          num_classes: int | None = None,
                          generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels with exactly ``round(rate * N)`` of each row flipped to another class, and the mask.

    ``y`` int64 (N,) or (S, N); ``rate`` a number in [0, 1], or one per row for (S, N); the
    classes are ``0 .. num_classes - 1`` (default: ``y.max() + 1``). Returns ``(noisy, flipped)``
    with the shape of ``y``: ``flipped`` is True exactly where ``noisy != y``. The draws come from
    ``generator`` (on the CPU) and do not depend on the device of ``y``.
    """
    if y.dtype not in (torch.int64, torch.int32) or y.ndim not in (1, 2):
        raise ValueError(f"y must be an integer tensor (N,) or (S, N), got {y.dtype} "
                         f"{tuple(y.shape)}")
    rows = y.reshape(-1, y.shape[-1]).cpu()
    S, N = rows.shape
    rates = torch.as_tensor(rate, dtype=torch.float64).reshape(-1)
    if rates.numel() == 1:
        rates = rates.expand(S)
    if rates.numel() != S:
        raise ValueError(f"{rates.numel()} rates for {S} rows of labels")
    if not bool(((rates >= 0) & (rates <= 1)).all()):
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    C = int(rows.max()) + 1 if num_classes is None else int(num_classes)
    if C < 2 or int(rows.min()) < 0 or int(rows.max()) >= C:
        raise ValueError(f"labels must lie in 0..{C - 1} with at least 2 classes")
    noisy, flipped = rows.clone(), torch.zeros(S, N, dtype=torch.bool)
    for s in range(S):
        k = int(round(float(rates[s]) * N))
        idx = torch.randperm(N, generator=generator)[:k]
        # a shift of 1..C-1 classes: uniform over the other classes, never the true one
        shift = torch.randint(1, C, (k,), generator=generator)
        noisy[s, idx] = (rows[s, idx] + shift) % C
        flipped[s, idx] = True
    return noisy.reshape(y.shape).to(y.device), flipped.reshape(y.shape).to(y.device)


def with_label_noise(data: dict, rate: float | Sequence[float] | torch.Tensor,
                     generator: torch.Generator | None = None, runs: int | None = None,
                     num_classes: int | None = None) -> dict:
    """``data`` with noisy training labels: ``y`` (N,), or (S, N) for ``runs = S`` (one noisy copy
    per run, ``rate`` a number or one per run), plus ``y_clean`` and ``flipped``; the test labels
    are untouched."""
    y = data["y"]
    if runs is not None:
        y = y.expand(int(runs), -1)
    if num_classes is None:
        num_classes = int(max(int(data["y"].max()), int(data["y_test"].max()))) + 1
    noisy, flipped = symmetric_label_noise(y, rate, num_classes, generator)
    return {**data, "y": noisy, "y_clean": data["y"], "flipped": flipped}


def subset(data: dict, n: int, generator: torch.Generator | None = None) -> dict:
    """``data`` with ``n`` of its training examples (drawn without replacement from
    ``generator``, or the first ``n`` without one); every training field of length N is cut the
    same way (``x``, ``y``, and ``y_clean``/``flipped`` if present, along their last axis for
    labels (S, N)); the test set is kept whole."""
    N = len(data["x"])
    if not 1 <= int(n) <= N:
        raise ValueError(f"subset size must be in 1..{N}, got {n}")
    idx = (torch.arange(int(n)) if generator is None
           else torch.randperm(N, generator=generator)[:int(n)])
    out = dict(data)
    out["x"] = data["x"][idx.to(data["x"].device)]
    for key in ("y", "y_clean", "flipped"):
        if key in data:
            v = data[key]
            out[key] = v[..., idx.to(v.device)]
    return out


__all__ = ["subset", "symmetric_label_noise", "with_label_noise"]
