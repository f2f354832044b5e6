"""Grading a real class, sandboxed: a batch of submissions of every kind a teacher meets, graded
by `repro grade` with bubblewrap. Each kind has its expected row in grades.csv.

The sandbox must be there: `make test` installs bubblewrap (as root) or stops saying so, and
these tests fail, not skip, without it.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import nbformat
import pytest

from conftest import REPRO, ROOT
from repro.machinery.assign import parse_exercises
from repro.machinery.chapters import find_chapter
from repro.machinery.grading import read_autograder, student_id
from repro.machinery.sandbox import bubblewrap, python_paths

SLUG = "anticorrelated-noise-injection"
OTHER = "nash-mtl-bargaining"
TIMEOUT = 45  # seconds per submission; the solutions take about 10

pytestmark = pytest.mark.slow


def test_bubblewrap_is_installed_and_works():
    assert shutil.which("bwrap"), "install bubblewrap (apt-get install bubblewrap): the " \
                                  "grading tests need the sandbox"
    assert bubblewrap() is not None, "bwrap is installed but cannot create namespaces here"


def run_repro(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([REPRO, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800, **kw)


@pytest.fixture(scope="module")
def assignment(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assignment")
    done = run_repro("assign", SLUG, "--out", str(out), "--no-check")
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def questions(slug: str = SLUG):
    chapter = find_chapter(slug, ROOT)
    return parse_exercises(nbformat.read(chapter.folder / "exercises.ipynb", as_version=4))[1]


def solution_of(name: str) -> str:
    q = next(q for q in questions() if q.name == name)
    return "\n\n".join(c.source for c in q.cells("solution") if c.cell_type == "code")


def fill(assignment: Path, answers: dict[str, str], target: Path, first: str = "") -> Path:
    """The handout with answer cells filled in; ``first`` goes into the first answer cell
    before that question's answer (where a student's stray code would run)."""
    nb = nbformat.read(assignment / "student" / "exercises.ipynb", as_version=4)
    cells = [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
    names = [q.name for q in questions()]
    assert len(cells) == len(names)
    for name, source in answers.items():
        cells[names.index(name)].source = source
    if first:
        cells[0].source = first + "\n" + cells[0].source
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


class LoopbackServer:
    """A TCP server on the host's loopback: a sandboxed submission must not reach it."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


PROBE = '''
import json, os, socket
seen = {{}}
for path in {paths!r}:
    try:
        seen[path] = "read: " + (str(os.listdir(path)) if os.path.isdir(path)
                                 else open(path).read(80))
    except OSError as error:
        seen[path] = f"denied: {{type(error).__name__}}"
for path in {writes!r}:
    try:
        open(path, "w").write("x")
        seen["write " + path] = "written"
    except OSError as error:
        seen["write " + path] = f"denied: {{type(error).__name__}}"
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 53), ("pypi.org", 443)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        seen[f"net {{host}}"] = "connected"
    except OSError as error:
        seen[f"net {{host}}"] = f"denied: {{type(error).__name__}}"
try:
    block = bytearray(12 << 30)
    seen["12 GiB"] = "allocated"
except MemoryError:
    seen["12 GiB"] = "denied: MemoryError"
print("PROBE" + json.dumps(seen))
'''

TAMPER_FILES = '''
import os
for top in ("/home", "/tmp", "/root", "/work"):
    for folder, _, files in os.walk(top):
        for name in files:
            if name.endswith(".py") and os.path.basename(folder) == "tests":
                try:
                    with open(os.path.join(folder, name), "a") as handle:
                        handle.write("\\ndef test_1(env):\\n    pass\\n")
                except OSError:
                    pass
'''


@pytest.fixture(scope="module")
def graded_class(assignment, tmp_path_factory):
    """A class of 15 submissions, graded in one batch, two at a time."""
    folder = tmp_path_factory.mktemp("class")
    out = tmp_path_factory.mktemp("grades") / "run"
    server = LoopbackServer()
    shutil.copy(assignment / "autograder" / "exercises.ipynb", folder / "master.ipynb")
    (folder / "alice").mkdir()
    shutil.copy(assignment / "autograder" / "exercises.ipynb", folder / "alice" /
                "exercises.ipynb")  # one folder per student, as an LMS download
    fill(assignment, {}, folder / "untouched.ipynb")
    fill(assignment, {"ex-anti-pgd-correlation": solution_of("ex-anti-pgd-correlation")},
         folder / "one_right.ipynb")
    fill(assignment, {"ex-curved-valley": (
        "import math\n"
        "def trace_on_curve(y):\n    return 1 + math.cos(float(y)) ** 2  # scalars only\n\n"
        "answer_4 = {'y_star': math.pi / 2, 'direction': 1}\n")},
        folder / "special_case.ipynb")
    fill(assignment, {"ex-hutchinson": (
        "from repro.metrics import hutchinson_trace\n"
        "def hutchinson(loss_fn, w, n_probes, generator):\n"
        "    return float(hutchinson_trace(loss_fn, w, n_probes, generator))\n\n"
        "problem = QuadraticRegression(d=100, n=40, k=5, seed=0)\n"
        "answer_2 = hutchinson(problem.loss, problem.start(0.5)[0], 1000, repro.generator(seed))\n"
    )}, folder / "library_call.ipynb")
    fill(assignment, {}, folder / "tamper_files.ipynb", first=TAMPER_FILES)
    master_answers = {q.name: solution_of(q.name) for q in questions()}
    fill(assignment, master_answers, folder / "tamper_isclose.ipynb",
         first="import math\nmath.isclose = lambda *args, **kwargs: True")
    fill(assignment, {}, folder / "tamper_transformer.ipynb",
         first="get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])")
    fill(assignment, {}, folder / "loop.ipynb", first="while True:\n    pass")
    fill(assignment, {}, folder / "dies.ipynb",
         first="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    probe = PROBE.format(paths=["/etc/passwd", "/root", str(folder), str(folder / "alice"),
                                str(ROOT / "chapters"), str(ROOT / "data")],
                         writes=[str(Path(os.sys.prefix) / "probe.txt"), "/usr/probe.txt"],
                         port=server.port)
    fill(assignment, {}, folder / "probe.ipynb", first=probe)
    (folder / "corrupt.ipynb").write_text('{"cells": [ not json')
    (folder / "answers.pdf").write_bytes(b"%PDF-1.4 not a notebook")
    other = nbformat.v4.new_notebook(metadata={"repro": {"chapter": OTHER}})
    nbformat.write(other, folder / "other_chapter.ipynb")
    started = time.monotonic()
    done = run_repro("grade", SLUG, str(folder), "--autograder",
                     str(assignment / "autograder" / "autograder.zip"), "--out", str(out),
                     "--jobs", "2", "--timeout", str(TIMEOUT), "-v")
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    return {"rows": rows, "out": out, "stdout": done.stdout, "server": server,
            "seconds": seconds, "folder": folder}


def scores(row) -> list[float]:
    return [float(row[q.name]) for q in questions()]


def test_every_submission_has_a_row_and_the_batch_finished(graded_class):
    rows = graded_class["rows"]
    assert sorted(rows) == sorted([
        "master", "alice", "untouched", "one_right", "special_case", "library_call",
        "tamper_files", "tamper_isclose", "tamper_transformer", "loop", "dies", "probe",
        "corrupt", "answers", "other_chapter"])
    assert "15 submission(s)" in graded_class["stdout"]


def test_honest_submissions_get_exactly_their_points(graded_class):
    rows = graded_class["rows"]
    for name in ("master", "alice"):
        assert rows[name]["status"] == "graded" and scores(rows[name]) == [1, 2, 2, 2], rows[name]
        assert rows[name]["total"] == rows[name]["possible"] == "7"
    assert rows["untouched"]["status"] == "graded" and scores(rows["untouched"]) == [0, 0, 0, 0]
    assert scores(rows["one_right"]) == [1, 0, 0, 0] and rows["one_right"]["total"] == "1"


def test_hidden_tests_catch_what_the_public_tests_let_through(graded_class):
    rows = graded_class["rows"]
    # scalar-only trace formula: the public test passes (1 point), the hidden one on a tensor
    # of fresh points does not
    assert scores(rows["special_case"]) == [0, 0, 0, 1], rows["special_case"]
    # an estimator that only wraps the library's: disabled in the hidden test
    details = json.loads((graded_class["out"] / "details" / "library_call.json").read_text())
    hidden = [t for t in details["tests"] if t["question"] == "ex-hutchinson" and t["hidden"]]
    assert hidden and not any(t["passed"] for t in hidden)
    assert any("disabled" in t["message"] for t in hidden), hidden
    assert float(rows["library_call"]["ex-hutchinson"]) < 2


@pytest.mark.parametrize("name, flag", [
    ("tamper_files", "altered the test files"),
    ("tamper_isclose", "math.isclose"),
    ("tamper_transformer", "did not answer"),
])
def test_tampering_is_flagged_and_scores_zero(graded_class, name, flag):
    row = graded_class["rows"][name]
    assert row["status"] == "flagged" and flag in row["flags"], row
    assert row["total"] == "0" and scores(row) == [0, 0, 0, 0]


def test_a_hanging_or_dying_submission_becomes_a_row(graded_class):
    rows = graded_class["rows"]
    assert rows["loop"]["status"] == "timeout" and f"{TIMEOUT} s" in rows["loop"]["reason"]
    assert float(rows["loop"]["seconds"]) < TIMEOUT + 30
    assert rows["dies"]["status"] == "kernel died" and "cell" in rows["dies"]["reason"]
    assert rows["loop"]["total"] == rows["dies"]["total"] == "0"


@pytest.mark.parametrize("name, reason", [
    ("corrupt", "not a readable notebook"),
    ("answers", "not a notebook (.ipynb)"),
    ("other_chapter", f"a notebook of chapter '{OTHER}'"),
])
def test_bad_files_become_refused_rows(graded_class, name, reason):
    row = graded_class["rows"][name]
    assert row["status"] == "refused" and reason in row["reason"], row


def test_the_sandbox_denies_files_network_and_memory(graded_class):
    executed = nbformat.read(graded_class["out"] / "executed" / "probe.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                   for o in c.outputs)
    seen = json.loads(text.split("PROBE", 1)[1].splitlines()[0])
    assert len(seen) == 12, seen
    # the folders above the read-only Python environment exist, holding only its path
    environment = {part for folder in python_paths() for part in folder.parts}
    for what, outcome in seen.items():
        if outcome.startswith("read: ["):
            listed = set(ast.literal_eval(outcome[len("read: "):]))
            assert listed <= environment, (what, outcome)
        else:
            assert outcome.startswith("denied"), (what, outcome)
    assert graded_class["server"].connections == 0


def test_feedback_has_public_messages_only(graded_class):
    out = graded_class["out"]
    feedback = (out / "feedback" / "special_case.md").read_text()
    assert "ex-curved-valley: 1 of 2" in feedback and "hidden tests: 0 of 1 passed" in feedback
    hidden_sources = [c.source for q in questions() for c in q.tests
                      if "hidden-test" in c.metadata.get("tags", [])]
    details = json.loads((out / "details" / "special_case.json").read_text())
    hidden_messages = [t["message"] for t in details["tests"] if t["hidden"] and t["message"]]
    assert hidden_messages  # the teacher's details keep them
    public = {t["message"] for path in (out / "details").iterdir()
              for t in json.loads(path.read_text())["tests"] if not t["hidden"]}
    hidden_messages = [m for m in hidden_messages if m not in public]  # e.g. an error both raise
    assert hidden_messages
    for path in [*(out / "feedback").iterdir()]:
        text = path.read_text()
        for message in hidden_messages:
            assert message not in text, path
        for source in hidden_sources:
            for line in source.splitlines():
                if len(line.strip()) > 30:
                    assert line.strip() not in text, (path, line)
    for message in hidden_messages:  # -v prints public tests' messages, never hidden ones
        assert message not in graded_class["stdout"]


def test_the_csv_is_ready_for_a_gradebook(graded_class):
    header = (graded_class["out"] / "grades.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["student", "submission", "status", "reason", "flags"]
    assert header[5:9] == [q.name for q in questions()]
    assert header[9:] == ["total", "possible", "seconds"]


def test_an_interrupt_keeps_the_grades_and_leaves_nothing_behind(assignment, tmp_path):
    folder = tmp_path / "class"
    shutil.copy(assignment / "autograder" / "exercises.ipynb", folder.mkdir() or
                folder / "a_master.ipynb")
    for name in ("b_loop", "c_loop", "d_loop"):
        fill(assignment, {}, folder / f"{name}.ipynb", first="while True:\n    pass")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "grades"
    process = subprocess.Popen(
        [REPRO, "grade", SLUG, str(folder), "--autograder",
         str(assignment / "autograder" / "autograder.zip"), "--out", str(out), "--jobs", "2",
         "--timeout", "600"], cwd=ROOT, env=dict(os.environ, TMPDIR=str(scratch)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv_path = out / "grades.csv"
    for _ in range(240):  # wait until the solutions are graded (the loops never finish)
        if csv_path.exists() and "a_master" in csv_path.read_text():
            break
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    rows = {r["student"]: r for r in csv.DictReader(csv_path.open())}
    assert rows["a_master"]["status"] == "graded" and rows["a_master"]["total"] == "7", rows
    assert {rows[n]["status"] for n in ("b_loop", "c_loop", "d_loop")} == {"not graded"}
    time.sleep(1)
    assert list(scratch.iterdir()) == [], list(scratch.iterdir())  # no tests left in /tmp


def test_grades_never_overwrite_a_folder(assignment, tmp_path):
    out = tmp_path / "grades"
    out.mkdir()
    (out / "mine.txt").write_text("the teacher's")
    done = run_repro("grade", SLUG, str(assignment / "student" / "exercises.ipynb"),
                     "--autograder", str(assignment / "autograder" / "autograder.zip"),
                     "--out", str(out))
    assert done.returncode == 2 and "not empty" in done.stderr
    assert (out / "mine.txt").read_text() == "the teacher's"


def test_read_autograder_and_student_ids(assignment):
    grader = read_autograder(assignment / "autograder" / "autograder.zip",
                             [q.name for q in questions()])
    assert [q for q, _ in grader.questions] == [q.name for q in questions()]
    assert grader.assignment == SLUG
    for q in questions():
        cases = grader.of(q.name)
        assert len(cases) == len(q.tests) and sum(c.hidden for c in cases) == q.hidden
        assert abs(sum(c.points for c in cases) - float(q.config["points"])) < 1e-9
    assert student_id(Path("class/alice/exercises.ipynb")) == "alice"
    assert student_id(Path("class/Bob Smith_123_exercises.ipynb")) == "Bob_Smith_123_exercises"


def test_without_a_sandbox_grading_is_refused_unless_asked(assignment, tmp_path, monkeypatch):
    import repro.machinery.grading as grading
    from repro.machinery.chapters import BadInput

    chapter = find_chapter(SLUG, ROOT)
    zip_path = assignment / "autograder" / "autograder.zip"
    monkeypatch.setattr(grading, "bubblewrap", lambda: None)
    with pytest.raises(BadInput, match="--no-sandbox only if you trust every submission"):
        grading.grade_batch(chapter, [assignment / "autograder" / "exercises.ipynb"], zip_path,
                            tmp_path / "refused")
    assert not (tmp_path / "refused").exists()  # nothing written
    monkeypatch.undo()
    done = run_repro("grade", SLUG, str(assignment / "autograder" / "exercises.ipynb"),
                     "--autograder", str(zip_path), "--out", str(tmp_path / "open"),
                     "--no-sandbox")
    assert done.returncode == 0 and "runs as you" in done.stderr, done.stderr
    row = next(csv.DictReader((tmp_path / "open" / "grades.csv").open()))
    assert row["status"] == "graded" and row["total"] == "7"
