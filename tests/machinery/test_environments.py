"""The environments `repro assign` hands out work on their own, in fresh virtual environments:

- the autograder zip's (what Gradescope or `otter grade` builds from its environment.yml)
  grades the solutions with full marks through otter's own runner;
- the student's (requirements.txt: the library's wheel, torch, JupyterLab) runs the handout's
  public tests.

Each venv is made from nothing but those files (packages come from PyPI, torch from this
machine's copy), so a missing requirement fails here. A few minutes: marked slow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import REPRO, ROOT

SLUG = "anticorrelated-noise-injection"

pytestmark = pytest.mark.slow


def venv(path: Path, requirements: Path, cwd: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                           str(requirements)], cwd=cwd, capture_output=True, text=True,
                          timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return python


@pytest.fixture(scope="module")
def assignment(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assignment")
    done = subprocess.run([REPRO, "assign", SLUG, "--out", str(out), "--no-check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_autograder_zip_grades_in_its_own_environment(assignment, tmp_path):
    unpacked = tmp_path / "source"
    with zipfile.ZipFile(assignment / "autograder" / "autograder.zip") as archive:
        archive.extractall(unpacked)
    environment = yaml.safe_load((unpacked / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    requirements = unpacked / "requirements-from-environment.txt"
    requirements.write_text("\n".join(pip) + "\n")
    python = venv(tmp_path / "venv", requirements, cwd=unpacked)  # as conda runs pip there
    check = subprocess.run([str(python), "-c", "import repro, torch, otter; "
                            "print(repro.__file__)"], capture_output=True, text=True)
    assert check.returncode == 0 and str(ROOT) not in check.stdout, check.stdout + check.stderr
    for name, notebook, total in (("solutions", assignment / "autograder" / "exercises.ipynb", 7),
                                  ("handout", assignment / "student" / "exercises.ipynb", 0)):
        out = tmp_path / name
        out.mkdir()
        submission = out / "exercises.ipynb"
        shutil.copy(notebook, submission)
        done = subprocess.run([str(python), "-m", "otter", "run", "-a",
                               str(assignment / "autograder" / "autograder.zip"), "-o", str(out),
                               str(submission)], cwd=out, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        results = json.loads((out / "results.json").read_text())
        scores = [t["score"] for t in results["tests"] if "score" in t]
        assert sum(scores) == total, (name, results["tests"])


def test_the_student_environment_runs_the_public_tests(assignment, tmp_path):
    student = assignment / "student"
    python = venv(tmp_path / "venv", student / "requirements.txt", cwd=student)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(assignment / "autograder" / "exercises.ipynb", work / "exercises.ipynb")
    done = subprocess.run([str(python), "-m", "jupyter", "nbconvert", "--to", "notebook",
                           "--execute", "--output", "executed.ipynb", "exercises.ipynb"],
                          cwd=work, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    executed = nbformat.read(work / "executed.ipynb", as_version=4)
    checks = [c for c in executed.cells if c.cell_type == "code" and "grader.check(" in c.source]
    assert len(checks) == 4
    for cell in checks:
        shown = json.dumps(cell.outputs)
        assert "passed" in shown and "failed" not in shown.lower(), shown[:500]
    lab = subprocess.run([str(python), "-m", "jupyter", "lab", "--version"],
                         capture_output=True, text=True)
    assert lab.returncode == 0, lab.stderr
