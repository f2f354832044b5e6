"""MNIST: the four standard IDX files (gzipped or not) from a local folder, downloaded on request
(``download=True``); a missing copy raises :class:`DatasetMissing`.

Used in: chapter 40 (generative compressed sensing, paper preset).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from repro.data._common import (
    DatasetMissing,
    _as_tensors,
)
from repro.data.download import _download_file

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # a mirror of LeCun's files
MNIST_FILES = {  # name -> md5 of the .gz file
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
# IDX type codes (the third byte of the magic number) -> numpy big-endian dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped (``.gz``) or not, into a numpy array.

    Layout: two zero bytes, a type byte, the number of dimensions, then one big-endian int32 per
    dimension, then the data in C order.
    """
    import gzip

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: header says {shape} of {dtype}, but the data has "
                         f"{len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape).astype(
        dtype.newbyteorder("="))


def _find_idx(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _default_mnist_root() -> Path:
    from repro.paths import cache_dir

    return cache_dir() / "mnist"


def mnist(root: str | os.PathLike | None = None, download: bool = False, url: str = MNIST_URL,
          device: torch.device | str | None = None, flatten: bool = False,
          md5: bool = True) -> dict[str, torch.Tensor]:
    """MNIST from the four standard IDX files, pixels scaled to [0, 1] (no normalisation).

    ``root`` is the folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``); default
    ``repro.paths.cache_dir()/"mnist"``. Missing files are fetched from ``url`` + name + ``.gz``
    when ``download=True`` (any URL urllib opens, ``file://`` included; ``md5=False`` skips the
    checksums, for mirrors with other files); otherwise :class:`DatasetMissing` is raised.

    Returns ``x`` float32 ``(60000, 1, 28, 28)`` (``(60000, 784)`` with ``flatten=True``), ``y``
    int64, and ``x_test``, ``y_test`` likewise (10 000).
    """
    root = Path(root) if root is not None else _default_mnist_root()
    missing = [name for name in MNIST_FILES if _find_idx(root, name) is None]
    if missing:
        if not download:
            try:
                default = _default_mnist_root()
            except (FileNotFoundError, OSError):
                default = None
            where = "" if root == default else f", root={str(root)!r}"
            raise DatasetMissing(
                f"MNIST not found: {root}/ lacks {', '.join(missing)} (or the same with .gz). "
                f"Copy the four standard IDX files there, or get them with "
                f"repro.data.mnist(download=True{where}) (about 11 MB from {url})."
            )
        root.mkdir(parents=True, exist_ok=True)
        for name in missing:
            _download_file(url.rstrip("/") + "/" + name + ".gz", root / f"{name}.gz",
                           MNIST_FILES[name] if md5 else None)

    def images(name):
        x = read_idx(_find_idx(root, name)).astype(np.float32) / 255.0
        return x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, *x.shape[1:])

    arrays = {
        "x": images("train-images-idx3-ubyte"),
        "y": read_idx(_find_idx(root, "train-labels-idx1-ubyte")).astype(np.int64),
        "x_test": images("t10k-images-idx3-ubyte"),
        "y_test": read_idx(_find_idx(root, "t10k-labels-idx1-ubyte")).astype(np.int64),
    }
    for split in ("", "_test"):
        if len(arrays["x" + split]) != len(arrays["y" + split]):
            raise ValueError(f"MNIST in {root}: {len(arrays['x' + split])} images but "
                             f"{len(arrays['y' + split])} labels")
    return _as_tensors(arrays, device)


__all__ = ['MNIST_FILES', 'MNIST_URL', 'mnist', 'read_idx']
