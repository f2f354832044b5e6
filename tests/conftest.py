"""Shared fixtures: a miniature book (one tiny chapter) for testing the runner and the builder
without the cost of the real chapters."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
REPRO = str(Path(sys.executable).with_name("repro"))

MINI_CLAIMS = """\
paper: {title: A miniature paper, authors: [Nobody], venue: Test 2026, arxiv: "0000.00000",
        bibkey: orvieto2022anticorrelated, short: Mini}
claims:
  - id: ordered
    where: "Fig. 1"
    statement: a is below b.
    paper: "a < b"
    metric: run.score
    check: {ordering: [a, b]}
    presets: [quick, paper]
  - id: bounded
    statement: x stays under twice the limit.
    paper: "x <= 2 limit"
    metric: run.x
    check: {bound: "<= 2*run.limit"}
    presets: [quick]
  - id: big-only
    statement: only testable at paper scale.
    metric: run.big
    check: {value: 1.0, rel_tol: 0.1}
    presets: [paper]
"""

MINI_PARAMETERS = """\
preset: str = "quick"  # preset name, set by the runner
metrics_path: str = ""  # where the runner wants metrics.json
steps: int = 3  # number of steps; [1, inf)
lr: float = 0.1  # step size; (0, inf)
sigma: float = 0.0  # noise level; [0, inf)
flip: bool = False  # swap a and b, which makes the ordering claim fail
"""

MINI_BODY = """\
import repro
loss = 1.0
for step in range(steps):
    loss = loss * (1 + lr) ** 10
    repro.check_finite(loss if loss < 1e30 else float("nan"), "loss", step)
a, b = (2.0, 1.0) if flip else (1.0, 2.0)
metrics = {"run": {"score": {"a": [a, a + 0.1], "b": b}, "x": [0.5, 0.7], "limit": 1.0,
                   "sigma": sigma}}
"""

MINI_END = """\
from repro.machinery import finish

finish(metrics, metrics_path, preset)
"""


def _notebook(cells: list[tuple[str, str, list[str]]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = (nbformat.v4.new_code_cell(source) if kind == "code"
                else nbformat.v4.new_markdown_cell(source))
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture
def mini_book(tmp_path, monkeypatch) -> Path:
    """A book root with one chapter, ``mini-chapter``, whose experiments take a second."""
    root = tmp_path / "book"
    chapter = root / "chapters" / "01-mini-chapter"
    chapter.mkdir(parents=True)
    (chapter / "claims.yaml").write_text(MINI_CLAIMS)
    (chapter / "presets.yaml").write_text("quick: {}\npaper: {steps: 5}\n")
    (chapter / "index.md").write_text("# Mini chapter\n\n```{claims-table}\n```\n")
    nbformat.write(_notebook([("markdown", "# Experiments", []),
                              ("code", MINI_PARAMETERS, ["parameters"]),
                              ("code", MINI_BODY, []), ("code", MINI_END, [])]),
                   chapter / "experiments.ipynb")
    (root / "_toc.yml").write_text("format: jb-book\nroot: chapters/01-mini-chapter/index\n")
    shutil.copytree(ROOT / "data", root / "data", ignore=shutil.ignore_patterns("cache"))
    monkeypatch.setenv("REPRO_ROOT", str(root))
    return root


def git(root, *args):
    """git in ``root`` with a fixed identity (the tests' machines may have none)."""
    import os
    import subprocess

    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture
def committed_book(mini_book):
    """``mini_book`` as a git repository with one commit (runs/ ignored): records and cluster
    workers compare commits."""
    (mini_book / ".gitignore").write_text("runs/\n")
    git(mini_book, "init", "-q")
    git(mini_book, "add", "-A")
    git(mini_book, "commit", "-qm", "mini book")
    return mini_book


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: thousands of tiny steps (small batches, small graphs) on
    two shared cores run many times slower when threads contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def book_build():
    """`repro book --controls` at the quick preset, once per session: every notebook executed,
    every control run (test_book and test_browser read the same build)."""
    import subprocess

    done = subprocess.run([REPRO, "book", "--preset", "quick", "--controls"], cwd=ROOT,
                          capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


@pytest.fixture(scope="session")
def book_html(book_build) -> Path:
    return ROOT / "_build" / "site-quick" / "_build" / "html"
