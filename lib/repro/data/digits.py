"""scikit-learn's bundled 8x8 handwritten digits, scaled to [0, 1], split with a seed.

Used in: the exercises and tests that need a small real image data set.
"""

from __future__ import annotations

import numpy as np
import torch

from repro.data._common import (
    _as_tensors,
)


def digits(seed: int = 0, test_fraction: float = 0.25,
           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 64 features in [0, 1]).

    The train/test split is stratified by class and drawn from ``seed``.
    """
    from sklearn.datasets import load_digits

    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"digits: test_fraction must lie in (0, 1), got {test_fraction}")
    bunch = load_digits()
    x = bunch.data.astype(np.float32) / 16.0  # pixel intensities are integers 0..16
    y = bunch.target.astype(np.int64)

    # Stratified split: shuffle each class with the seeded generator, cut the same fraction.
    g = torch.Generator().manual_seed(int(seed))
    test_idx, train_idx = [], []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        members = members[torch.randperm(len(members), generator=g).numpy()]
        n_test = int(round(test_fraction * len(members)))
        test_idx.append(members[:n_test])
        train_idx.append(members[n_test:])
    train_idx = np.concatenate(train_idx)
    test_idx = np.concatenate(test_idx)
    # Mix the classes so that slices of the training set are not sorted by label.
    train_idx = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
    test_idx = test_idx[torch.randperm(len(test_idx), generator=g).numpy()]
    arrays = {"x": x[train_idx], "y": y[train_idx], "x_test": x[test_idx], "y_test": y[test_idx]}
    return _as_tensors(arrays, device)


__all__ = ['digits']
