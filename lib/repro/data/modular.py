"""Modular arithmetic tables with a recorded fraction of corrupted training labels.

``modular_arithmetic(p, train_fraction, corruption, ...)`` takes the whole table of the p^2 pairs
(a, b), a, b in 0..p-1, with label (a + b) mod p (or a * b mod p), shuffles it with an explicit
seed, keeps the first ``round(train_fraction * p^2)`` pairs for training and the rest for the test
set, and corrupts exactly ``round(corruption * n_train)`` training labels: each is moved to one of
the other p - 1 classes uniformly (``repro.data.symmetric_label_noise``), so the recorded mask
``corrupted`` is exactly the set of training labels that are wrong. The test labels stay true.

Inputs are the concatenated one-hot codes of a and b, float32 (m, 2p), so the data set has the
layout of every classification loader (``x``, ``y``, ``x_test``, ``y_test``); it also returns
``y_clean`` (the true training labels), ``corrupted`` (bool, n_train), the integer pairs
``pairs`` / ``pairs_test`` and ``p``.

Doshi et al. (2024) corrupt labels the same way up to one detail: their new label is drawn
uniformly from all p classes, so about one in p "corrupted" labels is in fact correct; ours never
is.

Used in: chapter 9 (to grok or not to grok: memorisation and generalisation on corrupted modular
arithmetic).
"""

from __future__ import annotations

import torch

from repro.data.label_noise import symmetric_label_noise
from repro.seeds import generator as make_generator

OPERATIONS = ("addition", "multiplication")


def modular_table(p: int, operation: str = "addition") -> tuple[torch.Tensor, torch.Tensor]:
    """All p^2 pairs (a, b) in row-major order (int64 (p^2, 2)) and their labels (p^2,)."""
    if int(p) < 2:
        raise ValueError(f"p must be >= 2, got {p}")
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; use one of {OPERATIONS}")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    y = (pairs[:, 0] + pairs[:, 1]) % p if operation == "addition" else \
        (pairs[:, 0] * pairs[:, 1]) % p
    return pairs, y


def one_hot_pairs(pairs: torch.Tensor, p: int) -> torch.Tensor:
    """The concatenated one-hot codes [e_a, e_b] of integer pairs (m, 2): float32 (m, 2p)."""
    return torch.nn.functional.one_hot(pairs, p).reshape(len(pairs), 2 * p).float()


def modular_arithmetic(p: int = 97, train_fraction: float = 0.5, corruption: float = 0.0,
                       operation: str = "addition", seed: int = 0,
                       device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The modular-arithmetic data set with ``corruption`` of its training labels corrupted.

    Returns ``x``, ``y`` (the training labels, corrupted where ``corrupted``), ``x_test``,
    ``y_test`` (true), ``y_clean`` (the true training labels), ``corrupted``, ``pairs``,
    ``pairs_test`` and ``p`` (an int). The split and the corruption are drawn from ``seed`` alone.
    """
    if not 0 < float(train_fraction) < 1:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    if not 0 <= float(corruption) <= 1:
        raise ValueError(f"corruption must lie in [0, 1], got {corruption}")
    if device is None:
        from repro.devices import device as default_device
        device = default_device()
    pairs, y = modular_table(p, operation)
    gen = make_generator(seed)
    order = torch.randperm(len(pairs), generator=gen)
    n_train = int(round(float(train_fraction) * len(pairs)))
    if not 1 <= n_train < len(pairs):
        raise ValueError(f"train_fraction {train_fraction} leaves no training or no test pair")
    train, test = order[:n_train], order[n_train:]
    y_clean = y[train]
    noisy, corrupted = symmetric_label_noise(y_clean, float(corruption), num_classes=p,
                                             generator=gen)
    out = {"x": one_hot_pairs(pairs[train], p), "y": noisy,
           "x_test": one_hot_pairs(pairs[test], p), "y_test": y[test],
           "y_clean": y_clean, "corrupted": corrupted,
           "pairs": pairs[train], "pairs_test": pairs[test]}
    out = {k: v.to(device) for k, v in out.items()}
    out["p"] = int(p)
    return out


__all__ = ["modular_arithmetic", "modular_table", "one_hot_pairs"]
