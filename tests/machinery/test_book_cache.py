"""The book re-executes exactly what changed: each executed notebook's key covers the library
modules its kernel imported (recorded at execution), so a change to one module re-executes only
the notebooks that use it."""

from __future__ import annotations

import json

import nbformat

from conftest import _notebook
from repro.machinery import book


def executed_count(log: list[str]) -> int:
    [line] = [line for line in log if "to execute" in line]
    return int(line.rsplit(",", 1)[1].split()[0])


def test_a_changed_module_re_executes_only_the_notebooks_that_import_it(mini_book, monkeypatch):
    chapter = mini_book / "chapters" / "01-mini-chapter"
    # a second page that uses repro.linalg, which the experiments notebook never imports
    nbformat.write(_notebook([("markdown", "# Derivation", []),
                              ("code", "from repro.linalg import random_orthogonal\n", [])]),
                   chapter / "derivation.ipynb")
    log: list[str] = []
    book.execute_all("quick", jobs=2, log=log.append)
    assert executed_count(log) == 2

    keys = {p.stem: json.loads(p.read_text())
            for p in book.executed_dir("quick").joinpath("01-mini-chapter").glob("*.key")}
    assert "repro.linalg" in keys["derivation"]["modules"]
    assert "repro.linalg" not in keys["experiments"]["modules"]
    assert "repro.machinery.notebook" in keys["experiments"]["modules"]   # finish()
    # the helper cell that asked the kernel is not left in the executed notebook
    executed = nbformat.read(book.executed_dir("quick") / "01-mini-chapter" / "derivation.ipynb", 4)
    assert [c.source.splitlines()[0] for c in executed.cells if c.cell_type == "code"] == [
        "from repro.linalg import random_orthogonal"]

    log.clear()
    book.execute_all("quick", jobs=2, log=log.append)
    assert executed_count(log) == 0

    # repro.linalg changes: only the derivation is stale
    real = book.library_digests()
    changed = {**real, "repro.linalg": "0" * 64}
    monkeypatch.setattr(book, "library_digests", lambda: changed)
    stale = [job.notebook.name for ch in book.all_chapters() for job in
             (book.Job(ch, nb, "quick") for nb in ch.notebooks())
             if not book.is_current(job, changed)]
    assert stale == ["derivation.ipynb"]
    # a module the experiments use changes: only the experiments are stale
    changed = {**real, "repro.machinery.notebook": "0" * 64}
    stale = [job.notebook.name for ch in book.all_chapters() for job in
             (book.Job(ch, nb, "quick") for nb in ch.notebooks())
             if not book.is_current(job, changed)]
    assert stale == ["experiments.ipynb"]
    # a module neither uses (the SAM optimizer, say) changes nothing
    changed = {**real, "repro.optim.gd": "0" * 64}
    assert all(book.is_current(book.Job(ch, nb, "quick"), changed)
               for ch in book.all_chapters() for nb in ch.notebooks())
