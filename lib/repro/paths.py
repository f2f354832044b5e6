"""Where things are: the repository root, the chapters, the data and cache folders.

Used by: the data loaders (the cache folder) and the book machinery (the chapters).
"""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    """The book's repository root.

    REPRO_ROOT wins; otherwise the checkout that holds this (editable) package; otherwise the
    current directory if it looks like the book.
    """
    if os.environ.get("REPRO_ROOT"):
        return Path(os.environ["REPRO_ROOT"]).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "chapters").is_dir() and (here / "_toc.yml").is_file():
        return here
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "chapters").is_dir() and (candidate / "_toc.yml").is_file():
            return candidate
    raise FileNotFoundError(
        "cannot find the book's root (a folder with chapters/ and _toc.yml); set REPRO_ROOT"
    )


def chapters_dir() -> Path:
    return root() / "chapters"


def data_dir() -> Path:
    return root() / "data"


def cache_dir() -> Path:
    """Ignored by git: downloads, run folders, executed-notebook cache."""
    path = Path(os.environ.get("REPRO_CACHE") or root() / "data" / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path
