"""Assignments from the chapters' exercises (otter-grader): the master notebook, the student
notebook, grading, and refusals. Grading executes notebooks on the CPU, without Docker."""

from __future__ import annotations

import ast
import csv
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from conftest import REPRO, ROOT
from repro.machinery.assign import (
    Question,
    build_master,
    exception_test,
    parse_exercises,
    stub_for,
)
from repro.machinery.chapters import BadInput, all_chapters, find_chapter
from repro.machinery.grading import check_submission

SLUG = "anticorrelated-noise-injection"
CHAPTERS = [c for c in all_chapters(ROOT) if (c.folder / "exercises.ipynb").exists()]


def cell(kind: str, source: str, *tags: str, **meta):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if tags:
        c.metadata["tags"] = list(tags)
    c.metadata.update(meta)
    return c


def exercise(label: str, task: str = "Define `f`, `ans` and `b`.", **meta):
    text = f"## Q\n\n```{{exercise}} Title\n:label: {label}\n\n{task}\n```"
    return cell("markdown", text, **meta)


def mini(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


# ---- the format ------------------------------------------------------------------------------

def test_questions_are_read_from_exercise_cells_and_tags():
    nb = mini(cell("markdown", "# Intro"), cell("code", "import math"),
              exercise("ex-a"),
              cell("markdown", "```{solution-start} ex-a\n```", "solution"),
              cell("code",
                   "def f(x):\n    '''Double.'''\n    return 2 * x\nhelper = 3\nans = f(helper)",
                   "solution"),
              cell("markdown", "```{solution-end}\n```", "solution"),
              cell("code", "assert ans == 6\nassert f(1) == 2", "test"),
              cell("code", "assert f(5) == 10", "hidden-test", "remove-cell"),
              cell("markdown", "Between the exercises."),
              exercise("ex-b", otter={"points": 3, "name": "second"}),
              cell("code", "given = 2"),
              cell("code", "b = given + 1", "solution"),
              cell("code", "assert b == 3", "test"))
    items, questions = parse_exercises(nb)
    assert [q.name for q in questions] == ["ex-a", "second"]
    assert [q.config["points"] for q in questions] == [1, 3]  # 1 unless the metadata says
    assert [len(q.tests) for q in questions] == [2, 1] and [q.hidden for q in questions] == [1, 0]
    assert len(questions[1].prompt) == 2  # the given code belongs to the question's prompt
    assert [type(i).__name__ for i in items] == ["NotebookNode", "NotebookNode", "Question",
                                                 "NotebookNode", "Question"]
    stub = stub_for(questions[0])
    # only what the tests read from the solution, as ...; the helper stays the student's business
    assert "def f(x):" in stub and "Double." in stub and "ans = ..." in stub
    assert "helper" not in stub and "2 * x" not in stub
    assert stub_for(questions[1]).splitlines()[1:] == ["b = ..."]


@pytest.mark.parametrize("nb, message", [
    (mini(cell("code", "assert True", "test")), "not inside an exercise"),
    (mini(exercise("ex-a"), cell("code", "x = 1", "solution")), "has no cell tagged 'test'"),
    (mini(exercise("ex-a"), cell("code", "x = 1", "solution"), cell("markdown", "t", "test")),
     "not a code cell"),
    (mini(exercise("ex-a"), cell("code", "assert 1", "test"), exercise("ex-a"),
          cell("code", "assert 1", "test")), "two exercises are named 'ex-a'"),
    (mini(cell("markdown", "```{exercise}\nno label\n```"), cell("code", "assert 1", "test")),
     "needs a :label:"),
])
def test_malformed_exercises_are_refused(nb, message):
    with pytest.raises(BadInput, match=message):
        parse_exercises(nb)


def test_a_name_the_tests_need_must_be_named_in_the_statement():
    nb = mini(exercise("ex-a", task="Compute the answer."),
              cell("code", "secret = 3", "solution"),
              cell("code", "assert secret == 3", "test"))
    question = parse_exercises(nb)[1][0]
    with pytest.raises(BadInput, match="read secret from the solution, but the exercise never"):
        stub_for(question)


def test_a_test_cell_becomes_a_function_with_notebook_semantics():
    """Assigned names are global (as in the notebook), read names come from the notebook."""
    code = "y = x + 1\nfor i in range(2):\n    last = i\nassert y == 3"
    source = exception_test(cell("code", code), 7)
    tree = ast.parse(source)
    assert isinstance(tree.body[0], ast.FunctionDef) and tree.body[0].name == "test_7"
    assert len(tree.body) == 2  # otter's format: the function and its call
    namespace: dict = {"x": 2}
    exec(compile(source.replace("test_7(globals())", ""), "t", "exec"), namespace)
    env = {"x": 2}
    namespace["test_7"](env)
    assert namespace["y"] == 3 and namespace["last"] == 1 and "y" not in env  # no leak
    with pytest.raises(AssertionError):
        namespace["test_7"]({"x": 5})


def test_the_master_notebook_has_otters_markers():
    master = build_master(find_chapter(SLUG, ROOT))
    raw = [c.source.splitlines()[0] for c in master.cells if c.cell_type == "raw"]
    assert raw[0] == "# ASSIGNMENT CONFIG"
    assert raw.count("# BEGIN QUESTION") == raw.count("# END QUESTION") == 4
    assert raw.count("# BEGIN TESTS") == 4 and raw.count("# BEGIN SOLUTION") == 4
    assert master.metadata["repro"]["chapter"] == SLUG
    hidden = [c for c in master.cells if c.cell_type == "code" and "hidden: true" in c.source]
    assert len(hidden) == 4  # every question has one


# ---- end to end, as a teacher uses it ---------------------------------------------------------

def run_repro(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REPRO, *args], cwd=ROOT, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def assignment(tmp_path_factory) -> Path:
    """`repro assign` for the Anti-PGD chapter; it grades the solutions, which must score 7 of 7."""
    out = tmp_path_factory.mktemp("assignment")
    done = run_repro("assign", SLUG, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the solutions score full marks (7 points)" in done.stdout
    return out


def questions_of(chapter) -> list[Question]:
    return parse_exercises(nbformat.read(chapter.folder / "exercises.ipynb", as_version=4))[1]


@pytest.mark.slow
def test_the_student_notebook_has_no_solutions_and_no_hidden_tests(assignment):
    nb = nbformat.read(assignment / "student" / "exercises.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells) + str(nb.metadata)  # public tests live there
    for q in questions_of(find_chapter(SLUG, ROOT)):
        public = "\n".join(t.source for t in q.tests if "test" in t.metadata["tags"])
        for c in q.cells("solution") + [t for t in q.tests if "hidden-test" in t.metadata["tags"]]:
            for line in c.source.splitlines():
                line = line.strip()
                if (len(line) > 25 and not line.startswith(("def ", '"""', "```"))
                        and line not in public):
                    assert line not in text, f"{q.name}: {line!r} reached the student"
        assert f'grader.check("{q.name}")' in text
    assert "solution-start" not in text and "8642" not in text
    assert nb.metadata["repro"]["chapter"] == SLUG


@pytest.mark.slow
def test_the_handout_reads_well_in_plain_jupyter(assignment):
    """No MyST left, an intro for students first, no runner cells, an export cell last, and a
    starting cell that defines exactly the names each exercise asks for."""
    nb = nbformat.read(assignment / "student" / "exercises.ipynb", as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert markdown[0].startswith("# Exercises: ") and "Keep the file name" in markdown[0]
    assert nb.cells[0].cell_type == "markdown"
    for text in markdown:
        for myst in ("```{", ":::{", "{cite}", ":label:", "{ref}", "{solution"):
            assert myst not in text, (myst, text[:200])
    headings = [line for text in markdown for line in text.splitlines()
                if line.startswith("### Exercise")]
    assert [h.split(":")[0] for h in headings] == [f"### Exercise {i}" for i in range(1, 5)]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not any("parameters" in c.metadata.get("tags", []) for c in code)
    assert not any("preset" in c.source and "str" in c.source for c in code)
    assert "grader.export(" in code[-1].source
    answers = [c.source for c in code if "otter_answer_cell" in c.metadata.get("tags", [])]
    statements = [t for t in markdown if "### Exercise" in t]
    for answer, statement in zip(answers, statements, strict=True):
        for line in answer.splitlines()[1:]:
            name = line.split("(")[0].split(" = ")[0].replace("def ", "").strip()
            if name and not line.startswith((" ", "#")) and "..." not in name:
                assert f"`{name}" in statement, (name, statement[:300])


@pytest.mark.slow
def test_the_student_environment_holds_no_solutions(assignment):
    """What a student installs: the library's wheel (no chapters, no tests, no solutions)."""
    import zipfile

    student = assignment / "student"
    wheels = list(student.glob("repro_book-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert all(n.startswith(("repro/", "repro_book-")) for n in names), names
    assert "repro/machinery/testing.py" in names  # the hidden tests import it
    requirements = (student / "requirements.txt").read_text().split()
    assert f"./{wheels[0].name}" in requirements and any(r.startswith("torch==")
                                                         for r in requirements)
    readme = (student / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme
    autograder_env = zipfile.ZipFile(assignment / "autograder" / "autograder.zip")
    env = autograder_env.read("environment.yml").decode()
    assert "torch==" in env and f"./files/{wheels[0].name}" in env
    assert f"files/{wheels[0].name}" in autograder_env.namelist()


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_chapter_assigns_and_grades(chapter, tmp_path):
    """For every chapter: the solutions score full marks, the untouched handout zero."""
    done = run_repro("assign", chapter.slug, "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the solutions score full marks" in done.stdout
    done = run_repro("grade", chapter.slug, str(tmp_path / "a" / "student" / "exercises.ipynb"),
                     "--autograder", str(tmp_path / "a" / "autograder" / "autograder.zip"),
                     "--out", str(tmp_path / "g"))
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(csv.DictReader((tmp_path / "g" / "grades.csv").open()))
    assert row["status"] == "graded" and row["total"] == "0" and float(row["possible"]) > 0


def test_implementation_and_experiment_exercises_have_hidden_tests():
    for chapter in CHAPTERS:
        for q in questions_of(chapter):
            heading = q.prompt[0].source.splitlines()[0]
            if any(kind in heading for kind in ("Implementation", "Experiment")):
                assert q.hidden >= 1, f"{chapter.slug}: {q.name} needs a hidden test"


# ---- no data loss -------------------------------------------------------------------------------

@pytest.mark.slow
def test_assign_replaces_only_its_own_files(assignment, tmp_path):
    out = tmp_path / "handout"
    shutil.copytree(assignment, out)
    (out / "student" / "extra-notes.md").write_text("the teacher's notes")
    (out / "autograder" / "exercises.ipynb").unlink()  # one of ours, gone: no error
    done = run_repro("assign", SLUG, "--out", str(out), "--no-check")
    assert done.returncode == 0, done.stderr
    assert (out / "student" / "extra-notes.md").read_text() == "the teacher's notes"
    assert (out / "autograder" / "exercises.ipynb").exists()


def test_assign_refuses_a_folder_it_did_not_make(tmp_path):
    out = tmp_path / "mine"
    (out / "student").mkdir(parents=True)
    (out / "student" / "draft.ipynb").write_text("{}")
    done = run_repro("assign", SLUG, "--out", str(out), "--no-check")
    assert done.returncode == 2 and "--force" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (out / "student" / "draft.ipynb").read_text() == "{}"
    assert sorted(p.name for p in out.rglob("*")) == ["draft.ipynb", "student"]


@pytest.mark.slow
def test_assign_with_force_writes_beside_the_teachers_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "syllabus.pdf").write_text("keep me")
    done = run_repro("assign", SLUG, "--out", str(out), "--no-check", "--force")
    assert done.returncode == 0, done.stderr
    assert (out / "syllabus.pdf").read_text() == "keep me"
    assert (out / "student" / "exercises.ipynb").exists()


# ---- refusals ---------------------------------------------------------------------------------

def test_bad_input_is_refused_with_one_line(tmp_path):
    cases = [
        (("assign", "no-such-chapter"), "unknown chapter"),
        (("grade", "no-such-chapter", str(tmp_path)), "unknown chapter"),
        (("grade", SLUG, str(tmp_path / "missing")), "no such file or folder"),
        (("grade", SLUG, str(tmp_path), "--autograder", str(tmp_path / "x.zip")),
         "is not an autograder zip file"),
        (("grade", SLUG, str(tmp_path), "--timeout", "-1"), "--timeout must be a positive"),
        (("grade", SLUG, str(tmp_path), "--docker", "--autograder", "a.zip"), "Docker"),
    ]
    for args, message in cases:
        done = run_repro(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stdout == ""


def test_check_submission_accepts_only_this_chapter(tmp_path):
    chapter = find_chapter(SLUG, ROOT)
    path = tmp_path / "mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(metadata={"repro": {"chapter": SLUG}}), path)
    check_submission(chapter, path)
    nbformat.write(nbformat.v4.new_notebook(metadata={"repro": {"chapter": "x"}}), path)
    with pytest.raises(BadInput, match="not of 'anticorrelated-noise-injection'"):
        check_submission(chapter, path)
    book_copy = chapter.folder / "exercises.ipynb"
    with pytest.raises(BadInput, match="not an assignment notebook"):
        check_submission(chapter, book_copy)
