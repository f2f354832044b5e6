"""Negative controls: break a method on purpose and check that the chapter's claims say fail.

A verdict is worth something only if it would say *fail* when the method is wrong. Each chapter's
``claims.yaml`` lists controls: a deliberate, plausible bug (``what``), planted by a code cell
(``cell``) that runs right after the notebook's parameters (and papermill's injected parameters),
and the claims that must fail under it (``must_fail``). ``run_controls`` executes the experiments
notebook once per control, in a scratch folder outside the working tree, and reports each
control as

- ``caught``    every claim of ``must_fail`` failed;
- ``survived``  at least one of them still passed (or was not run): the claims cannot tell the
                method from the bug;
- ``error``     the planted run stopped before it produced metrics (a control should plant a
                bug the experiment measures, not one that crashes it).

The report is kept as ``_build/controls/<preset>/<chapter folder>.json`` (a build product, never
committed) for the claims dashboard.

Used by: `repro controls` and the tests.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from repro import paths
from repro.machinery.chapters import BadInput, Chapter
from repro.machinery.claims import FAIL, ChapterClaims, Control, check_all
from repro.machinery.runner import RunFailed, execute_notebook, write_json_atomic

CAUGHT, SURVIVED, ERROR = "caught", "survived", "error"


@dataclass
class ControlResult:
    control: Control
    outcome: str                                   # caught, survived, error
    failed: list[str] = field(default_factory=list)   # every claim that failed under the bug
    detail: str = ""
    seconds: float = 0.0

    @property
    def missed(self) -> list[str]:
        """The claims of ``must_fail`` that did not fail."""
        return [c for c in self.control.must_fail if c not in self.failed]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.control.id, "what": self.control.what,
                "must_fail": list(self.control.must_fail), "failed": self.failed,
                "outcome": self.outcome, "detail": self.detail,
                "seconds": round(self.seconds, 1)}


def plant(source: Path, control: Control, target: Path) -> Path:
    """A copy of the notebook ``source`` with the control's cell right after the parameters cell."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    at = next((i for i, c in enumerate(nb.cells)
               if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if at is None:
        raise BadInput(f"{source} has no cell tagged 'parameters' to plant a control after")
    cell = nbformat.v4.new_code_cell(f"# negative control {control.id}: {control.what}\n"
                                     + control.cell)
    cell.metadata["tags"] = ["control"]
    nb.cells.insert(at + 1, cell)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def run_control(chapter: Chapter, control: Control, values: Mapping[str, Any], preset: str,
                workdir: Path) -> ControlResult:
    """Execute the chapter with one control planted and judge it against the claims."""
    started = time.perf_counter()
    planted = plant(chapter.experiments, control, workdir / f"{control.id}.ipynb")
    metrics_path = workdir / f"{control.id}.metrics.json"
    try:
        execute_notebook(planted, workdir / f"{control.id}.executed.ipynb",
                         {**values, "metrics_path": str(metrics_path)}, cwd=chapter.folder)
        if not metrics_path.exists():
            raise RunFailed("the planted run wrote no metrics")
    except RunFailed as failure:
        return ControlResult(control, ERROR, detail=str(failure),
                             seconds=time.perf_counter() - started)
    claims = ChapterClaims.load(chapter.claims_path)
    verdicts = check_all(claims, json.loads(metrics_path.read_text()), preset)
    failed = [v.claim.id for v in verdicts if v.verdict == FAIL]
    result = ControlResult(control, CAUGHT, failed, seconds=time.perf_counter() - started)
    if result.missed:
        result.outcome = SURVIVED
        result.detail = "still passing or not run: " + ", ".join(result.missed)
    return result


def _run_one(args: tuple) -> ControlResult:
    return run_control(*args)


def _select(chapter: Chapter, only: list[str] | None) -> list[Control]:
    controls = list(ChapterClaims.load(chapter.claims_path).controls)
    if only:
        known = {c.id for c in controls}
        unknown = [c for c in only if c not in known]
        if unknown:
            raise BadInput(f"{chapter.slug} has no control {', '.join(unknown)}; it has "
                           f"{', '.join(sorted(known)) or 'none'}")
        controls = [c for c in controls if c.id in only]
    return controls


def run_all(tasks: list[tuple[Chapter, list[Control], dict[str, Any]]], preset: str,
            jobs: int | None = None, log: Callable[[str], None] = print,
            scheduler: str | None = None) -> dict[Chapter, list[ControlResult]]:
    """Run the controls of several chapters as tasks of the execution engine (a local Dask
    cluster of ``jobs`` workers, or the one at ``scheduler``); each chapter's results come back in
    its claims.yaml order and its report is saved."""
    from repro.machinery.engine import Engine

    work = [(chapter, control, values) for chapter, controls, values in tasks
            for control in controls]
    results: dict[Chapter, list[ControlResult]] = {chapter: [] for chapter, _, _ in tasks}
    if work:
        workers = max(1, min(jobs or os.cpu_count() or 1, len(work)))
        jobs_ = [{"kind": "control", "chapter": chapter.slug, "control": control.id,
                  "values": dict(values), "preset": preset, "index": i}
                 for i, (chapter, control, values) in enumerate(work)]
        with Engine(scheduler=scheduler, workers=workers, preset=preset, log=log) as engine:
            for outcome in engine.run(jobs_):
                chapter, control, _ = work[outcome.task["index"]]
                result = (outcome.answer["result"] if outcome.ok else
                          ControlResult(control, ERROR, detail=outcome.reason))
                results[chapter].append(result)
                log(f"  control {chapter.slug}/{result.control.id}: "
                    f"{result.outcome} ({result.seconds:.0f} s)")
    for chapter, controls, _ in tasks:
        order = {c.id: i for i, c in enumerate(controls)}
        results[chapter].sort(key=lambda r: order[r.control.id])
        save_report(chapter, preset, results[chapter])
    return results


def run_controls(chapter: Chapter, preset: str = "quick",
                 overrides: Mapping[str, str] | None = None, only: list[str] | None = None,
                 jobs: int | None = None, log: Callable[[str], None] = print,
                 scheduler: str | None = None) -> list[ControlResult]:
    """Run the chapter's controls (or those named in ``only``), in parallel over ``jobs``
    processes, each in a scratch copy; the working tree is never written."""
    values = chapter.resolve(preset, dict(overrides or {}))   # BadInput before anything runs
    controls = _select(chapter, only)
    if not controls:
        raise BadInput(f"{chapter.slug} lists no controls in its claims.yaml")
    return run_all([(chapter, controls, values)], preset, jobs, log, scheduler=scheduler)[chapter]


def report_path(chapter: Chapter, preset: str) -> Path:
    return paths.root() / "_build" / "controls" / preset / f"{chapter.folder.name}.json"


def save_report(chapter: Chapter, preset: str, results: list[ControlResult]) -> Path:
    return write_json_atomic({"chapter": chapter.slug, "preset": preset,
                              "controls": [r.as_dict() for r in results]},
                             report_path(chapter, preset))


def load_report(chapter: Chapter, preset: str) -> dict | None:
    path = report_path(chapter, preset)
    return json.loads(path.read_text()) if path.is_file() else None


def format_table(results: list[ControlResult]) -> str:
    """The report as a table: control, claims that must fail, claims that failed, verdict."""
    rows = [("control", "must fail", "failed", "verdict")]
    for r in results:
        verdict = r.outcome + (f" ({r.detail})" if r.detail else "")
        rows.append((r.control.id, ", ".join(r.control.must_fail), ", ".join(r.failed) or "—",
                     verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join([*(row[j].ljust(widths[j]) for j in range(3)), row[3]]))
        if i == 0:
            lines.append("  ".join(["-" * w for w in widths] + ["-------"]))
    caught = sum(r.outcome == CAUGHT for r in results)
    lines.append(f"{caught} of {len(results)} controls caught")
    return "\n".join(lines)


__all__ = ["CAUGHT", "ERROR", "SURVIVED", "ControlResult", "format_table", "load_report", "plant",
           "run_all", "run_control", "run_controls"]
