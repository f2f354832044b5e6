"""Grading a class: every submission in a sandbox of its own, side by side, grades on disk.

How one submission is graded (``grade_one``, run in a worker process of its own):

1. the notebook is read and checked (a notebook of this chapter's assignment), its outputs
   dropped, and copied alone into a private folder with decoy test files beside it;
2. a Jupyter kernel starts in a bubblewrap sandbox (``repro.machinery.sandbox``) that sees only
   that folder, the Python environment read-only, no network, under rlimits; the kernel talks
   to the grader over Unix sockets, since the sandbox has no network at all;
3. a guard cell, run before the student's cells, records what a submission could alter to fake
   a test: builtins, the comparison functions of math/numpy/torch, IPython's cell transformers
   and runners, the trace and profile hooks, the output streams;
4. the student's cells run in order, errors and all, within the time budget;
5. the guard checks what it recorded and the decoy files; then each test, public and hidden,
   is sent to the kernel (the tests were never on the sandbox's disk) and must report back with
   a fresh random token. A test that does not report, or a guard that finds a change, flags the
   submission and scores 0 for what it covers.

``grade_batch`` runs the workers in parallel, turns every failure of one submission (a timeout,
a dead kernel, a corrupt file, a wrong extension, another chapter's notebook) into a row, and
rewrites the grades CSV atomically after each submission, so an interrupt keeps every grade.

Used by: `repro grade` and `repro assign` (which grades the solutions).
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from repro.machinery.chapters import BadInput, Chapter
from repro.machinery.runner import write_text_atomic
from repro.machinery.sandbox import NOBODY, Limits, Sandbox, bubblewrap, no_sandbox_reason

META_KEY = "repro"  # notebook metadata: which chapter an assignment notebook belongs to
NOTEBOOK = "exercises.ipynb"
MIME = "application/x-repro-test+json"
DEFAULT_TIMEOUT = 300  # seconds for one submission: its cells and its tests
MAX_BYTES = 50 << 20  # a notebook larger than this is refused unread

GRADED, FLAGGED, TIMEOUT, DIED, REFUSED, ERROR, INTERRUPTED = (
    "graded", "flagged", "timeout", "kernel died", "refused", "error", "not graded")


# ---- the tests, read from otter's autograder zip -----------------------------------------------

@dataclass(frozen=True)
class TestCase:
    question: str
    number: int  # 1, 2, ... within the question
    hidden: bool
    points: float
    function: str  # the test function's name
    source: str  # its definition, without otter's decorator


@dataclass(frozen=True)
class Autograder:
    assignment: str  # the chapter's slug, from otter_config.json
    questions: tuple[tuple[str, float], ...]  # (name, points) in the notebook's order
    tests: tuple[TestCase, ...]

    def of(self, question: str) -> list[TestCase]:
        return [t for t in self.tests if t.question == question]


def _literal(call: ast.Call, name: str, default=None):
    for keyword in call.keywords:
        if keyword.arg == name:
            return ast.literal_eval(keyword.value)
    return default


def _test_file(text: str, where: str) -> tuple[str, float, list[tuple[str, bool, str]]]:
    tree = ast.parse(text)
    values = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name):
            try:
                values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except ValueError:
                pass
    cases = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.FunctionDef):
            continue
        calls = [d for d in stmt.decorator_list if isinstance(d, ast.Call)
                 and getattr(d.func, "id", getattr(d.func, "attr", "")) == "test_case"]
        if not calls:
            continue
        hidden = bool(_literal(calls[0], "hidden", False))
        bare = ast.FunctionDef(**{**stmt.__dict__, "decorator_list": []})
        cases.append((stmt.name, hidden, ast.unparse(ast.fix_missing_locations(bare))))
    if "name" not in values or not cases:
        raise BadInput(f"{where} is not an otter test file (no name or no test_case)")
    return str(values["name"]), float(values.get("points", 1) or 1), cases


def read_autograder(path: Path, order: list[str] | None = None) -> Autograder:
    """The tests and points of an otter autograder zip (exception-based tests)."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".zip":
        raise BadInput(f"{path} is not an autograder zip file")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("otter_config.json"))
            files = {n: archive.read(n).decode() for n in archive.namelist()
                     if re.fullmatch(r"tests/[^/]+\.py", n)}
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as error:
        raise BadInput(f"{path} is not an autograder zip that `repro assign` wrote "
                       f"({type(error).__name__})") from None
    questions, tests = [], []
    for name, text in sorted(files.items()):
        question, points, cases = _test_file(text, f"{path}:{name}")
        questions.append((question, points))
        for number, (function, hidden, source) in enumerate(cases, 1):
            tests.append(TestCase(question, number, hidden, points / len(cases), function,
                                  source))
    if order:
        rank = {q: i for i, q in enumerate(order)}
        questions.sort(key=lambda q: rank.get(q[0], len(rank)))
    return Autograder(str(config.get("assignment_name", "")), tuple(questions), tuple(tests))


# ---- one submission ------------------------------------------------------------------------

@dataclass
class Result:
    """What grading one submission found; a row of the grades CSV."""

    submission: str  # the path as given, relative to the batch's input where possible
    student: str
    status: str = GRADED
    reason: str = ""
    flags: list[str] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)  # question, number, hidden, points, passed,
    #                                                   message (TestCase fields + outcome)
    errors: list[str] = field(default_factory=list)  # the student's cells that raised
    seconds: float = 0.0
    host: str = ""

    def scores(self, autograder: Autograder) -> dict[str, float]:
        got = {q: 0.0 for q, _ in autograder.questions}
        for t in self.tests:
            if t["passed"]:
                got[t["question"]] = got.get(t["question"], 0.0) + t["points"]
        return {q: round(v, 6) for q, v in got.items()}

    def total(self, autograder: Autograder) -> float:
        return round(sum(self.scores(autograder).values()), 6)


def check_submission(chapter: Chapter | str, path: Path) -> nbformat.NotebookNode:
    """The submission's notebook, or BadInput saying in one line why it is not gradable."""
    slug = chapter if isinstance(chapter, str) else chapter.slug
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no such file: {path}")
    if path.suffix != ".ipynb":
        raise BadInput(f"not a notebook (.ipynb): {path.name}")
    if path.stat().st_size > MAX_BYTES:
        raise BadInput(f"larger than {MAX_BYTES >> 20} MB: {path.name}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - any unreadable file gets the same one-line refusal
        raise BadInput(f"not a readable notebook (not Jupyter JSON): {path.name}") from None
    meta = nb.metadata.get(META_KEY, {})
    got = meta.get("chapter") if isinstance(meta, dict) else None
    if got is None:
        raise BadInput(f"not an assignment notebook (no {META_KEY}.chapter in its metadata): "
                       f"{path.name}")
    if got != slug:
        raise BadInput(f"a notebook of chapter {got!r}, not of {slug!r}: {path.name}")
    return nb


_SKIP = re.compile(r"^\s*grader\.(export|check_all)\(", re.M)  # the student's own tools


def _student_cells(nb) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a deep copy
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            if _SKIP.search(cell.source):
                continue
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    nb.cells = cells
    return nb


# The guard: run before the student's cells. It keeps its records in a closure and leaves two
# names behind, the check and the test runner; removing them is itself detected.
_GUARD = r'''
def _repro_guard():
    import builtins, importlib, json, math, sys
    from IPython import get_ipython
    from IPython.display import display
    shell = get_ipython()
    watched = {}
    def watch(module, names):
        try:
            owner = importlib.import_module(module) if isinstance(module, str) else module
        except Exception:
            return
        label = module if isinstance(module, str) else "shell"
        for name in names.split():
            owner_, attr = owner, name
            if "." in name:
                first, attr = name.split(".", 1)
                owner_ = getattr(owner, first, None)
            if hasattr(owner_, attr):
                watched[f"{label}.{name}"] = (owner_, attr, getattr(owner_, attr))
    # what the tests' verdicts rest on: the builtins an assertion uses, the comparisons of
    # math, numpy and torch, the shell's cell runners and the output streams
    watch("builtins", "__import__ abs all any bool compile dict divmod enumerate exec float "
          "getattr hasattr int isinstance issubclass len list map max min print range repr "
          "round set sorted str sum tuple type zip AssertionError BaseException Exception")
    watch("math", "isclose isfinite isnan isinf fabs")
    watch("numpy", "allclose isclose array_equal array_equiv all any abs isfinite "
          "testing.assert_allclose testing.assert_array_equal testing.assert_equal")
    watch("torch", "allclose isclose equal all any abs isfinite testing.assert_close")
    watch("sys", "stdout stderr displayhook excepthook settrace setprofile")
    watch(shell, "run_cell run_cell_async run_ast_nodes run_code showtraceback transform_cell "
          "display_pub custom_exceptions")
    pipelines = lambda: [list(shell.input_transformers_post),
                         list(shell.input_transformer_manager.cleanup_transforms),
                         list(shell.input_transformer_manager.line_transforms),
                         list(shell.ast_transformers)]
    before = pipelines()
    dumps, publish, scope_of = json.dumps, display, dict
    def check(token):
        # a bound method is made afresh at each look-up: equal, not identical, when unchanged
        changed = [key for key, (owner, name, value) in watched.items()
                   if getattr(owner, name, None) is not value
                   and not (hasattr(value, "__self__") and getattr(owner, name, None) == value)]
        if pipelines() != before:
            changed.append("IPython's cell transformers")
        if sys.gettrace() is not None or sys.getprofile() is not None:
            changed.append("a trace or profile function")
        publish({"%(mime)s": {"token": token, "changed": changed}}, raw=True)
    def run(source, function, token):
        scope, passed, message = scope_of(__name__="repro_test"), False, ""
        try:
            exec(compile(source, "<test>", "exec"), scope)
            scope[function](shell.user_ns)
            passed = True
        except AssertionError as error:
            message = str(error) or "an assertion failed"
        except BaseException as error:
            message = f"{type(error).__name__}: {error}"
        publish({"%(mime)s": {"token": token, "passed": passed, "message": message[:2000]}},
                raw=True)
    return check, run
_repro_check, _repro_run = _repro_guard()
del _repro_guard
''' % {"mime": MIME}


def _decoys(autograder: Autograder) -> dict[str, str]:
    """Test files where a submission would look for them; they are never run, only watched."""
    return {f"tests/{q}.py": f"# tests of {q}\nOK_FORMAT = False\nname = {q!r}\n"
            for q, _ in autograder.questions}


def _digest(folder: Path, names) -> dict[str, str | None]:
    out = {}
    for name in names:
        path = folder / name
        try:
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            out[name] = None
    return out


def _report(cell, token: str) -> dict | None:
    for output in cell.get("outputs", []):
        data = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" \
            else None
        if isinstance(data, dict) and data.get("token") == token:
            return data
    return None


def grade_one(spec: dict) -> Result:
    """Grade one submission in a sandbox. ``spec``: submission, student, chapter, autograder
    (``asdict`` of an ``Autograder``), timeout, limits, isolate, executed (where to save the
    executed notebook, or None)."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    started = time.monotonic()
    deadline = started + float(spec["timeout"])
    result = Result(spec["submission_label"], spec["student"], host=os.uname().nodename)
    autograder = Autograder(spec["autograder"]["assignment"],
                            tuple(map(tuple, spec["autograder"]["questions"])),
                            tuple(TestCase(**t) for t in spec["autograder"]["tests"]))
    try:
        nb = _student_cells(check_submission(spec["chapter"], Path(spec["submission"])))
    except BadInput as error:
        result.status, result.reason = REFUSED, str(error)
        return result
    with tempfile.TemporaryDirectory(prefix="repro-grade-", dir=spec.get("scratch")) as tmp:
        sandbox = Sandbox(Path(tmp) / "home", Path(tmp) / "run", Limits(**spec["limits"]),
                          isolate=spec["isolate"])
        sandbox.home.mkdir()
        nbformat.write(nb, sandbox.home / NOTEBOOK)  # the name otter's grader.check reads
        decoys = _decoys(autograder)
        for name, text in decoys.items():
            (sandbox.home / name).parent.mkdir(exist_ok=True)
            (sandbox.home / name).write_text(text)
        sandbox.run.mkdir()
        sandbox.prepare()
        # Unix sockets take paths of at most ~100 bytes, and a teacher's temporary folder can be
        # deep: both ends use a relative path, the grader from ``tmp`` and the kernel from its
        # home, which is ``tmp/home`` outside the sandbox and /home/student inside
        os.chdir(tmp)
        km = AsyncKernelManager(kernel_name="repro-sandbox", transport="ipc", ip="run/kernel",
                                kernel_spec_manager=KernelSpecManager(
                                    kernel_dirs=[str(Path(tmp) / "kernels")]))
        km.connection_file = str(Path(tmp) / "client.json")
        km.write_connection_file()
        kernel_file = sandbox.run / "kernel.json"
        connection = json.loads(Path(km.connection_file).read_text())
        kernel_file.write_text(json.dumps({**connection, "ip": "../run/kernel"}))
        os.chmod(kernel_file, 0o644)  # the sandbox's user must read it
        if sandbox.isolate and os.geteuid() == 0:
            os.chown(kernel_file, NOBODY, NOBODY)
        argv = sandbox.command([sys.executable, "-m", "ipykernel_launcher", "-f",
                                sandbox.inside(kernel_file)])
        spec_dir = Path(tmp) / "kernels" / "repro-sandbox"
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": argv, "display_name": "sandbox", "language": "python",
            "env": {} if sandbox.isolate else sandbox.environment()}))
        client = NotebookClient(nb, km=km, allow_errors=True, startup_timeout=120,
                                timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                                resources={"metadata": {"path": str(sandbox.home)}})
        where = "starting the kernel"
        try:
            with client.setup_kernel(cwd=str(sandbox.home)):
                where = "the grader's guard"
                guard = _run_extra(client, nb, _GUARD)
                if any(o.get("output_type") == "error" for o in guard.outputs):
                    raise RuntimeError("the grader's guard failed: " + _error_text(guard))
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    where = f"cell {index + 1}"
                    client.execute_cell(cell, index)
                    error = next((o for o in cell.outputs if o.get("output_type") == "error"),
                                 None)
                    if error is not None:
                        result.errors.append(f"cell {index + 1}: {error.get('ename')}: "
                                             f"{str(error.get('evalue'))[:300]}")
                _check(client, nb, sandbox, decoys, result)
                for case in autograder.tests:
                    where = f"test {case.number} of {case.question}"
                    token = secrets.token_hex(16)
                    cell = _run_extra(client, nb,
                                      f"_repro_run({case.source!r}, {case.function!r}, {token!r})")
                    report = _report(cell, token)
                    outcome = {**_case_dict(case), "passed": False, "message": ""}
                    if report is None:
                        result.flags.append(f"{case.question} test {case.number} did not "
                                            f"report its outcome")
                        outcome["message"] = "the test did not report (skipped or tampered with)"
                    elif result.status == FLAGGED:
                        outcome["message"] = "not counted: the submission was flagged"
                    else:
                        outcome["passed"], outcome["message"] = report["passed"], report["message"]
                    result.tests.append(outcome)
        except CellTimeoutError:
            result.status = TIMEOUT
            result.reason = f"stopped after {spec['timeout']:g} s, in {where}"
        except DeadKernelError:
            result.status, result.reason = DIED, f"the kernel died in {where} (killed, out of " \
                                                 f"memory or exited)"
        except Exception as error:  # noqa: BLE001 - one submission never stops the batch
            if time.monotonic() > deadline:
                result.status, result.reason = TIMEOUT, f"stopped after {spec['timeout']:g} s, " \
                                                        f"in {where}"
            else:
                result.status, result.reason = ERROR, f"{where}: {type(error).__name__}: " \
                                                      f"{str(error)[:300]}"
        finally:
            try:
                run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001 - it may be dead already
                pass
        if result.flags and result.status == GRADED:
            result.status = FLAGGED
        if result.status == FLAGGED and not result.reason:
            result.reason = "; ".join(result.flags)
        if result.status == FLAGGED:
            for t in result.tests:
                t["passed"] = False
        for case in autograder.tests[len(result.tests):]:  # tests that never ran score 0
            result.tests.append({**_case_dict(case), "passed": False,
                                 "message": "not run: " + (result.reason or "grading stopped")})
        if spec.get("executed"):
            write_text_atomic(nbformat.writes(nb), Path(spec["executed"]))
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _run_extra(client, nb, source: str):
    """Execute the grader's own code in the kernel; the notebook keeps only the student's."""
    cell = nbformat.v4.new_code_cell(source)
    nb.cells.append(cell)
    try:
        client.execute_cell(cell, len(nb.cells) - 1)
    finally:
        nb.cells.pop()
    return cell


def _case_dict(case: TestCase) -> dict:
    return {"question": case.question, "number": case.number, "hidden": case.hidden,
            "points": case.points}


def _error_text(cell) -> str:
    for o in cell.outputs:
        if o.get("output_type") == "error":
            return f"{o.get('ename')}: {o.get('evalue')}"
    return ""


def _check(client, nb, sandbox: Sandbox, decoys: dict, result: Result) -> None:
    """The guard's verdict and the decoys' state, after the student's cells."""
    if _digest(sandbox.home, decoys) != {n: hashlib.sha256(t.encode()).hexdigest()
                                         for n, t in decoys.items()}:
        result.flags.append("altered the test files it could see")
    token = secrets.token_hex(16)
    cell = _run_extra(client, nb, f"_repro_check({token!r})")
    report = _report(cell, token)
    if report is None:
        result.flags.append("the grader's guard did not answer (removed or bypassed)")
    elif report["changed"]:
        shown = ", ".join(report["changed"][:8])
        more = len(report["changed"]) - 8
        result.flags.append(f"altered the interpreter: {shown}" + (f" and {more} more"
                                                                     if more > 0 else ""))
    if result.flags:
        result.status = FLAGGED


# ---- many submissions ----------------------------------------------------------------------

def find_submissions(items: list[Path]) -> list[Path]:
    """Files to grade: files given, and the files in (and one level below) folders given.

    Hidden files and Jupyter's ``.ipynb_checkpoints`` are ignored; every other file is kept,
    so that one with a wrong extension becomes a row rather than vanishing.
    """
    found: list[Path] = []
    for item in map(Path, items):
        if not item.exists():
            raise BadInput(f"no such file or folder: {item}")
        if item.is_file():
            found.append(item)
            continue
        for entry in sorted(item.iterdir()):
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            if entry.is_file():
                found.append(entry)
            elif entry.is_dir():
                found += [f for f in sorted(entry.iterdir())
                          if f.is_file() and not f.name.startswith(".")]
    unique, seen = [], set()
    for path in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    if not unique:
        raise BadInput("no files to grade in " + ", ".join(map(str, items)))
    return unique


def student_id(path: Path) -> str:
    """``class/alice/exercises.ipynb`` -> alice; ``class/alice_exercises.ipynb`` -> its stem."""
    name = path.parent.name if path.name == NOTEBOOK else path.stem
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "_", name).strip("._") or "submission"


@dataclass
class Batch:
    chapter: Chapter
    autograder: Autograder
    out: Path
    results: dict[int, Result]
    paths: list[Path]
    students: list[str]

    def rows(self) -> list[dict]:
        rows = []
        for i, (path, student) in enumerate(zip(self.paths, self.students)):
            r = self.results.get(i) or Result(str(path), student, INTERRUPTED,
                                              "grading was interrupted first")
            row = {"student": student, "submission": str(path), "status": r.status,
                   "reason": r.reason, "flags": "; ".join(r.flags)}
            for q, points in self.autograder.questions:
                row[q] = _num(r.scores(self.autograder).get(q, 0.0)) if r.tests else "0"
            row["total"] = _num(r.total(self.autograder))
            row["possible"] = _num(sum(p for _, p in self.autograder.questions))
            row["seconds"] = f"{r.seconds:.1f}"
            rows.append(row)
        return rows

    def write_csv(self) -> Path:
        rows = self.rows()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        path = self.out / "grades.csv"
        write_text_atomic(buffer.getvalue(), path)
        return path


def _num(x: float) -> str:
    return f"{x:g}" if x == round(x, 2) else f"{x:.2f}"


def feedback(result: Result, autograder: Autograder, chapter: Chapter) -> str:
    """What a student may read: scores, public tests' messages, their own errors. No hidden
    test's message or source."""
    scores = result.scores(autograder)
    lines = [f"# {chapter.slug}: feedback for {result.student}", "",
             f"Status: {result.status}" + (f" ({result.reason})" if result.reason else ""), "",
             f"Total: {_num(result.total(autograder))} of "
             f"{_num(sum(p for _, p in autograder.questions))}", ""]
    for q, points in autograder.questions:
        lines.append(f"## {q}: {_num(scores.get(q, 0.0))} of {_num(points)}")
        tests = [t for t in result.tests if t["question"] == q]
        for t in tests:
            if t["hidden"]:
                continue
            state = "passed" if t["passed"] else "failed"
            text = f"- public test {t['number']}: {state}"
            if not t["passed"] and t["message"]:
                text += f": {t['message'].strip()}"
            lines.append(text)
        hidden = [t for t in tests if t["hidden"]]
        if hidden:
            lines.append(f"- hidden tests: {sum(t['passed'] for t in hidden)} of {len(hidden)} "
                         f"passed")
        lines.append("")
    if result.errors:
        lines += ["## Errors in your notebook", ""] + [f"- {e}" for e in result.errors[:10]] + [""]
    return "\n".join(lines)


def prepare_out(out: Path) -> Path:
    """A new or empty folder for a run's grades; anything else is refused, never cleared."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"{out} exists and is not empty; grades go into a new folder "
                       f"(choose another --out)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def grade_batch(chapter: Chapter, items: list[Path], autograder_zip: Path, out: Path, *,
                jobs: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                limits: Limits = Limits(), isolate: bool = True,
                on_result=None) -> Batch:
    """Grade every submission found in ``items``; rows and feedback are written as they finish.

    Raises BadInput before grading anything when the input as a whole is wrong (no files, a bad
    zip, another chapter's autograder, no sandbox). ``KeyboardInterrupt`` stops the workers and
    leaves the grades written so far, with the rest marked "not graded".
    """
    from repro.machinery.assign import parse_exercises, read_exercises

    if isolate and bubblewrap() is None:
        raise BadInput(f"cannot grade in a sandbox: {no_sandbox_reason()}. Without one, student "
                       f"code runs as you, reads your files and the network: pass --no-sandbox "
                       f"only if you trust every submission")
    order = [q.name for q in parse_exercises(read_exercises(chapter))[1]]
    autograder = read_autograder(autograder_zip, order)
    if autograder.assignment != chapter.slug:
        raise BadInput(f"{autograder_zip} is the autograder of {autograder.assignment!r}, not of "
                       f"{chapter.slug!r}")
    paths = find_submissions(items)
    out = prepare_out(out)
    students = _unique([student_id(p) for p in paths])
    batch = Batch(chapter, autograder, out, {}, paths, students)
    lock = threading.Lock()
    running: dict[int, subprocess.Popen] = {}
    stopping = threading.Event()
    spec_common = {"chapter": chapter.slug, "autograder": asdict(autograder),
                   "timeout": float(timeout), "limits": asdict(limits), "isolate": isolate}

    def work(i: int) -> Result:
        if stopping.is_set():
            return Result(str(paths[i]), students[i], INTERRUPTED, "grading was interrupted")
        spec = {**spec_common, "submission": str(paths[i].resolve()),
                "submission_label": str(paths[i]), "student": students[i],
                "executed": str(out / "executed" / f"{students[i]}.ipynb")}
        # the worker's private folders live in this one, which goes even if the worker is killed
        with tempfile.TemporaryDirectory(prefix="repro-worker-") as tmp:
            answer = Path(tmp) / "result.json"
            spec["scratch"] = tmp
            with lock:  # an interrupt either sees this worker or stops it from starting
                if stopping.is_set():
                    return Result(str(paths[i]), students[i], INTERRUPTED,
                                  "grading was interrupted")
                process = subprocess.Popen(
                    [sys.executable, "-m", "repro.machinery.grading", str(answer)],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    start_new_session=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
                running[i] = process
            try:
                _, stderr = process.communicate(json.dumps(spec).encode(), timeout=timeout + 120)
            except subprocess.TimeoutExpired:
                _kill(process)
                return Result(str(paths[i]), students[i], TIMEOUT,
                              f"the grader itself did not finish within {timeout + 120:g} s")
            finally:
                with lock:
                    running.pop(i, None)
            if stopping.is_set():
                return Result(str(paths[i]), students[i], INTERRUPTED, "grading was interrupted")
            if process.returncode != 0 or not answer.exists():
                tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                return Result(str(paths[i]), students[i], ERROR,
                              f"the grader failed (exit {process.returncode}): {tail[0][:300]}")
            return Result(**json.loads(answer.read_text()))

    def keep(i: int, result: Result) -> None:
        with lock:
            batch.results[i] = result
            write_text_atomic(feedback(result, autograder, chapter),
                              out / "feedback" / f"{students[i]}.md")
            write_text_atomic(json.dumps(asdict(result), indent=1),
                              out / "details" / f"{students[i]}.json")
            batch.write_csv()
        if on_result is not None:
            on_result(i, result)

    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and a polite kill keep the grades so far, even where the shell that started us
        # had SIGINT ignored (a background job)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1))
    try:
        futures = {pool.submit(work, i): i for i in range(len(paths))}
        for future in as_completed(futures):
            keep(futures[future], future.result())
    except KeyboardInterrupt:
        with lock:
            stopping.set()
            for process in running.values():
                _kill(process)
        pool.shutdown(wait=True, cancel_futures=True)
        batch.write_csv()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])
    batch.write_csv()
    return batch


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the worker, its kernel, the sandbox
    except (ProcessLookupError, PermissionError):
        pass


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def default_out(chapter: Chapter, root: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / "grades" / chapter.slug / stamp


def main(argv: list[str]) -> int:
    """The worker: read a spec from stdin, grade one submission, write its result as JSON."""
    spec = json.loads(sys.stdin.read())
    result = grade_one(spec)
    write_text_atomic(json.dumps(asdict(result)), Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["Autograder", "Batch", "Result", "TestCase", "check_submission", "default_out",
           "feedback", "find_submissions", "grade_batch", "grade_one", "read_autograder",
           "student_id"]
