"""The repository's own rules: clean notebooks, every chapter complete and in the table of
contents, parameters readable by papermill, the catalog whole."""

from __future__ import annotations

import subprocess

import nbformat
import pytest
import yaml
from papermill.inspection import inspect_notebook

from conftest import ROOT
from repro.machinery.chapters import NOTEBOOKS, all_chapters, notebook_parameters
from repro.machinery.claims import ChapterClaims

CHAPTERS = all_chapters(ROOT)


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found"


def committed_notebooks() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    on_disk = [str(p.relative_to(ROOT)) for p in ROOT.glob("chapters/*/*.ipynb")]
    return sorted(set(listed) | set(on_disk))


@pytest.mark.parametrize("path", committed_notebooks())
def test_notebooks_are_committed_without_outputs(path):
    nb = nbformat.read(ROOT / path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_each_chapter_is_complete(chapter):
    for name in ("index.md", "claims.yaml", "presets.yaml", *NOTEBOOKS):
        assert (chapter.folder / name).exists(), f"{chapter.folder.name} lacks {name}"
    assert "```{claims-table}" in (chapter.folder / "index.md").read_text()
    claims = ChapterClaims.load(chapter.claims_path)
    assert claims.claims and claims.paper.get("bibkey")
    assert "paper" in chapter.presets


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_threshold_says_where_it_comes_from(chapter):
    """A claim's threshold is the paper's (and says where) or ours (and says why)."""
    for claim in ChapterClaims.load(chapter.claims_path).claims:
        assert claim.origin.startswith(("paper:", "ours:")), (
            f"{chapter.slug}: claim {claim.id} has no origin 'paper: ...' or 'ours: ...'")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_each_chapter_is_in_the_table_of_contents(chapter):
    toc = (ROOT / "_toc.yml").read_text()
    base = f"chapters/{chapter.folder.name}/"
    for name in ("index", "derivation", "experiments", "exercises"):
        assert f"file: {base}{name}\n" in toc, f"_toc.yml lacks {base}{name}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_papermill_reads_the_same_parameters_as_the_runner(chapter):
    for notebook in chapter.notebooks():
        ours = set(notebook_parameters(notebook))
        theirs = set(inspect_notebook(str(notebook)))
        assert ours == theirs, f"{notebook.name}: papermill reads {theirs}, the runner {ours}"
    assert {"preset", "metrics_path"} <= set(chapter.parameters)


def test_the_catalog_holds_every_paper_once_and_every_chapter_is_in_it():
    catalog = yaml.safe_load((ROOT / "data" / "papers.yaml").read_text())
    ids = [p["id"] for p in catalog["papers"]]
    assert len(ids) == 272 and len(set(ids)) == 272
    assert {p["theme"] for p in catalog["papers"]} <= set(catalog["themes"])
    for chapter in CHAPTERS:
        assert chapter.slug in ids, f"{chapter.slug} is not in data/papers.yaml"
