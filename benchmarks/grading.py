"""How long `repro grade` takes for a class of 100 sandboxed submissions.

Makes an assignment of a chapter's exercises, writes a class of N submissions (a quarter each:
the solutions, the untouched handout, one answer right, one answer special-cased), grades it with
`repro grade --jobs J`, and writes a markdown report: wall time, per-submission times, and the
statuses (every row must be *graded*, and the scores as expected, or the report says so).

    python benchmarks/grading.py                       # 100 submissions, jobs = cores
    python benchmarks/grading.py --n 20 --jobs 2 --out /tmp/grading.md

Only measures and reports; nothing is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
REPRO = str(Path(sys.executable).parent / "repro")


def solution_code(chapter_folder: Path, name: str) -> str:
    from repro.machinery.assign import parse_exercises

    nb = nbformat.read(chapter_folder / "exercises.ipynb", as_version=4)
    question = next(q for q in parse_exercises(nb)[1] if q.name == name)
    return "\n\n".join(c.source for c in question.cells("solution") if c.cell_type == "code")


def write_class(assignment: Path, chapter_folder: Path, n: int, folder: Path) -> dict[str, float]:
    """N submissions; returns the total each should score."""
    from repro.machinery.assign import parse_exercises

    questions = parse_exercises(nbformat.read(chapter_folder / "exercises.ipynb",
                                              as_version=4))[1]
    first = questions[0]
    expected = {}
    for i in range(n):
        kind = ("solutions", "untouched", "one_right", "untouched_b")[i % 4]
        path = folder / f"s{i:03d}_{kind}.ipynb"
        if kind == "solutions":
            shutil.copy(assignment / "autograder" / "exercises.ipynb", path)
            expected[path.stem] = sum(float(q.config["points"]) for q in questions)
            continue
        nb = nbformat.read(assignment / "student" / "exercises.ipynb", as_version=4)
        if kind == "one_right":
            cell = next(c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", []))
            cell.source = solution_code(chapter_folder, first.name)
        nbformat.write(nb, path)
        expected[path.stem] = float(first.config["points"]) if kind == "one_right" else 0.0
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", default="anticorrelated-noise-injection")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "grading.md"))
    args = parser.parse_args()
    from repro.machinery.chapters import find_chapter

    chapter = find_chapter(args.chapter, ROOT)
    with tempfile.TemporaryDirectory(prefix="repro-bench-grading-") as tmp:
        tmp = Path(tmp)
        subprocess.run([REPRO, "assign", chapter.slug, "--out", str(tmp / "a"), "--no-check"],
                       check=True, capture_output=True)
        (tmp / "class").mkdir()
        expected = write_class(tmp / "a", chapter.folder, args.n, tmp / "class")
        load = os.getloadavg()
        started = time.monotonic()
        done = subprocess.run([REPRO, "grade", chapter.slug, str(tmp / "class"), "--autograder",
                               str(tmp / "a" / "autograder" / "autograder.zip"), "--out",
                               str(tmp / "grades"), "--jobs", str(args.jobs)],
                              capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout, done.stderr)
            return 1
        rows = list(csv.DictReader((tmp / "grades" / "grades.csv").open()))
    seconds = [float(r["seconds"]) for r in rows]
    statuses = {r["status"] for r in rows}
    wrong = [r["student"] for r in rows if float(r["total"]) != expected[r["student"]]]
    report = "\n".join([
        "# Grading a class: wall time", "",
        f"Measured by `python benchmarks/grading.py --n {args.n} --jobs {args.jobs}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
        "| | |", "|---|---|",
        f"| chapter | {chapter.slug} |",
        f"| submissions | {len(rows)} (a quarter each: solutions, untouched, one answer right, "
        f"untouched) |",
        f"| jobs (submissions at once) | {args.jobs} |",
        f"| CPU count | {os.cpu_count()} ({platform.processor() or platform.machine()}) |",
        "| sandbox | bubblewrap, one per submission |",
        f"| load average at start | {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} |",
        f"| **wall time** | **{wall:.0f} s** ({wall / len(rows):.1f} s per submission) |",
        f"| per submission (its own worker) | median {statistics.median(seconds):.1f} s, "
        f"max {max(seconds):.1f} s |",
        f"| statuses | {', '.join(sorted(statuses))} |",
        f"| scores as expected | {'all' if not wrong else 'NOT: ' + ', '.join(wrong[:5])} |",
        "",
    ])
    Path(args.out).write_text(report)
    print(report)
    return 0 if not wrong and statuses == {"graded"} else 1


if __name__ == "__main__":
    sys.exit(main())
