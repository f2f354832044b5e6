"""`repro sweep`: a chapter's experiments over a grid of parameters, one task per cell.

    repro sweep anticorrelated-noise-injection -p quad_sigma=0.02,0.05 -p quad_seeds=4..6

Each ``-p`` names one axis: a comma-separated list of values, or an inclusive range of integers
``a..b``. Every cell of the grid (the product of the axes, in the order given) is checked against
the chapter's parameters (name, type, range) before anything is submitted, then runs as a task of
the execution engine (``repro.machinery.engine``). Each cell gets its own run folder
``<out>/<name=value,...>/`` (written whole by the client, never half), and the sweep keeps one
tidy table, ``<out>/sweep.csv``: one row per cell with its parameters, status, where it ran, the
verdict of every claim and the run's scalar metrics (a list of numbers as its mean), rewritten
after every cell so an interrupted sweep keeps what finished. ``--plot METRIC --x PARAM`` draws
the metric against one parameter, averaged over the other axes whose name contains ``seed``.

A sweep resumes: run again into the same folder, it skips every cell whose inputs (the cell's
parameters, the notebook and its chapter, the library modules the cell's kernel used, the
computing packages) did not change since it finished, like the book build does.

Used by: `repro sweep` (``cli.py``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from repro import paths
from repro.machinery.chapters import BadInput, Chapter

TABLE = "sweep.csv"
KEY = ".sweep-key.json"
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def parse_axis(item: str) -> tuple[str, list[str]]:
    """``name=v1,v2,...`` or ``name=a..b`` (integers, inclusive) -> (name, values)."""
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise BadInput(f"-p takes name=v1,v2,... or name=a..b; got {item!r}")
    match = _RANGE.match(text.strip())
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if high < low:
            raise BadInput(f"-p {name}: the range {text.strip()} is empty")
        if high - low >= 10_000:
            raise BadInput(f"-p {name}: the range {text.strip()} has over 10,000 values")
        return name, [str(v) for v in range(low, high + 1)]
    values = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not v for v in values):
        raise BadInput(f"-p {name}: empty value in {text!r}")
    if len(set(values)) != len(values):
        raise BadInput(f"-p {name}: a value is listed twice in {text!r}")
    return name, values


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    if not items:
        raise BadInput("a sweep needs at least one axis: -p name=v1,v2,...")
    grid: dict[str, list[str]] = {}
    for item in items:
        name, values = parse_axis(item)
        if name in grid:
            raise BadInput(f"parameter {name!r} given twice")
        grid[name] = values
    return grid


@dataclass(frozen=True)
class Cell:
    index: int
    values: tuple[tuple[str, str], ...]   # (name, text) in the grid's order

    @property
    def overrides(self) -> dict[str, str]:
        return dict(self.values)

    @property
    def name(self) -> str:
        return _UNSAFE.sub("_", ",".join(f"{k}={v}" for k, v in self.values))


def plan(chapter: Chapter, preset: str, grid: Mapping[str, list[str]]) -> list[Cell]:
    """Every cell of the grid, each checked against the chapter's parameters (BadInput, naming
    the first bad value, before anything runs)."""
    if not chapter.experiments.exists():
        raise BadInput(f"{chapter.slug} has no experiments.ipynb")
    names = list(grid)
    for name in names:   # one message per bad value, not per cell
        for value in grid[name]:
            chapter.resolve(preset, {name: value})
    cells = [Cell(i, tuple(zip(names, combo)))
             for i, combo in enumerate(product(*(grid[n] for n in names)))]
    if not cells:
        raise BadInput("the grid is empty")
    return cells


def _job(chapter: Chapter, preset: str, cell: Cell):
    from repro.machinery.book import Job

    return Job(chapter, chapter.experiments, preset, tuple(sorted(cell.values)))


def is_current(folder: Path, job, digests: dict[str, str]) -> bool:
    from repro.machinery.book import input_key

    try:
        key = json.loads((folder / KEY).read_text())
        provenance = json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return False
    return (provenance.get("status") == "ok"
            and key.get("key") == input_key(job, key.get("modules") or [], digests))


# --- the table ---------------------------------------------------------------------------------

def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, bool) or isinstance(value, (int, float, str)) or value is None:
        out[prefix] = value
    elif isinstance(value, (list, tuple)):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(value):
            out[f"{prefix}.mean"] = sum(numbers) / len(numbers)


def cell_row(cell: Cell, chapter: Chapter, preset: str, folder: Path | None,
             status: str, error: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"cell": cell.name}
    resolved = chapter.resolve(preset, cell.overrides)
    row.update({name: resolved[name] for name, _ in cell.values})
    row.update(status=status, error=error or "")
    if folder is not None and folder.is_dir():
        provenance = _read_json(folder / "provenance.json") or {}
        row.update(host=provenance.get("host", ""), worker=provenance.get("worker", ""),
                   seconds=provenance.get("wall_time_s", ""))
        for verdict in _read_json(folder / "verdicts.json") or []:
            row[f"verdict:{verdict['id']}"] = verdict["verdict"]
        metrics: dict[str, Any] = {}
        _flatten("", _read_json(folder / "metrics.json") or {}, metrics)
        row.update({f"metric:{k}": v for k, v in metrics.items()})
    return row


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    from repro.machinery.runner import write_text_atomic

    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    first = [c for c in columns if not c.startswith(("verdict:", "metric:"))]
    rest = sorted(c for c in columns if c.startswith("verdict:")) + \
        sorted(c for c in columns if c.startswith("metric:"))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=first + rest, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(buffer.getvalue(), path)


def plot(rows: list[dict[str, Any]], metric: str, x: str, grid: Mapping[str, list[str]],
         path: Path) -> Path:
    """``metric`` against parameter ``x``: one line per combination of the other non-seed axes,
    the mean over the seed axes with its standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from repro.plot import book_style, figsize

    column = metric if metric.startswith("metric:") else f"metric:{metric}"
    if not any(column in row for row in rows):
        if not any(column + ".mean" in row for row in rows):
            raise BadInput(f"no finished cell has the metric {metric!r}")
        column += ".mean"
    seeds = [n for n in grid if "seed" in n and n != x]
    groups = [n for n in grid if n not in seeds and n != x]
    book_style()
    fig, ax = plt.subplots(figsize=figsize())
    lines: dict[tuple, dict[Any, list[float]]] = {}
    for row in rows:
        value = row.get(column)
        if row.get("status") != "ok" or not isinstance(value, (int, float)):
            continue
        lines.setdefault(tuple(row[g] for g in groups), {}).setdefault(row[x], []).append(value)
    for label, points in sorted(lines.items(), key=lambda kv: str(kv[0])):
        xs = sorted(points)
        means = [sum(points[v]) / len(points[v]) for v in xs]
        errors = [_sem(points[v]) for v in xs]
        name = ", ".join(f"{g}={v}" for g, v in zip(groups, label)) or column.split(":", 1)[1]
        ax.errorbar(xs, means, yerr=errors, marker="o", capsize=2, label=name)
    ax.set_xlabel(x)
    ax.set_ylabel(column.split(":", 1)[1])
    if seeds:
        ax.set_title(f"mean ± s.e. over {', '.join(seeds)}", fontsize="small")
    ax.legend(fontsize="small")
    fig.savefig(path)
    plt.close(fig)
    return path


def _sem(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


# --- the sweep --------------------------------------------------------------------------------

@dataclass
class SweepResult:
    folder: Path
    rows: list[dict[str, Any]]
    ran: int
    skipped: int

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "ok"]


def default_folder(chapter: Chapter, preset: str) -> Path:
    return paths.root() / "runs" / chapter.slug / f"sweep-{preset}"


def run_sweep(chapter: Chapter, preset: str, items: list[str], out: Path | None = None,
              scheduler: str | None = None, cluster: str | None = None,
              workers: int | None = None, metric: str | None = None, x: str | None = None,
              progress: bool = True, log: Callable[[str], None] = print) -> SweepResult:
    from repro.machinery.book import library_digests
    from repro.machinery.engine import Engine, write_folder_atomic
    from repro.machinery.runner import portable_command

    grid = parse_grid(items)
    if (metric is None) != (x is None):
        raise BadInput("--plot and --x go together")
    if x is not None and x not in grid:
        raise BadInput(f"--x {x!r} is not an axis of the grid ({', '.join(grid)})")
    cells = plan(chapter, preset, grid)
    out = Path(out) if out else default_folder(chapter, preset)
    digests = library_digests()
    jobs = {cell.index: _job(chapter, preset, cell) for cell in cells}
    current = [c for c in cells if is_current(out / c.name, jobs[c.index], digests)]
    todo = [c for c in cells if c not in current]
    log(f"{len(cells)} cells at preset {preset!r}: {len(current)} current, {len(todo)} to run "
        f"(folder {out})")
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict[str, Any]] = {
        c.index: cell_row(c, chapter, preset, out / c.name, "ok") for c in current}

    def table() -> list[dict[str, Any]]:
        return [rows.get(c.index) or cell_row(c, chapter, preset, None, "not run")
                for c in cells]

    import sys

    command = portable_command(sys.argv, paths.root())
    tasks = [{"kind": "run", "chapter": chapter.slug, "preset": preset,
              "overrides": c.overrides, "command": command, "cell": c.index} for c in todo]
    by_index = {c.index: c for c in cells}
    try:
        if tasks:
            with Engine(scheduler=scheduler, cluster=cluster, preset=preset, log=log,
                        workers=min(workers or len(tasks), len(tasks))
                        if not scheduler else workers) as engine:
                for outcome in engine.run(tasks, progress=progress):
                    cell = by_index[outcome.task["cell"]]
                    folder = out / cell.name
                    answer = outcome.answer
                    if answer and answer.get("files"):
                        files = dict(answer["files"])
                        if answer.get("status") == "ok":
                            key = {"key": _key(jobs[cell.index], answer["modules"], digests),
                                   "modules": sorted(answer["modules"])}
                            files[KEY] = json.dumps(key, indent=1).encode() + b"\n"
                        write_folder_atomic(files, folder)
                        rows[cell.index] = cell_row(cell, chapter, preset, folder,
                                                    answer["status"], answer.get("error"))
                    else:
                        rows[cell.index] = cell_row(cell, chapter, preset, None, "failed",
                                                    outcome.reason)
                    if not outcome.ok:
                        log(f"  cell {cell.name}: {rows[cell.index]['status']}: "
                            f"{rows[cell.index]['error']}")
                    write_table(table(), out / TABLE)
    except KeyboardInterrupt:
        for c in cells:
            rows.setdefault(c.index, cell_row(c, chapter, preset, None, "interrupted",
                                              "the sweep was interrupted before this cell ran"))
        write_table(table(), out / TABLE)
        raise
    final = table()
    write_table(final, out / TABLE)
    if metric is not None and x is not None:
        figure = plot(final, metric, x, grid, out / f"sweep-{_UNSAFE.sub('_', metric)}.svg")
        log(f"figure: {figure}")
    return SweepResult(out, final, ran=len(todo), skipped=len(current))


def _key(job, modules: list[str], digests: dict[str, str]) -> str:
    from repro.machinery.book import input_key

    return input_key(job, modules, digests)
