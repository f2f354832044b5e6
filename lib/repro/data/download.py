"""Downloads for users with a network: through a temporary file, checked against an md5, then
moved into place, so an interrupted download leaves nothing half-written. Nothing in the tests or
the quick preset calls these (the tests serve a small local file instead).

Used by: ``repro.data.cifar10`` and ``repro.data.mnist`` with ``download=True``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path


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
