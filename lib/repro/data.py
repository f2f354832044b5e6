"""The data sets the chapters train on, as dicts of torch tensors.

Every loader returns ``dict(x=..., y=..., x_test=..., y_test=...)`` with ``x`` float32 and ``y``
int64, on ``device`` (default: ``repro.device()``).

- :func:`mnist1d`  generated locally with the ``mnist1d`` package from an explicit seed (never
  downloaded); cached as a small ``.npz`` under ``repro.paths.cache_dir()``.
- :func:`digits`   scikit-learn's bundled 8x8 digits, scaled to [0, 1], split with a seed.
- :func:`cifar10`  the standard ``cifar-10-batches-py`` pickles from a local folder, downloaded on
  request (``download=True``); a missing copy raises :class:`DatasetMissing`.
- :func:`mnist`    the four standard IDX files (gzipped or not) from a local folder, downloaded on
  request (``download=True``); a missing copy raises :class:`DatasetMissing`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from repro._common import device as default_device

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_URL",
    "DatasetMissing",
    "cifar10",
    "digits",
    "mnist",
    "read_idx",
    "mnist1d",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # of the archive at CIFAR10_URL
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = ("test_batch",)
# Per-channel mean and standard deviation of the 50 000 training images (pixels in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class DatasetMissing(FileNotFoundError):
    """A data set is not on disk; the message says where we looked and how to get it."""


def _as_tensors(arrays: dict, device) -> dict:
    on = default_device() if device is None else torch.device(device)
    out = {}
    for key in ("x", "y", "x_test", "y_test"):
        dtype = torch.int64 if key.startswith("y") else torch.float32
        out[key] = torch.as_tensor(np.asarray(arrays[key])).to(device=on, dtype=dtype)
    return out


def _cache_root() -> Path | None:
    """The cache folder, or None when there is none (then we simply do not cache)."""
    try:
        from repro.paths import cache_dir

        return cache_dir()
    except (FileNotFoundError, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# mnist1d


def mnist1d(seed: int = 0, num_samples: int = 5000, device=None, cache: bool = True, **overrides):
    """The MNIST-1D data set, generated locally from ``seed``.

    ``num_samples`` examples (10 balanced classes) of length-40 signals, split 80/20 into train
    and test as the package does. Other fields of ``mnist1d.data.get_dataset_args()`` (for
    example ``iid_noise_scale`` or ``shuffle_seq``) may be overridden by keyword. The package's
    own defaults use seed 42; this function's seed is explicit so that seeds can be varied.

    Generation takes about a second; with ``cache=True`` the arrays are kept in
    ``cache_dir()/mnist1d/<hash of the arguments>.npz``.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    if int(seed) < 0:
        raise ValueError(f"mnist1d: seed must be >= 0, got {seed}")
    if int(num_samples) < 10:
        raise ValueError(f"mnist1d: num_samples must be >= 10 (one per class), got {num_samples}")
    args = get_dataset_args(as_dict=True)
    args.pop("url")  # we never download
    unknown = sorted(set(overrides) - set(args))
    if unknown:
        raise ValueError(f"mnist1d: unknown dataset argument(s) {unknown}; known: {sorted(args)}")
    args.update(overrides)
    args.update(seed=int(seed), num_samples=int(num_samples))

    import mnist1d as package

    key = json.dumps({"args": args, "version": getattr(package, "__version__", "?")}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache_root = _cache_root() if cache else None
    path = cache_root / "mnist1d" / f"{digest}.npz" if cache_root is not None else None

    if path is not None and path.is_file():
        try:
            with np.load(path) as stored:
                return _as_tensors(dict(stored), device)
        except (OSError, ValueError, KeyError, EOFError):
            pass  # a damaged cache file: regenerate and overwrite it

    arrays = _generate_mnist1d(args, get_dataset_args, make_dataset)
    if path is not None:
        _save_npz_atomic(path, arrays)
    return _as_tensors(arrays, device)


def _generate_mnist1d(args: dict, get_dataset_args, make_dataset) -> dict:
    view = get_dataset_args()  # the ObjectView make_dataset expects
    view.__dict__.update(args)
    # make_dataset seeds numpy's and Python's global generators; leave the caller's state intact.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        made = make_dataset(view)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {
        "x": made["x"].astype(np.float32),
        "y": made["y"].astype(np.int64),
        "x_test": made["x_test"].astype(np.float32),
        "y_test": made["y_test"].astype(np.int64),
    }


def _save_npz_atomic(path: Path, arrays: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # caching is an optimisation; a read-only cache must not break loading


# ---------------------------------------------------------------------------------------------
# digits


def digits(seed: int = 0, test_fraction: float = 0.25, device=None):
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


# ---------------------------------------------------------------------------------------------
# CIFAR-10


def cifar10(
    root=None,
    download: bool = False,
    url: str = CIFAR10_URL,
    device=None,
    md5: str | None = CIFAR10_MD5,
):
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


def _download_file(url: str, target: Path, md5: str | None, what: str = "MNIST",
                   skip_hint: str = "md5=False") -> None:
    """Fetch ``url`` into ``target`` through a temporary file, checking the md5 when given."""
    fd, part = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise OSError(f"the file downloaded from {url} has md5 {digest.hexdigest()}, "
                          f"expected {md5}; it is corrupt or not {what} (pass {skip_hint} to skip)")
        os.replace(part, target)
    finally:
        if os.path.exists(part):
            os.unlink(part)


def _download_and_extract(url: str, root: Path, md5: str | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, archive = tempfile.mkstemp(dir=root, suffix=".tar.gz")
    os.close(fd)
    try:
        _download_file(url, Path(archive), md5, what="CIFAR-10", skip_hint="md5=None")
        # Unpack next to the target, then move into place, so a failed run leaves nothing half-done.
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")  # refuses absolute paths and '..'
            for entry in staging.iterdir():
                target = root / entry.name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                os.replace(entry, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if os.path.exists(archive):
            os.unlink(archive)


# ---------------------------------------------------------------------------------------------
# MNIST

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # a mirror of LeCun's files
MNIST_FILES = {  # name -> md5 of the .gz file
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
# IDX type codes (the third byte of the magic number) -> numpy big-endian dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
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


def mnist(root=None, download: bool = False, url: str = MNIST_URL, device=None,
          flatten: bool = False, md5: bool = True):
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
