"""The ``repro`` command: list chapters, run one, record a paper-scale run, build the book, make
and grade assignments.

Exit status: 0 success; 1 a claim failed; 2 input refused (nothing written); 3 the run or the
build failed.

Used by: the `repro` console script (``pyproject.toml``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from repro import paths
from repro.machinery.chapters import BadInput, all_chapters, find_chapter

EXIT_CLAIM_FAILED, EXIT_BAD_INPUT, EXIT_FAILED = 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, like every other refusal
        raise BadInput(message)


def _parse_overrides(items: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"-p takes name=value; got {item!r}")
        if name.strip() in overrides:
            raise BadInput(f"parameter {name.strip()!r} given twice")
        overrides[name.strip()] = value.strip()
    return overrides


def cmd_list(args) -> int:
    chapters = all_chapters()
    if args.chapter:
        chapters = [find_chapter(args.chapter)]
    for chapter in chapters:
        print(f"{chapter.slug}  (chapters/{chapter.folder.name})")
        print(f"  presets: {', '.join(chapter.presets)}")
        print("  parameters:")
        for p in chapter.parameters.values():
            if p.name in ("preset", "metrics_path"):
                continue
            constraint = f" in {p.constraint}" if p.constraint else ""
            paper = chapter.presets.get("paper", {}).get(p.name)
            paper_text = f"  [paper: {paper!r}]" if paper is not None else ""
            print(f"    {p.name}: {p.type} = {p.default!r}{constraint}  {p.help}{paper_text}")
    return 0


def cmd_run(args) -> int:
    """One chapter run, as one task of the execution engine (a local cluster of one worker
    unless --scheduler or --cluster names another): the input and the folder are checked here,
    the worker runs, and the run folder is written here, whole, with the verdicts printed."""
    import json

    from repro.machinery.claims import ChapterClaims, VerdictTable, check_all
    from repro.machinery.engine import Engine, write_folder_atomic
    from repro.machinery.runner import default_run_folder, portable_command, prepare_run_folder

    chapter = find_chapter(args.chapter)
    overrides = _parse_overrides(args.param)
    if not chapter.experiments.exists():
        raise BadInput(f"{chapter.slug} has no experiments.ipynb")
    chapter.resolve(args.preset, overrides)  # BadInput before anything is submitted
    out = prepare_run_folder(Path(args.out) if args.out else
                             default_run_folder(chapter, args.preset))
    task = {"kind": "run", "chapter": chapter.slug, "preset": args.preset, "overrides": overrides,
            "command": portable_command(sys.argv, paths.root())}
    with Engine(scheduler=args.scheduler, cluster=args.cluster, workers=1, preset=args.preset,
                log=lambda line: print(line, file=sys.stderr)) as engine:
        [outcome] = list(engine.run([task], progress=not args.no_progress))
    answer = outcome.answer or {}
    if answer.get("files"):
        write_folder_atomic(answer["files"], out)
        print(f"run folder: {out}")
    if not outcome.ok:
        status = answer.get("status") or "failed"
        print(f"repro: run {status}: {outcome.reason}", file=sys.stderr)
        return EXIT_FAILED
    claims = ChapterClaims.load(chapter.claims_path)
    table = VerdictTable(check_all(claims, json.loads((out / "metrics.json").read_text()),
                                   args.preset), args.preset)
    print(table)
    return EXIT_CLAIM_FAILED if table.counts()["fail"] else 0


def cmd_sweep(args) -> int:
    from repro.machinery.sweeps import run_sweep

    chapter = find_chapter(args.chapter)
    result = run_sweep(chapter, args.preset, args.param, out=Path(args.out) if args.out else None,
                       scheduler=args.scheduler, cluster=args.cluster, workers=args.workers,
                       metric=args.plot, x=args.x, progress=not args.no_progress)
    done = len(result.rows) - len(result.failed)
    print(f"{done} of {len(result.rows)} cells finished ({result.ran} run, {result.skipped} "
          f"current); table: {result.folder / 'sweep.csv'}")
    for row in result.failed:
        print(f"  {row['cell']}: {row['status']}: {row['error']}", file=sys.stderr)
    return EXIT_FAILED if result.failed else 0


def cmd_book(args) -> int:
    from repro.machinery.book import BuildFailed, build_book

    for chapter in all_chapters():
        if args.preset not in chapter.presets:
            raise BadInput(f"unknown preset {args.preset!r} for {chapter.slug}; "
                           f"choose from: {', '.join(chapter.presets)}")
    try:
        index = build_book(args.preset, student=args.student, jobs=args.jobs,
                           controls=args.controls, scheduler=args.scheduler)
    except BuildFailed as error:
        print(f"repro: book build failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"The book is built. Open {index} in a browser.")
    return 0


def cmd_assign(args) -> int:
    from repro.machinery.assign import assign

    chapter = find_chapter(args.chapter)
    out = Path(args.out) if args.out else paths.root() / "_build" / "assignments" / chapter.slug
    try:
        done = assign(chapter, out, force=args.force, pdf=args.pdf)
    except RuntimeError as error:  # otter or pip failed: say so, without a traceback
        print(f"repro: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"assignment for {chapter.slug} in {done.folder}")
    print(f"  hand out:   {done.student.parent}/  (the notebook, the library's wheel, "
          f"requirements.txt, README.md)")
    print(f"  grade with: repro grade {chapter.slug} SUBMISSIONS --autograder {done.autograder}")
    print(f"  solutions:  {done.solutions}")
    for name, points, hidden in done.questions:
        print(f"  {name}: {points:g} point(s), {hidden} hidden test(s)")
    if not args.no_check:
        import tempfile

        from repro.machinery.grading import grade_batch
        from repro.machinery.sandbox import bubblewrap

        with tempfile.TemporaryDirectory(prefix="repro-check-") as tmp:
            # the solutions are the teacher's own code: sandboxed where a sandbox exists
            batch = grade_batch(chapter, [done.solutions], done.autograder, Path(tmp) / "grades",
                                isolate=bubblewrap() is not None, timeout=args.timeout)
            result = batch.results[0]
            total, possible = result.total(batch.autograder), batch.rows()[0]["possible"]
            if result.status != "graded" or f"{total:g}" != possible:
                print((Path(tmp) / "grades" / "feedback" / f"{batch.students[0]}.md").read_text())
                print(f"repro: the solutions score {total:g} of {possible} ({result.status}"
                      f"{': ' + result.reason if result.reason else ''})", file=sys.stderr)
                return EXIT_FAILED
        print(f"  checked: the solutions score full marks ({possible} points) in "
              f"{result.seconds:.0f} s; grade with a --timeout well above that")
    return 0


def cmd_grade(args) -> int:
    from repro.machinery.grading import DEFAULT_TIMEOUT, default_out, grade_batch
    from repro.machinery.sandbox import Limits

    chapter = find_chapter(args.chapter)
    if args.docker:
        return _grade_in_docker(chapter, args)
    if args.timeout is not None and args.timeout <= 0:
        raise BadInput("--timeout must be a positive number of seconds")
    if args.memory <= 0:
        raise BadInput("--memory must be a positive number of GiB")
    out = Path(args.out) if args.out else default_out(chapter, Path.cwd())
    import tempfile

    scratch = tempfile.TemporaryDirectory(prefix="repro-grade-")
    if args.autograder:
        autograder = Path(args.autograder)
    else:  # built afresh from the chapter's exercises
        from repro.machinery.assign import assign

        autograder = assign(chapter, Path(scratch.name) / "assignment").autograder
    limits = Limits(memory_bytes=int(args.memory * (1 << 30)))
    if args.no_sandbox:
        print("repro: --no-sandbox: student code runs as you, with your files and the network",
              file=sys.stderr)
    width = 0

    def show(i, result):
        nonlocal width
        width = max(width, len(result.student))
        line = f"  {result.student:<{width}}  {result.status:<11}"
        if result.tests:
            total = sum(t["points"] for t in result.tests if t["passed"])
            possible = sum(t["points"] for t in result.tests)
            line += f" {total:g} of {possible:g}"
        if result.reason:
            line += f"  ({result.reason})"
        print(line, flush=True)
        if args.verbose:
            for t in result.tests:
                if not t["passed"] and not t["hidden"] and t["message"]:
                    print(f"      {t['question']} public test {t['number']}: "
                          f"{t['message'].strip()}")

    try:
        batch = grade_batch(chapter, [Path(s) for s in args.submission], autograder, out,
                            jobs=args.jobs, timeout=args.timeout or DEFAULT_TIMEOUT,
                            limits=limits, isolate=not args.no_sandbox, on_result=show)
    except KeyboardInterrupt:
        print(f"repro: interrupted; the grades so far are in {out / 'grades.csv'}",
              file=sys.stderr)
        return 130
    finally:
        scratch.cleanup()
    counts: dict[str, int] = {}
    for row in batch.rows():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    print(f"{len(batch.paths)} submission(s): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    print(f"grades:   {batch.out / 'grades.csv'}")
    print(f"feedback: {batch.out / 'feedback'}/  (one file per student: public tests only)")
    return 0


def _grade_in_docker(chapter, args) -> int:
    """otter's own container grading, for a teacher with Docker: no sandbox of ours needed."""
    import shutil
    import subprocess

    if not args.autograder:
        raise BadInput("--docker needs --autograder (the autograder.zip that `repro assign` wrote)")
    if shutil.which("docker") is None or subprocess.run(
            ["docker", "info"], capture_output=True).returncode != 0:
        raise BadInput("--docker needs a running Docker engine (`docker info` fails here); "
                       "without it, grade in the bubblewrap sandbox (the default)")
    out = Path(args.out) if args.out else Path.cwd() / "grades" / chapter.slug / "docker"
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "otter", "grade", "-a", str(args.autograder), "-o", str(out),
               "--ext", "ipynb", "--no-network", "--timeout",
               str(int(args.timeout or 300)), "--containers", str(args.jobs or 1),
               *map(str, args.submission)]
    print("running:", " ".join(command))
    return subprocess.run(command).returncode


def cmd_record(args) -> int:
    from repro.machinery.records import save_record

    target = save_record(Path(args.run), replace=args.replace)
    print(f"recorded: {target}")
    print("commit it; the chapter's page and the claims dashboard show it from the next build on")
    return 0


def cmd_controls(args) -> int:
    from repro.machinery.controls import CAUGHT, format_table, run_controls

    chapter = find_chapter(args.chapter)
    results = run_controls(chapter, args.preset, _parse_overrides(args.param),
                           only=args.control or None, jobs=args.jobs, scheduler=args.scheduler)
    print(format_table(results))
    return 0 if all(r.outcome == CAUGHT for r in results) else EXIT_CLAIM_FAILED


def _engine_arguments(p, cluster: bool = False) -> None:
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   default=os.environ.get("REPRO_SCHEDULER") or None,
                   help="execute on the Dask cluster of this scheduler (default: "
                   "$REPRO_SCHEDULER, else a local cluster)")
    if cluster:
        p.add_argument("--cluster", choices=("slurm", "pbs"), default=None,
                       help="start Dask workers as batch jobs (dask-jobqueue; configured in "
                       "~/.config/dask/jobqueue.yaml)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="repro", description="Run the book's chapters and build the book.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="chapters, their presets and parameters")
    p.add_argument("chapter", nargs="?", help="only this chapter")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="execute a chapter's experiments and check its claims")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("--preset", default="quick", help="quick (CPU, default) or paper (GPU)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (repeatable)")
    p.add_argument("--out", help="run folder (default: runs/<chapter>/<time>-<preset>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _engine_arguments(p, cluster=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="a chapter's experiments over a grid of parameters, one "
                       "task per cell on the execution engine, as one table")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="one axis of the grid: values, or an integer range a..b (repeatable)")
    p.add_argument("--preset", default="quick", help="quick (CPU, default) or paper (GPU)")
    p.add_argument("--out", help="the sweep's folder (default: runs/<chapter>/sweep-<preset>); "
                   "run again into it to resume")
    p.add_argument("--plot", metavar="METRIC", help="draw this metric (a dotted name of "
                   "metrics.json) against the parameter --x")
    p.add_argument("--x", metavar="PARAM", help="the axis on the figure's x-axis")
    p.add_argument("--workers", type=int, default=None,
                   help="local workers, or batch jobs with --cluster (default: cores / 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _engine_arguments(p, cluster=True)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("controls", help="break the chapter's methods on purpose (the negative "
                       "controls of its claims.yaml) and check that its claims say fail")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("--control", action="append", default=[], metavar="ID",
                   help="only this control (repeatable)")
    p.add_argument("--preset", default="quick", help="quick (default) or paper")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (repeatable)")
    p.add_argument("--jobs", type=int, default=None, help="controls run at once (default: cores)")
    _engine_arguments(p)
    p.set_defaults(func=cmd_controls)

    p = sub.add_parser("record", help="keep a finished run at another preset (paper scale) in "
                       "data/records/, shown in the book beside the build's own run")
    p.add_argument("run", help="the run folder that `repro run` wrote")
    p.add_argument("--replace", action="store_true", help="replace an existing record")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("book", help="execute every notebook and render the book")
    p.add_argument("--preset", default="quick", help="quick (default) or paper")
    p.add_argument("--student", action="store_true", help="the student edition: no solutions")
    p.add_argument("--controls", action="store_true",
                   help="also run every chapter's negative controls (shown on the dashboard)")
    p.add_argument(
        "--jobs", type=int, default=None, help="notebooks executed at once (default: cores)"
    )
    _engine_arguments(p)
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("assign", help="a chapter's exercises as an assignment (otter-grader)")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("--out", help="folder (default: _build/assignments/<chapter>)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that `repro assign` did not make (only "
                   "the assignment's own files are written; nothing is deleted)")
    p.add_argument("--pdf", action="store_true",
                   help="the export cell makes a PDF too, for grading by hand (needs LaTeX)")
    p.add_argument("--timeout", type=float, default=600,
                   help="seconds for grading the solutions (default 600)")
    p.add_argument("--no-check", action="store_true",
                   help="skip grading the solutions (which must score full marks)")
    p.set_defaults(func=cmd_assign)

    p = sub.add_parser("grade", help="grade a class's notebooks, each in a sandbox; writes "
                       "grades.csv and one feedback file per student")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("submission", nargs="+",
                   help="notebooks, or folders of them (or of one folder per student)")
    p.add_argument("--autograder", help="the autograder.zip that `repro assign` wrote "
                   "(default: built afresh from the chapter's exercises)")
    p.add_argument("--out", help="a new folder for the grades (default: "
                   "grades/<chapter>/<time>/)")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at once (default: cores)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per submission, its cells and the tests (default 300)")
    p.add_argument("--memory", type=float, default=4,
                   help="GiB of address space per process of a submission (default 4)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without bubblewrap: only for submissions you trust")
    p.add_argument("--docker", action="store_true",
                   help="grade with otter's Docker containers instead (needs Docker)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print why each public test failed (hidden tests never)")
    p.set_defaults(func=cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BadInput as error:
        print(f"repro: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("repro: interrupted", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
