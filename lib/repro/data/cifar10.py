"""CIFAR-10: the standard ``cifar-10-batches-py`` pickles from a local folder, downloaded on request
(``download=True``); a missing copy raises :class:`DatasetMissing`.

Used in: chapter 10 (Anti-PGD, paper preset).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from repro.data._common import (
    DatasetMissing,
    _as_tensors,
)
from repro.data.download import _download_and_extract

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # of the archive at CIFAR10_URL
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = ("test_batch",)
# Per-channel mean and standard deviation of the 50 000 training images (pixels in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def cifar10(
    root: str | os.PathLike | None = None,
    download: bool = False,
    url: str = CIFAR10_URL,
    device: torch.device | str | None = None,
    md5: str | None = CIFAR10_MD5,
) -> dict[str, torch.Tensor]:
    """CIFAR-10 from the standard python-pickle batches, normalised per channel.

    ``root`` is the folder that holds ``cifar-10-batches-py/`` (default
    ``repro.paths.cache_dir()/"cifar10"``); a path to the ``cifar-10-batches-py`` folder itself
    works too. If the batches are missing, ``download=True`` fetches the ``.tar.gz`` at ``url``
    (any URL urllib opens, ``file://`` included), checks its md5 against ``md5`` (``None`` skips
    the check; give it when ``url`` is not the official archive) and unpacks it into ``root``;
    ``download=False`` raises :class:`DatasetMissing`.

    Returns ``x`` float32 ``(50000, 3, 32, 32)``, ``y`` int64, ``x_test``, ``y_test`` likewise
    (10 000), normalised with :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD`.
    """
    root = Path(root) if root is not None else _default_cifar_root()
    folder = _find_cifar_folder(root)
    if folder is None:
        if not download:
            raise DatasetMissing(
                f"CIFAR-10 not found: looked for {root / CIFAR10_FOLDER}/ (data_batch_1..5, "
                f"test_batch). Get it with repro.data.cifar10(download=True"
                f"{'' if root == _default_cifar_root_or_none() else f', root={str(root)!r}'}) "
                f"(downloads about 170 MB from {url}), or copy an existing {CIFAR10_FOLDER}/ "
                f"folder into {root}/."
            )
        _download_and_extract(url, root, md5)
        folder = _find_cifar_folder(root)
        if folder is None:
            raise DatasetMissing(
                f"the archive at {url} did not contain {CIFAR10_FOLDER}/ with data_batch_1..5 "
                f"and test_batch; nothing usable was found in {root}/"
            )

    x, y = _read_batches(folder, CIFAR10_TRAIN)
    x_test, y_test = _read_batches(folder, CIFAR10_TEST)
    mean = np.asarray(CIFAR10_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CIFAR10_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    arrays = {
        "x": (x.astype(np.float32) / 255.0 - mean) / std,
        "y": y,
        "x_test": (x_test.astype(np.float32) / 255.0 - mean) / std,
        "y_test": y_test,
    }
    return _as_tensors(arrays, device)


def _default_cifar_root() -> Path:
    from repro.paths import cache_dir

    return cache_dir() / "cifar10"


def _default_cifar_root_or_none() -> Path | None:
    try:
        return _default_cifar_root()
    except (FileNotFoundError, OSError):
        return None


def _has_batches(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CIFAR10_TRAIN + CIFAR10_TEST)


def _find_cifar_folder(root: Path) -> Path | None:
    for candidate in (root / CIFAR10_FOLDER, root):
        if _has_batches(candidate):
            return candidate
    return None


def _read_batches(folder: Path, names) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = batch.get(b"data", batch.get("data"))
        target = batch.get(b"labels", batch.get("labels"))
        if data is None or target is None:
            raise ValueError(f"{folder / name} is not a CIFAR-10 batch (no data/labels entries)")
        images.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(target, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


__all__ = ['CIFAR10_MD5', 'CIFAR10_MEAN', 'CIFAR10_STD', 'CIFAR10_URL', 'cifar10']
