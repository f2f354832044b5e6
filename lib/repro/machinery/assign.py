"""Classroom assignments from a chapter's exercises, with otter-grader.

The chapter's ``exercises.ipynb`` is the single source of truth. Its markers map one to one onto
otter-assign's master-notebook format:

- a markdown cell holding an ``{exercise}`` directive opens a question; its ``:label:`` names
  the question, and the cell's metadata ``otter`` (optional) is otter's question config
  (``points``, default 1; ``name``, default the label; ``all_or_nothing``, ...);
- cells tagged ``solution`` (the gated solution markers, the explanation, the solution code)
  form otter's solution block: markdown is removed from the student notebook and code is
  replaced by a stub that defines, as ``...``, each name the question's tests read from it;
- code cells tagged ``test`` are public tests, cells tagged ``hidden-test`` hidden ones (tag
  them ``remove-cell`` too, so that no edition of the book shows them); each becomes one
  exception-based test case, and the question's points are split evenly between them;
- an untagged cell after a question's solutions or tests closes the question.

``build_master`` writes the otter master notebook, ``assign`` runs ``otter assign`` on it, and
``grade`` runs otter's non-container grader (``otter run``) on a submission. Grading executes the
submission in the current environment, on the CPU, without Docker.

Used by: `repro assign` and `repro grade`.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from repro.machinery.chapters import BadInput, Chapter

SOLUTION, TEST, HIDDEN_TEST = "solution", "test", "hidden-test"
CONFIG_KEY = "otter"  # the exercise cell's metadata key for otter's question config
META_KEY = "repro"  # notebook metadata: which chapter an assignment notebook belongs to
NOTEBOOK = "exercises.ipynb"

_EXERCISE = re.compile(r"^\s*(`{3,}|:{3,})\s*\{exercise\}", re.M)
_LABEL = re.compile(r"^\s*:label:\s*(\S+)", re.M)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass
class Question:
    name: str
    config: dict
    # (kind, cells) in notebook order; kind is "solution" or "tests"
    blocks: list[tuple[str, list]] = field(default_factory=list)
    prompt: list = field(default_factory=list)  # the exercise cell and untagged cells after it

    def cells(self, kind: str) -> list:
        return [c for k, cells in self.blocks if k == kind for c in cells]

    @property
    def tests(self) -> list:
        return self.cells("tests")

    @property
    def hidden(self) -> int:
        return sum(_kind(c) == HIDDEN_TEST for c in self.tests)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _kind(cell) -> str | None:
    tags = _tags(cell)
    if HIDDEN_TEST in tags:
        return HIDDEN_TEST
    if TEST in tags:
        return TEST
    if SOLUTION in tags:
        return SOLUTION
    return None


def parse_exercises(nb, where: str = NOTEBOOK) -> tuple[list, list[Question]]:
    """Split a notebook into its items: plain cells and ``Question``s, in order."""
    items: list = []
    questions: list[Question] = []
    current: Question | None = None
    for index, cell in enumerate(nb.cells):
        kind = _kind(cell)
        if cell.cell_type == "markdown" and kind is None and _EXERCISE.search(cell.source):
            label = _LABEL.search(cell.source)
            config = dict(cell.get("metadata", {}).get(CONFIG_KEY, {}))
            name = str(config.get("name") or (label.group(1) if label else ""))
            if not _NAME.match(name):
                raise BadInput(f"{where}: the exercise in cell {index} needs a :label: "
                               f"(or metadata otter.name); got {name!r}")
            if any(q.name == name for q in questions):
                raise BadInput(f"{where}: two exercises are named {name!r}")
            config["name"] = name
            config.setdefault("points", 1)
            current = Question(name, config, prompt=[cell])
            questions.append(current)
            items.append(current)
            continue
        if kind is None:
            if current is not None and not current.blocks:
                current.prompt.append(cell)  # given code or text the student works from
                continue
            current = None
            items.append(cell)
            continue
        if current is None:
            raise BadInput(f"{where}: cell {index} is tagged {kind!r} but is not inside an "
                           f"exercise (a markdown cell with an {{exercise}} directive)")
        if kind in (TEST, HIDDEN_TEST) and cell.cell_type != "code":
            raise BadInput(f"{where}: cell {index} is tagged {kind!r} but is not a code cell")
        block = SOLUTION if kind == SOLUTION else "tests"
        if current.blocks and current.blocks[-1][0] == block:
            current.blocks[-1][1].append(cell)
        else:
            current.blocks.append((block, [cell]))
    for q in questions:
        if not q.tests:
            raise BadInput(f"{where}: exercise {q.name!r} has no cell tagged 'test' or "
                           f"'hidden-test'")
    return items, questions


# ---- code analysis -------------------------------------------------------------------------

class _ModuleNames(ast.NodeVisitor):
    """Names bound in a cell's module scope (at any depth of if/for/with/try, but not inside a
    function, class, lambda or comprehension), in order of appearance."""

    def __init__(self):
        self.names: list[str] = []

    def _add(self, name: str):
        if name not in self.names:
            self.names.append(name)

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._add(node.id)

    def visit_FunctionDef(self, node):
        for deco in node.decorator_list:
            self.visit(deco)
        self._add(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        pass

    def visit_ListComp(self, node):
        pass

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    def visit_Import(self, node):
        for alias in node.names:
            self._add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node):
        if node.name:
            self._add(node.name)
        self.generic_visit(node)


def _bound_at_top(tree: ast.Module) -> list[str]:
    visitor = _ModuleNames()
    visitor.visit(tree)
    return visitor.names


def _loaded(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _stored(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
            and isinstance(n.ctx, (ast.Store, ast.Del))}


def _parse(source: str, where: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as error:
        raise BadInput(f"{where}: a cell does not parse as Python ({error.msg}, line "
                       f"{error.lineno})") from None


def stub_for(question: Question, where: str = NOTEBOOK) -> str:
    """The student's starting code: each name the tests read from the solution, as ``...``."""
    solution = [c for c in question.cells(SOLUTION) if c.cell_type == "code"]
    tests = [_parse(c.source, where) for c in question.tests]
    wanted = set().union(*(_loaded(t) - _stored(t) for t in tests)) if tests else set()
    lines: list[str] = []
    for cell in solution:
        tree = _parse(cell.source, where)
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in wanted:
                stub = copy.deepcopy(stmt)
                doc = ast.get_docstring(stmt)
                stub.body = ([ast.Expr(ast.Constant(doc))] if doc else []) + [
                    ast.Expr(ast.Constant(Ellipsis))]
                lines += [ast.unparse(stub), ""]
                wanted.discard(stmt.name)
        for name in _bound_at_top(tree):
            if name in wanted:
                lines.append(f"{name} = ...")
                wanted.discard(name)
    return "\n".join(["# Your answer: replace each ... below.", *lines]).rstrip() + "\n"


def exception_test(cell, number: int, where: str = NOTEBOOK) -> str:
    """One test cell as otter's exception-based test: a function of the notebook's globals.

    The cell's statements run with the notebook's global names (``globals().update(env)``) and
    the names the cell assigns are declared global, so the test reads exactly as it runs in the
    book; the test file's module is otter's copy, so nothing leaks into the student's notebook.
    """
    tree = _parse(cell.source, where)
    stored = sorted(set(_bound_at_top(tree)))
    body = ["globals().update(env)  # the notebook's names"]
    if stored:
        body.insert(0, f"global {', '.join(stored)}")
    source = cell.source.strip() or "pass"
    name = f"test_{number}"
    return "\n".join([f"def {name}(env):",
                      *("    " + line for line in body),
                      *("    " + line if line.strip() else "" for line in source.splitlines()),
                      "", f"{name}(globals())", ""])


# ---- the otter master notebook ---------------------------------------------------------------

def _raw(text: str):
    return nbformat.v4.new_raw_cell(text)


def _clean(cell):
    """A copy without outputs, ids and our own markers (otter's own tags are added by otter)."""
    cell = copy.deepcopy(cell)
    meta = cell.setdefault("metadata", {})
    meta.pop(CONFIG_KEY, None)
    tags = [t for t in meta.get("tags", []) if t not in (SOLUTION, TEST, HIDDEN_TEST)]
    if tags:
        meta["tags"] = tags
    else:
        meta.pop("tags", None)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def read_exercises(chapter: Chapter):
    path = chapter.folder / NOTEBOOK
    if not path.exists():
        raise BadInput(f"{chapter.slug} has no {NOTEBOOK}")
    return nbformat.read(path, as_version=4)


def build_master(chapter: Chapter) -> nbformat.NotebookNode:
    """The chapter's exercises as an otter-assign master notebook."""
    where = f"{chapter.slug}/{NOTEBOOK}"
    nb = read_exercises(chapter)
    items, questions = parse_exercises(nb, where)
    if not questions:
        raise BadInput(f"{where} has no exercises (markdown cells with an {{exercise}} directive)")
    config = {
        "name": chapter.slug,  # otter refuses a notebook of another assignment
        "init_cell": True, "check_all_cell": False, "export_cell": False,
        "run_tests": False,  # `repro assign` grades the solutions itself, with a clear table
        "solutions_pdf": False, "template_pdf": False,
        "generate": {"pdf": False, "filtering": False},
        "tests": {"files": False, "ok_format": False},  # exception-based, in the metadata
        "show_question_points": True,
    }
    cells = [_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False))]
    for item in items:
        if not isinstance(item, Question):
            cells.append(_clean(item))
            continue
        q = item
        cells.append(_raw("# BEGIN QUESTION\n" + yaml.safe_dump(q.config, sort_keys=False)))
        cells += [_clean(c) for c in q.prompt]
        stub, number = stub_for(q, where), 0
        for kind, block in q.blocks:
            if kind == SOLUTION:
                cells.append(_raw("# BEGIN SOLUTION"))
                for cell in block:
                    cell = _clean(cell)
                    if cell.cell_type == "code":
                        # student version: the stub (once), then an empty cell to work in
                        # the stub lives in a string in the solutions, as code for the student
                        quote = "'''" if '"""' in stub else '"""'
                        if quote in stub:
                            raise BadInput(f"{where}: the starting code of {q.name!r} holds "
                                           f"both kinds of triple quotes; use one kind")
                        prompt = (f"{quote} # BEGIN PROMPT\n{stub}{quote} # END PROMPT\n"
                                  if stub else "")
                        cell.source = (prompt + "# BEGIN SOLUTION NO PROMPT\n"
                                       + cell.source.rstrip() + "\n# END SOLUTION")
                        stub = ""
                    cells.append(cell)
                cells.append(_raw("# END SOLUTION"))
            else:
                cells.append(_raw("# BEGIN TESTS"))
                for cell in block:
                    number += 1
                    hidden = _kind(cell) == HIDDEN_TEST
                    test = _clean(cell)
                    test.source = (f'""" # BEGIN TEST CONFIG\nhidden: {str(hidden).lower()}\n'
                                   f'""" # END TEST CONFIG\n' + exception_test(cell, number, where))
                    cells.append(test)
                cells.append(_raw("# END TESTS"))
        cells.append(_raw("# END QUESTION"))
    master = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    master.metadata[META_KEY] = {"chapter": chapter.slug, "notebook": NOTEBOOK}
    return master


# ---- assign ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Assignment:
    folder: Path
    student: Path  # the notebook to hand out
    solutions: Path  # the autograder's copy, with solutions
    autograder: Path  # the zip file `otter run` / `repro grade --autograder` takes
    questions: tuple[tuple[str, float, int], ...]  # (name, points, hidden tests)


def _otter(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "otter", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def assign(chapter: Chapter, out: Path) -> Assignment:
    """Write the student notebook and the autograder bundle of a chapter into ``out``."""
    master = build_master(chapter)
    _, questions = parse_exercises(read_exercises(chapter))
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} is a file; --out takes a folder")
    if out.exists() and any(out.iterdir()):
        if not (out / "student").is_dir() and not (out / "autograder").is_dir():
            raise BadInput(f"{out} exists and is not an assignment folder; choose another --out")
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix="repro-assign-") as tmp:
        path = Path(tmp) / NOTEBOOK
        nbformat.write(master, path)
        done = _otter("assign", "--no-run-tests", "--no-pdfs", str(path), str(out), cwd=Path(tmp))
        if done.returncode != 0:
            raise RuntimeError("otter assign failed:\n" + (done.stdout + done.stderr)[-4000:])
    zips = sorted((out / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise RuntimeError(f"otter assign wrote no autograder zip into {out / 'autograder'}")
    autograder = out / "autograder" / "autograder.zip"
    zips[-1].rename(autograder)
    student = out / "student" / NOTEBOOK
    _stamp(student, chapter)
    _stamp(out / "autograder" / NOTEBOOK, chapter)
    return Assignment(out, student, out / "autograder" / NOTEBOOK, autograder,
                      tuple((q.name, float(q.config["points"]), q.hidden) for q in questions))


def _stamp(path: Path, chapter: Chapter) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata[META_KEY] = {"chapter": chapter.slug, "notebook": NOTEBOOK}
    nbformat.write(nb, path)


# ---- grade -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    question: str
    score: float
    possible: float
    passed: int  # test cases passed, hidden ones included
    tests: int
    failures: tuple = ()  # the failed test cases: {"hidden", "passed", "message"}


@dataclass(frozen=True)
class Grade:
    submission: Path
    scores: tuple[Score, ...]

    @property
    def total(self) -> float:
        return sum(s.score for s in self.scores)

    @property
    def possible(self) -> float:
        return sum(s.possible for s in self.scores)

    def table(self) -> str:
        width = max([len("question"), *(len(s.question) for s in self.scores)])
        lines = [f"{'question':<{width}}  {'score':>6}  {'of':>5}  tests passed",
                 f"{'-' * width}  {'-' * 6}  {'-' * 5}  ------------"]
        lines += [f"{s.question:<{width}}  {_num(s.score):>6}  {_num(s.possible):>5}  "
                  f"{s.passed} of {s.tests}" for s in self.scores]
        lines.append(f"{'total':<{width}}  {_num(self.total):>6}  {_num(self.possible):>5}")
        return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:g}" if x == round(x, 2) else f"{x:.2f}"


def check_submission(chapter: Chapter, path: Path) -> nbformat.NotebookNode:
    """Refuse anything but a notebook of this chapter's assignment (one line, BadInput)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no such file: {path}")
    if path.suffix != ".ipynb":
        raise BadInput(f"{path} is not a notebook (.ipynb)")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - any unreadable file gets the same one-line refusal
        raise BadInput(f"{path} is not a notebook (it does not read as Jupyter JSON)") from None
    meta = nb.metadata.get(META_KEY, {})
    got = meta.get("chapter") if isinstance(meta, dict) else None
    if got is None:
        raise BadInput(f"{path} is not an assignment notebook (no {META_KEY}.chapter in its "
                       f"metadata; hand out the one `repro assign` writes)")
    if got != chapter.slug:
        raise BadInput(f"{path} is a notebook of chapter {got!r}, not of {chapter.slug!r}")
    return nb


def grade(chapter: Chapter, submission: Path, autograder: Path | None = None) -> Grade:
    """Run otter's autograder (no container) on one submission; returns per-question scores.

    Without ``autograder``, the bundle is built afresh from the chapter's exercises notebook.
    """
    check_submission(chapter, submission)
    submission = Path(submission).resolve()
    with tempfile.TemporaryDirectory(prefix="repro-grade-") as tmp:
        if autograder is None:
            autograder = assign(chapter, Path(tmp) / "assignment").autograder
        elif not Path(autograder).is_file() or Path(autograder).suffix != ".zip":
            raise BadInput(f"{autograder} is not an autograder zip file")
        results = Path(tmp) / "results.json"
        done = subprocess.run([sys.executable, "-c", _DRIVER, str(submission),
                               str(Path(autograder).resolve()), str(results)], cwd=tmp,
                              capture_output=True, text=True,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))
        if done.returncode != 0 or not results.exists():
            raise RuntimeError("otter run failed:\n" + (done.stdout + done.stderr)[-4000:])
        data = json.loads(results.read_text())
    if data["error"]:
        raise RuntimeError(f"grading {submission.name} failed: {data['error']}")
    order = [q.name for q in parse_exercises(read_exercises(chapter))[1]]
    scores = sorted(_scores(data), key=lambda s: order.index(s.question)
                    if s.question in order else len(order))  # the notebook's order
    return Grade(submission, tuple(scores))


# Runs otter's non-container grader and writes what `grade` needs as JSON (otter prints a lot).
_DRIVER = """
import json, sys
from otter.run import main
submission, autograder, out = sys.argv[1:4]
results = main(submission, autograder=autograder, output_dir=None, no_logo=True)
error = results.catastrophic_error
data = {"error": None if error is None else f"{type(error).__name__}: {error}", "questions": [
    {"name": name, "score": float(tf.score), "possible": float(tf.possible),
     "cases": [{"hidden": bool(r.test_case.hidden), "passed": bool(r.passed), "message": r.message}
               for r in tf.test_case_results]}
    for name, tf in results.results.items()]}
open(out, "w").write(json.dumps(data))
"""


def _scores(data: dict) -> tuple[Score, ...]:
    return tuple(Score(q["name"], q["score"], q["possible"],
                       sum(c["passed"] for c in q["cases"]), len(q["cases"]),
                       tuple(c for c in q["cases"] if not c["passed"]))
                 for q in data["questions"])
