"""The repository's own rules: clean notebooks, every chapter complete and in the table of
contents, parameters readable by papermill, the catalog whole."""

from __future__ import annotations

import re
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


def test_every_figure_is_numbered_with_a_caption_and_alt_text():
    """Every figure of a chapter's derivation and experiments page reaches the page as a numbered
    figure with a caption and alt text: the notebook sets the book's style at its top
    (``repro.plot.book_style``), hands each figure it makes to ``glue_figure("fig-...", fig)``
    (nothing left for ``plt.show`` or the inline backend, which would show it unnumbered), and a
    later markdown cell shows it with a ```{glue:figure}``` directive whose ``:name:`` is the key
    (unique in the book, so references and numbers work), with an ``:alt:`` text that describes
    the figure in words and a caption."""
    directive = re.compile(r"^```\{glue:figure\}[ \t]+(\S+)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
    made = re.compile(r"\b(?:plt\.subplots|plt\.figure|panels)\(")
    problems, names = [], {}
    for chapter in CHAPTERS:
        for path in (chapter.folder / "derivation.ipynb", chapter.folder / "experiments.ipynb"):
            where = path.relative_to(ROOT)
            cells = nbformat.read(path, as_version=4).cells
            code = [(i, c.source) for i, c in enumerate(cells) if c.cell_type == "code"
                    and "parameters" not in c.get("metadata", {}).get("tags", [])]
            if not code or "book_style()" not in code[0][1]:
                problems.append(f"{where}: its first code cell does not call book_style()")
            glued = {}
            for i, source in code:
                if "plt.show(" in source:
                    problems.append(f"{where}, cell {i}: plt.show() (glue the figure instead)")
                keys = re.findall(r'\bglue_figure\(\s*"([^"]+)"', source)
                if len(made.findall(source)) > len(keys):
                    problems.append(f"{where}, cell {i}: makes a figure it does not glue")
                for key in keys:
                    glued.setdefault(key, i)
            shown = {}
            for i, cell in enumerate(cells):
                if cell.cell_type != "markdown":
                    continue
                for match in directive.finditer(cell.source):
                    key, body = match.groups()
                    shown[key] = i
                    options = dict(re.findall(r"^:(\w+):[ \t]*(.*)$", body, re.M))
                    caption = " ".join(line for line in body.splitlines()
                                       if not line.startswith(":")).split()
                    alt = options.get("alt", "")
                    if options.get("name") != key or not key.startswith("fig-"):
                        problems.append(f"{where}: figure {key} needs ':name: {key}' (fig-...)")
                    if len(alt.split()) < 12 or re.search(r"\.(png|svg|jpe?g)\b", alt):
                        problems.append(f"{where}: figure {key}: the alt text must say in words "
                                        f"what the figure shows, not {alt!r}")
                    if len(caption) < 15:
                        problems.append(f"{where}: figure {key} has no caption that says what it "
                                        "shows and what to see in it")
                    if key in names:
                        problems.append(f"{where}: figure name {key} is used in {names[key]} too")
                    names[key] = where
            for key in sorted(set(glued) - set(shown)):
                problems.append(f"{where}: figure {key} is glued but no glue:figure shows it")
            for key in sorted(set(shown) - set(glued)):
                problems.append(f"{where}: glue:figure {key} shows a figure nothing glues")
            for key in sorted(set(glued) & set(shown)):
                if shown[key] < glued[key]:
                    problems.append(f"{where}: figure {key} is shown before the cell that makes it")
    assert not problems, "\n".join(problems)
    assert len(names) >= 20, f"only {len(names)} captioned figures found: is the test looking?"
