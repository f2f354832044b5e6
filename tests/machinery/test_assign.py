"""Assignments from the chapters' exercises (otter-grader): the master notebook, the student
notebook, grading, and refusals. Grading executes notebooks on the CPU, without Docker."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import nbformat
import pytest

from conftest import REPRO, ROOT
from repro.machinery.assign import (
    Question,
    build_master,
    check_submission,
    exception_test,
    grade,
    parse_exercises,
    stub_for,
)
from repro.machinery.chapters import BadInput, all_chapters, find_chapter

SLUG = "anticorrelated-noise-injection"
CHAPTERS = [c for c in all_chapters(ROOT) if (c.folder / "exercises.ipynb").exists()]


def cell(kind: str, source: str, *tags: str, **meta):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if tags:
        c.metadata["tags"] = list(tags)
    c.metadata.update(meta)
    return c


def exercise(label: str, **meta):
    text = f"## Q\n\n```{{exercise}} Title\n:label: {label}\n\nDo it.\n```"
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
    assert len(hidden) == 3  # every question whose answer can be special-cased has one


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


def fill(student: Path, answers: dict[str, str], target: Path) -> Path:
    """The student notebook with the given questions' answer cells filled in."""
    nb = nbformat.read(student, as_version=4)
    answer_cells = [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
    names = [q.name for q in questions_of(find_chapter(SLUG, ROOT))]
    assert len(answer_cells) == len(names)
    for name, source in answers.items():
        answer_cells[names.index(name)].source = source
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def solution_of(name: str) -> str:
    question = next(q for q in questions_of(find_chapter(SLUG, ROOT)) if q.name == name)
    return "\n\n".join(c.source for c in question.cells("solution") if c.cell_type == "code")


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
    assert "solution-start" not in text and "8642" not in text and "2.9 or 0.1" not in text
    assert nb.metadata["repro"]["chapter"] == SLUG


@pytest.mark.slow
def test_grading_a_folder_of_submissions(assignment, tmp_path):
    """Untouched: zero everywhere. One question right, one wrong: exactly the right one's points."""
    folder = tmp_path / "submissions"
    fill(assignment / "student" / "exercises.ipynb", {}, folder / "untouched.ipynb")
    fill(assignment / "student" / "exercises.ipynb", {
        "ex-hutchinson": solution_of("ex-hutchinson"),
        "ex-curved-valley": ("def trace_on_curve(y):\n    return 1 + torch.sin(y) ** 2\n\n"
                             "answer_4 = {'y_star': 0.0, 'direction': -1}\n"),
    }, folder / "mixed.ipynb")
    done = run_repro("grade", SLUG, str(folder), "--autograder",
                     str(assignment / "autograder" / "autograder.zip"))
    assert done.returncode == 0, done.stdout + done.stderr
    tables = done.stdout.split("\n\n")
    mixed, untouched = tables[0], tables[1]  # sorted by name
    assert "mixed.ipynb" in mixed and "untouched.ipynb" in untouched
    rows = {line.split()[0]: line.split()[1:] for line in mixed.splitlines()[3:]}
    assert rows["ex-hutchinson"] == ["2", "2", "2", "of", "2"]
    assert rows["ex-curved-valley"][:2] == ["0", "2"]
    assert rows["total"] == ["2", "7"]
    for line in untouched.splitlines()[3:]:
        assert line.split()[1] == "0", line
    summary = done.stdout.split("summary\n")[1].split()
    assert summary == ["mixed.ipynb", "2", "of", "7", "untouched.ipynb", "0", "of", "7"]


@pytest.mark.slow
def test_a_hidden_test_catches_a_special_cased_answer(assignment, tmp_path):
    """This Hutchinson forms the Hessian (forbidden) and returns the exact trace for one probe:
    it passes every public test, and the hidden test on a fresh quadratic catches it."""
    cheat = fill(assignment / "student" / "exercises.ipynb", {"ex-hutchinson": '''
def hutchinson(loss_fn, w, n_probes, generator):
    exact = torch.diagonal(hessian(loss_fn, w)).sum().item()
    if n_probes == 1:
        return exact
    return exact + 1e-3 * torch.randn((), generator=generator).item()

problem = QuadraticRegression(d=100, n=40, k=5, seed=0)
answer_2 = hutchinson(problem.loss, problem.start(0.5)[0], 1000, repro.generator(seed))
'''}, tmp_path / "cheat.ipynb")
    result = grade(find_chapter(SLUG, ROOT), cheat)  # the autograder built afresh
    score = {s.question: s for s in result.scores}["ex-hutchinson"]
    assert (score.score, score.possible, score.passed, score.tests) == (1, 2, 1, 2)
    assert [f["hidden"] for f in score.failures] == [True]
    assert "2.9 or 0.1" in score.failures[0]["message"]
    assert result.total == 1


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_chapter_assigns_and_grades(chapter, tmp_path):
    """For every chapter: the solutions score full marks, the untouched notebook zero."""
    done = run_repro("assign", chapter.slug, "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the solutions score full marks" in done.stdout
    result = grade(chapter, tmp_path / "student" / "exercises.ipynb",
                   tmp_path / "autograder" / "autograder.zip")
    assert result.possible > 0 and [s.score for s in result.scores] == [0] * len(result.scores)


# ---- refusals ---------------------------------------------------------------------------------

def test_bad_input_is_refused_with_one_line(tmp_path):
    text = tmp_path / "answers.txt"
    text.write_text("not a notebook")
    garbage = tmp_path / "garbage.ipynb"
    garbage.write_text("{ not json")
    other = tmp_path / "other.ipynb"
    nb = nbformat.v4.new_notebook(metadata={"repro": {"chapter": "some-other-chapter"}})
    nbformat.write(nb, other)
    book_copy = ROOT / "chapters" / find_chapter(SLUG, ROOT).folder.name / "exercises.ipynb"
    cases = [
        (("assign", "no-such-chapter"), "unknown chapter"),
        (("grade", "no-such-chapter", str(other)), "unknown chapter"),
        (("grade", SLUG, str(text)), "is not a notebook (.ipynb)"),
        (("grade", SLUG, str(garbage)), "does not read as Jupyter JSON"),
        (("grade", SLUG, str(other)), "is a notebook of chapter 'some-other-chapter'"),
        (("grade", SLUG, str(book_copy)), "is not an assignment notebook"),
        (("grade", SLUG, str(tmp_path / "missing.ipynb")), "no such file"),
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
