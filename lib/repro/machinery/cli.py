"""The ``repro`` command: list chapters, run one, record a paper-scale run, build the book, make
and grade assignments.

Exit status: 0 success; 1 a claim failed; 2 input refused (nothing written); 3 the run or the
build failed.

Used by: the `repro` console script (``pyproject.toml``).
"""

from __future__ import annotations

import argparse
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
    from repro.machinery.runner import run_chapter

    chapter = find_chapter(args.chapter)
    overrides = _parse_overrides(args.param)
    if not chapter.experiments.exists():
        raise BadInput(f"{chapter.slug} has no experiments.ipynb")
    result = run_chapter(chapter, args.preset, overrides, out=Path(args.out) if args.out else None,
                         progress=not args.no_progress)
    print(f"run folder: {result.folder}")
    if result.status != "ok":
        print(f"repro: run {result.status}: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    print(result.table)
    return EXIT_CLAIM_FAILED if result.failed_claims else 0


def cmd_book(args) -> int:
    from repro.machinery.book import BuildFailed, build_book

    for chapter in all_chapters():
        if args.preset not in chapter.presets:
            raise BadInput(f"unknown preset {args.preset!r} for {chapter.slug}; "
                           f"choose from: {', '.join(chapter.presets)}")
    try:
        index = build_book(args.preset, student=args.student, jobs=args.jobs,
                           controls=args.controls)
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
        done = assign(chapter, out)
    except RuntimeError as error:  # otter failed: say so, without a traceback
        print(f"repro: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"assignment for {chapter.slug} in {done.folder}")
    print(f"  hand out:   {done.student}")
    print(f"  grade with: {done.autograder}  (repro grade {chapter.slug} SUBMISSION "
          f"--autograder {done.autograder})")
    print(f"  solutions:  {done.solutions}")
    for name, points, hidden in done.questions:
        print(f"  {name}: {points:g} point(s), {hidden} hidden test(s)")
    if not args.no_check:
        from repro.machinery.assign import grade

        try:
            result = grade(chapter, done.solutions, done.autograder)
        except RuntimeError as error:
            print(f"repro: {error}", file=sys.stderr)
            return EXIT_FAILED
        if result.total != result.possible:
            print(result.table())
            print(f"repro: the solutions score {result.total:g} of {result.possible:g}",
                  file=sys.stderr)
            return EXIT_FAILED
        print(f"  checked: the solutions score full marks ({result.possible:g} points)")
    return 0


def cmd_grade(args) -> int:
    from repro.machinery.assign import check_submission, grade

    chapter = find_chapter(args.chapter)
    submissions: list[Path] = []
    for item in map(Path, args.submission):
        found = sorted(item.glob("*.ipynb")) if item.is_dir() else [item]
        if item.is_dir() and not found:
            raise BadInput(f"{item} holds no notebooks")
        submissions += found
    for path in submissions:  # refuse bad input before grading anything
        check_submission(chapter, path)
    autograder = Path(args.autograder) if args.autograder else None
    if autograder is not None and (autograder.suffix != ".zip" or not autograder.is_file()):
        raise BadInput(f"{autograder} is not an autograder zip file")
    results = []
    for path in submissions:
        try:
            result = grade(chapter, path, autograder)
        except RuntimeError as error:
            print(f"repro: {path}: {error}", file=sys.stderr)
            return EXIT_FAILED
        results.append(result)
        print(f"{path}")
        print(result.table())
        if args.verbose:
            for score in result.scores:
                for case in score.failures:
                    kind = "hidden" if case["hidden"] else "public"
                    print(f"  {score.question} ({kind} test): {case['message'].strip()}")
        print()
    if len(results) > 1:
        width = max(len(str(r.submission.name)) for r in results)
        print("summary")
        for r in results:
            print(f"  {str(r.submission.name):<{width}}  {r.total:g} of {r.possible:g}")
    return 0


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
                           only=args.control or None, jobs=args.jobs)
    print(format_table(results))
    return 0 if all(r.outcome == CAUGHT for r in results) else EXIT_CLAIM_FAILED


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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("controls", help="break the chapter's methods on purpose (the negative "
                       "controls of its claims.yaml) and check that its claims say fail")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("--control", action="append", default=[], metavar="ID",
                   help="only this control (repeatable)")
    p.add_argument("--preset", default="quick", help="quick (default) or paper")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (repeatable)")
    p.add_argument("--jobs", type=int, default=None, help="controls run at once (default: cores)")
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
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("assign", help="a chapter's exercises as an assignment (otter-grader)")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("--out", help="folder (default: _build/assignments/<chapter>)")
    p.add_argument("--no-check", action="store_true",
                   help="skip grading the solutions (which must score full marks)")
    p.set_defaults(func=cmd_assign)

    p = sub.add_parser("grade", help="grade filled-in notebooks of a chapter's assignment")
    p.add_argument("chapter", help="chapter slug (see `repro list`)")
    p.add_argument("submission", nargs="+", help="a notebook, or a folder of notebooks")
    p.add_argument("--autograder", help="the autograder.zip that `repro assign` wrote "
                   "(default: build it afresh from the chapter's exercises)")
    p.add_argument("-v", "--verbose", action="store_true", help="print why each test failed")
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
