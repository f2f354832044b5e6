"""The execution engine, measured: the quick book's notebooks executed by a local Dask cluster
against the process pool the book used before (the same tasks, the same worker count, one run,
alternating A B A B ...), a 16-cell sweep on one worker and on two, and what the per-module cache
keys save.

    .venv/bin/python benchmarks/engine.py book  [--repeat 1] [--workers N]
    .venv/bin/python benchmarks/engine.py sweep [--chapter SLUG -p name=v ...]
    .venv/bin/python benchmarks/engine.py cache   # after a build: what a change to one module costs
    .venv/bin/python benchmarks/engine.py overhead [--tasks 6]   # paired, task by task

Nothing is written into the book's build: the tasks' results are discarded (book), or land in a
temporary folder (sweep). Results go to standard output as a Markdown table, for engine.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path


def book_tasks(preset: str = "quick") -> list[dict]:
    from repro.machinery.book import Job, job_task
    from repro.machinery.chapters import all_chapters

    return [job_task(Job(ch, nb, preset)) for ch in all_chapters() for nb in ch.notebooks()]


def _execute(task, identity):
    from repro.machinery.engine import execute_task

    answer = execute_task(task, identity)
    return answer["status"], answer.get("error")


def with_pool(tasks: list[dict], workers: int) -> float:
    """What `repro book` did before the engine: a ProcessPoolExecutor of ``workers`` processes."""
    from repro.machinery.engine import code_identity

    identities = {t["chapter"]: code_identity(chapter=t["chapter"]) for t in tasks}
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_execute, task, identities[task["chapter"]]) for task in tasks]
        for future in as_completed(futures):
            status, error = future.result()
            if status != "ok":
                raise SystemExit(f"a task failed: {error}")
    return time.perf_counter() - t0


def with_dask(tasks: list[dict], workers: int) -> float:
    """The engine: a local Dask cluster of ``workers`` processes, started and closed inside."""
    from repro.machinery.engine import Engine

    t0 = time.perf_counter()
    with Engine(workers=workers, log=lambda _: None) as engine:
        for outcome in engine.run(tasks):
            if not outcome.ok:
                raise SystemExit(f"a task failed: {outcome.reason}")
    return time.perf_counter() - t0


def bench_book(args) -> None:
    tasks = book_tasks()
    workers = args.workers or os.cpu_count() or 1
    times: dict[str, list[float]] = {"pool": [], "dask": []}
    for _ in range(args.repeat):
        for name, fn in (("pool", with_pool), ("dask", with_dask)):
            times[name].append(fn(tasks, workers))
            print(f"  {name}: {times[name][-1]:.1f} s", file=sys.stderr)
    pool, dask = statistics.median(times["pool"]), statistics.median(times["dask"])
    print(f"| {len(tasks)} notebooks, {workers} workers, {os.cpu_count()} cores | "
          f"{pool:.1f} s | {dask:.1f} s | {100 * (dask / pool - 1):+.1f} % |")


def bench_sweep(args) -> None:
    from repro.machinery.chapters import find_chapter
    from repro.machinery.sweeps import run_sweep

    chapter = find_chapter(args.chapter)
    axes = args.param or ["seed=0..15", "steps=300", "grid_points=5"]
    rows = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="repro-bench-sweep-") as out:
            t0 = time.perf_counter()
            result = run_sweep(chapter, "quick", list(axes), out=Path(out), workers=workers,
                               progress=False, log=lambda _: None)
            seconds = time.perf_counter() - t0
            if result.failed:
                raise SystemExit(f"cells failed: {result.failed[:2]}")
            rows.append((workers, len(result.rows), seconds))
            print(f"  {workers} worker(s): {seconds:.1f} s", file=sys.stderr)
    base = rows[0][2]
    for workers, cells, seconds in rows:
        print(f"| {chapter.slug} {' '.join(axes)} | {cells} | {workers} | {seconds:.1f} s | "
              f"{base / seconds:.2f}x |")


def bench_overhead(args) -> None:
    """The engine's own cost, paired so that a machine whose load changes cannot bias it: the
    local cluster's start and close, then the same notebooks executed alternately in this
    process (what one worker of the old pool did) and as a task of a one-worker cluster."""
    from repro.machinery.engine import Engine, code_identity, execute_task

    tasks = [t for t in book_tasks() if t["kind"] == "notebook"][:args.tasks]
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    engine = Engine(workers=1, log=lambda _: None).__enter__()
    start = time.perf_counter() - t0
    ratios = []
    try:
        for task in tasks:
            t0 = time.perf_counter()
            execute_task(task, code_identity(chapter=task["chapter"]))
            direct = time.perf_counter() - t0
            t0 = time.perf_counter()
            [outcome] = list(engine.run([task]))
            dask = time.perf_counter() - t0
            if not outcome.ok:
                raise SystemExit(f"a task failed: {outcome.reason}")
            ratios.append(dask / direct)
            print(f"| {task['chapter']}/{task['notebook']} | {direct:.1f} s | {dask:.1f} s | "
                  f"{100 * (dask / direct - 1):+.0f} % |")
    finally:
        t0 = time.perf_counter()
        engine.__exit__(None, None, None)
        close = time.perf_counter() - t0
    print(f"| median over {len(ratios)} notebooks | | | "
          f"{100 * (statistics.median(ratios) - 1):+.0f} % |")
    print(f"| local cluster: start {start:.1f} s, close {close:.1f} s (once per command) | | | |")


def bench_cache(args) -> None:
    """For each library module: how many notebooks a change to it re-executes, now (those whose
    kernel imported it, plus all for the host modules) against before (all of them)."""
    from repro.machinery.book import HOST_MODULES, Job, library_digests, recorded_modules
    from repro.machinery.chapters import all_chapters

    jobs = [Job(ch, nb, args.preset) for ch in all_chapters() for nb in ch.notebooks()]
    used = [recorded_modules(job) for job in jobs]
    if any(u is None for u in used):
        raise SystemExit("build the book first (repro book): some notebooks have no recorded "
                         "modules")
    modules = sorted(library_digests())
    counts = {m: sum(1 for u in used if m in u or m in HOST_MODULES) for m in modules}
    science = {m: c for m, c in counts.items() if not m.startswith("repro.machinery")}
    mean_all = statistics.mean(counts.values())
    mean_science = statistics.mean(science.values())
    print(f"| {len(jobs)} notebooks, {len(modules)} modules | before: {len(jobs)} per change | "
          f"now: {mean_all:.1f} on average ({mean_science:.1f} for a science module) | "
          f"saving {100 * (1 - mean_all / len(jobs)):.0f} % |")
    for m, c in sorted(science.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"|   {m} | {c} |")
    print(json.dumps({m: c for m, c in counts.items()}, indent=None), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("book")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--workers", type=int, default=None)
    p = sub.add_parser("sweep")
    p.add_argument("--chapter", default="arora-implicit-acceleration-overparameterization")
    p.add_argument("-p", "--param", action="append", default=[])
    p = sub.add_parser("overhead")
    p.add_argument("--tasks", type=int, default=6)
    p = sub.add_parser("cache")
    p.add_argument("--preset", default="quick")
    p.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    {"book": bench_book, "sweep": bench_sweep, "cache": bench_cache,
     "overhead": bench_overhead}[args.what](args)


if __name__ == "__main__":
    main()
