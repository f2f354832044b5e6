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


def _arguments(tree: ast.AST) -> set[str]:
    """Parameters of the functions and lambdas a test defines: its own names, not the
    student's."""
    return {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}


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
    wanted = set().union(*(_loaded(t) - _stored(t) - _arguments(t) for t in tests)) \
        if tests else set()
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
    statement = "\n".join(c.source for c in question.prompt if c.cell_type == "markdown")
    unnamed = [n for n in _stub_names(lines) if not re.search(rf"\b{re.escape(n)}\b", statement)]
    if unnamed:
        raise BadInput(f"{where}: the tests of {question.name!r} read {', '.join(unnamed)} from "
                       f"the solution, but the exercise never names it; name it in the "
                       f"statement, or test without it")
    return "\n".join(["# Your answer: replace each ... below.", *lines]).rstrip() + "\n"


def _stub_names(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines
            if (m := re.match(r"^(?:async def |def )?([A-Za-z_]\w*)(?:\(| = \.\.\.)", line))]


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


# ---- the student's handout --------------------------------------------------------------------

PARAMETERS = "parameters"  # the runner's tag; a handout keeps only the values, untagged
RUNNER_NAMES = ("preset", "metrics_path")


def _plain_parameters(cell):
    """The runner's parameters cell as plain assignments, or None when nothing is left."""
    kept = []
    for line in cell.source.splitlines():
        code = line.split("#", 1)[0].rstrip()
        match = re.match(r"^([A-Za-z_]\w*)\s*(?::\s*\w+)?\s*=\s*(.+)$", code)
        if match and match.group(1) not in RUNNER_NAMES:
            kept.append(f"{match.group(1)} = {match.group(2).strip()}")
    if not kept:
        return None
    cell = copy.deepcopy(cell)
    cell.source = "\n".join(kept)
    cell.metadata.pop("tags", None)
    return cell


def _title(chapter: Chapter) -> str:
    index = chapter.folder / "index.md"
    if index.exists():
        for line in index.read_text().splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return chapter.slug


def student_intro(chapter: Chapter, questions: list[Question]) -> str:
    points = sum(float(q.config["points"]) for q in questions)
    return "\n".join([
        f"# Exercises: {_title(chapter)}",
        "",
        f"{len(questions)} exercises, {points:g} points. Each exercise says which names to "
        f"define; the cell after it starts them as `...`. Replace each `...` with your answer "
        f"(add cells of your own as you like), then run the `grader.check(...)` cell below it:",
        "",
        "- it runs the **public tests** and says what is wrong, without giving the answer away;",
        "- **hidden tests** run only when your notebook is graded: they call your code on fresh "
        "inputs, so an answer that is right only for the public test loses their points, and "
        "a function the exercise asks you to write must not call the library's own version;",
        "- run the first code cell first (it loads the tests), and before you hand in, run "
        "*Kernel > Restart Kernel and Run All Cells*: grading runs your notebook from top to "
        "bottom in a fresh kernel, with a time limit and no network.",
        "",
        f"Keep the file name `{NOTEBOOK}`, and do not rename the names the exercises ask for.",
        "The last cell exports your notebook for submission, if your teacher asks for that.",
    ])


def make_handout(student: nbformat.NotebookNode, chapter: Chapter,
                 questions: list[Question]) -> nbformat.NotebookNode:
    """otter's student notebook, made readable in plain Jupyter: MyST converted to markdown, an
    intro for students, the runner's cells gone."""
    from repro.machinery.handout import References, to_markdown

    bib = chapter.folder.parent.parent / "book" / "references.bib"
    try:
        references = References.from_bib(bib) if bib.exists() else References()
    except ImportError:  # pybtex comes with the book's packages; keys are readable enough
        references = References()
    cells, number, intro_done = [], 0, False
    for cell in student.cells:
        if PARAMETERS in cell.get("metadata", {}).get("tags", []):
            cell = _plain_parameters(cell)
            if cell is None:
                continue
        elif cell.cell_type == "markdown":
            if not intro_done and cell.source.lstrip().startswith("# "):
                cell.source, intro_done = student_intro(chapter, questions), True
            else:
                found = len(_EXERCISE.findall(cell.source))
                cell.source = to_markdown(cell.source, references,
                                          number + 1 if found else None)
                number += found
                if not cell.source.strip():
                    continue
        cells.append(cell)
    intro = next((c for c in cells if c.cell_type == "markdown"
                  and c.source.startswith("# Exercises:")), None)
    if intro is None:
        intro = nbformat.v4.new_markdown_cell(student_intro(chapter, questions))
    else:
        cells.remove(intro)
    student.cells = [intro, *cells]  # the intro first, before otter's set-up cell
    return student


# ---- assign ----------------------------------------------------------------------------------

MANIFEST = ".repro-assignment.json"  # what `repro assign` wrote into a folder, and only that


@dataclass(frozen=True)
class Assignment:
    folder: Path
    student: Path  # the notebook to hand out
    solutions: Path  # the autograder's copy, with solutions
    autograder: Path  # the zip file `repro grade --autograder` (and otter) take
    requirements: Path  # what a student installs: the library's wheel and its dependencies
    questions: tuple[tuple[str, float, int], ...]  # (name, points, hidden tests)


def _otter(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "otter", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def build_wheel(into: Path) -> Path:
    """A wheel of the library alone (``lib/repro``): no chapters, no solutions, no tests."""
    from repro import paths

    root = paths.root()
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="repro-wheel-") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        shutil.copy2(root / "pyproject.toml", source)
        shutil.copy2(root / "README.md", source)
        shutil.copytree(root / "lib", source / "lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                               "--no-build-isolation", "--quiet", "-w", str(into), str(source)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("building the library's wheel failed:\n" + done.stderr[-2000:])
    wheels = sorted(into.glob("repro_book-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wrote no wheel into {into}")
    return wheels[-1]


def _torch_requirement() -> str:
    import torch

    return f"torch=={torch.__version__.split('+')[0]}"


def _claim(out: Path, force: bool) -> list[str]:
    """Files of an earlier assignment in ``out`` (to replace); refuses a folder of someone
    else's files unless ``force``, which then only writes over the names it writes itself."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} is a file; --out takes a folder")
    if not out.exists() or not any(out.iterdir()):
        return []
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            return [str(f) for f in json.loads(manifest.read_text())["files"]]
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{manifest} is damaged; remove it or choose another --out") from None
    if not force:
        raise BadInput(f"{out} is not empty and was not written by `repro assign`; choose "
                       f"another --out, or pass --force to write the assignment's files there "
                       f"(nothing else in the folder is touched)")
    return []


def _student_readme(chapter: Chapter, wheel: str) -> str:
    return "\n".join([
        f"# Exercises: {_title(chapter)}", "",
        "Set up once (Python 3.10 or newer), in this folder:", "",
        "```bash",
        "python3 -m venv .venv",
        ".venv/bin/pip install -r requirements.txt",
        f".venv/bin/jupyter lab {NOTEBOOK}    # or: jupyter notebook {NOTEBOOK}",
        "```", "",
        f"`requirements.txt` installs the book's library (`{wheel}`, in this folder) with what "
        f"it needs, and otter-grader, which runs the public tests in the notebook. Work in "
        f"`{NOTEBOOK}`, keep its name, and hand it in as your teacher says.", ""])


def assign(chapter: Chapter, out: Path, *, force: bool = False, pdf: bool = False) -> Assignment:
    """Write the student's handout and the autograder of a chapter's exercises into ``out``.

    ``out/student/``: the notebook, the library's wheel, requirements.txt and a README;
    ``out/autograder/``: otter's autograder zip (which installs the same library) and the
    notebook with solutions. A folder that holds anything else is refused unless ``force``;
    only the files of an earlier assignment (listed in its manifest) are ever replaced.
    """
    master = build_master(chapter)
    _, questions = parse_exercises(read_exercises(chapter))
    out = Path(out).resolve()
    previous = _claim(out, force)
    with tempfile.TemporaryDirectory(prefix="repro-assign-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(tmp / "wheel")
        shutil.copy2(wheel, tmp / wheel.name)
        config = yaml.safe_load(master.cells[0].source.split("\n", 1)[1])
        # otter's autograder environment (Gradescope, `otter grade` in Docker) installs these,
        # from the folder the zip is unpacked in; the wheel travels in the zip's files/
        config["requirements"] = [_torch_requirement(), f"./files/{wheel.name}"]
        config["files"] = [wheel.name]
        config["python_version"] = f"{sys.version_info.major}.{sys.version_info.minor}"
        config["export_cell"] = {"pdf": bool(pdf), "force_save": False,
                                 "instructions": "Export your notebook for submission (only "
                                                 "if your teacher asks for it)."}
        master.cells[0].source = "# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config,
                                                                           sort_keys=False)
        path = tmp / NOTEBOOK
        nbformat.write(master, path)
        done = _otter("assign", "--no-run-tests", "--no-pdfs", str(path), "result", cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError("otter assign failed:\n" + (done.stdout + done.stderr)[-4000:])
        result = tmp / "result"
        zips = sorted((result / "autograder").glob("*-autograder_*.zip"))
        if not zips:
            raise RuntimeError("otter assign wrote no autograder zip")
        student = nbformat.read(result / "student" / NOTEBOOK, as_version=4)
        student = make_handout(student, chapter, questions)
        _stamp(student, chapter)
        solutions = nbformat.read(result / "autograder" / NOTEBOOK, as_version=4)
        _stamp(solutions, chapter)
        requirements = [_torch_requirement(), f"./{wheel.name}", "jupyterlab>=4,<5"]
        staged = tmp / "staged"
        files = {
            f"student/{NOTEBOOK}": nbformat.writes(student),
            "student/requirements.txt": "\n".join(requirements) + "\n",
            "student/README.md": _student_readme(chapter, wheel.name),
            f"autograder/{NOTEBOOK}": nbformat.writes(solutions),
        }
        for name, text in files.items():
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            (staged / name).write_text(text)
        shutil.copy2(wheel, staged / "student" / wheel.name)
        shutil.copy2(zips[-1], staged / "autograder" / "autograder.zip")
        written = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
        for name in previous:  # the earlier assignment's files, and nothing else
            old = out / name
            if old.is_file() and old.resolve().is_relative_to(out):
                old.unlink()
        for name in written:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staged / name, target)
        (out / MANIFEST).write_text(json.dumps({"chapter": chapter.slug, "files": written},
                                               indent=1) + "\n")
    return Assignment(out, out / "student" / NOTEBOOK, out / "autograder" / NOTEBOOK,
                      out / "autograder" / "autograder.zip", out / "student" / "requirements.txt",
                      tuple((q.name, float(q.config["points"]), q.hidden) for q in questions))


def _stamp(nb, chapter: Chapter) -> None:
    nb.metadata[META_KEY] = {"chapter": chapter.slug, "notebook": NOTEBOOK}
