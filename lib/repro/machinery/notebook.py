"""What a chapter's experiments notebook calls from the machinery: ``finish``, its last cell.

``finish(metrics, metrics_path, preset)`` hands the run's metrics to the runner (a no-op when the
notebook is run by hand, where ``metrics_path`` is empty) and returns the table of the chapter's
claims checked against them, which the cell then displays.

The chapter is found from the kernel's working directory: ``repro run`` and ``repro book``
execute a notebook with papermill with the working directory set to its chapter's folder
(``runner.execute_notebook``), and Jupyter and VS Code start a kernel in the notebook's folder.

Used by: the last cell of every ``experiments.ipynb`` (and the tests' miniature one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from repro.machinery.chapters import Chapter, chapter_at, find_chapter
from repro.machinery.claims import ChapterClaims, VerdictTable, check_all
from repro.machinery.runner import save_metrics


class NoChapter(LookupError):
    """``finish`` cannot tell which chapter the notebook belongs to; the message says what to do."""


def current_chapter(where: str | Path | None = None) -> Chapter:
    """The chapter whose folder holds ``where`` (default: the working directory)."""
    where = Path.cwd() if where is None else Path(where)
    chapter = chapter_at(where)
    if chapter is None:
        raise NoChapter(
            f"cannot tell which chapter this notebook belongs to: it runs in {where}, which is not "
            "inside a chapters/NN-slug/ folder with a claims.yaml; run it from its chapter's "
            "folder (as `repro run` does) or pass chapter=\"<slug>\" to finish()")
    return chapter


def finish(metrics: Mapping, metrics_path: str, preset: str,
           chapter: str | Chapter | None = None) -> VerdictTable:
    """Save ``metrics`` for the runner and return the chapter's verdicts, to display.

    ``chapter`` (a slug, folder name or number, or a Chapter) defaults to the chapter the
    notebook runs in. It is resolved first, so a notebook that cannot say which chapter it is
    fails before writing anything."""
    if chapter is None:
        chapter = current_chapter()
    elif not isinstance(chapter, Chapter):
        chapter = find_chapter(str(chapter))
    claims = ChapterClaims.load(chapter.claims_path)
    save_metrics(metrics, metrics_path)
    return VerdictTable(check_all(claims, metrics, preset), preset)
