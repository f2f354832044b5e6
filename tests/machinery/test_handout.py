"""Student handouts: MyST exercise text converted to markdown that plain Jupyter renders, on
small cases of every construct and on every chapter's real exercises."""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import ROOT
from repro.machinery.chapters import all_chapters
from repro.machinery.handout import References, to_markdown

BIB = ROOT / "book" / "references.bib"
REFS = References({"orvieto2022anticorrelated": ("Orvieto et al.", "2022"),
                   "wu2023implicit": ("Wu and Su", "2023")})
CHAPTERS = [c for c in all_chapters(ROOT) if (c.folder / "exercises.ipynb").exists()]


def md(source: str, number: int | None = None) -> str:
    return to_markdown(source, REFS, number)


# ---- references ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def book_refs() -> References:
    return References.from_bib(BIB)


@pytest.mark.parametrize("key, text", [
    ("orvieto2022anticorrelated", "Orvieto et al. (2022)"),  # five authors
    ("hutchinson1989stochastic", "Hutchinson (1989)"),
    ("razin2020implicit", "Razin and Cohen (2020)"),
    ("candes2009exact", "Candès and Recht (2009)"),  # LaTeX accents become text
])
def test_the_books_bibliography_formats_authors_and_year(book_refs, key, text):
    assert book_refs.cite(key) == text


def test_a_bib_file_with_others_editors_and_no_year(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text("@article{a, author = {Wu, Jingfeng and Su, Weijie}, year = {2023}}\n"
                   "@article{b, author = {Doe, Jane and others}, year = {2001}}\n"
                   "@book{c, editor = {Roe, Richard}, year = {1999}}\n"
                   "@misc{d, author = {Poe, Edgar}}\n"
                   "@misc{e, title = {Anonymous}, year = {2000}}\n")
    refs = References.from_bib(bib)
    assert [refs.cite(k) for k in "abcde"] == ["Wu and Su (2023)", "Doe et al. (2001)",
                                               "Roe (1999)", "Poe", "e (2000)"]
    assert refs.cite("a", parenthetical=True) == "Wu and Su, 2023"


def test_an_unknown_citation_key_reads_as_itself():
    assert References().cite("nobody2020") == "nobody2020"
    assert md("As {cite}`nobody2020` and {cite:p}`nobody2020` show.") == \
        "As nobody2020 and (nobody2020) show."


# ---- directives ------------------------------------------------------------------------------

EXERCISE = """\
## 1. Derivation

```{exercise} Gradient flow of $X = W_2 W_1$
:label: ex-flow
:class: hard

Derive $\\dot X$.

1. First.
2. Second.
```"""


def test_an_exercise_becomes_a_numbered_heading_without_its_options():
    assert md(EXERCISE, 3) == ("## 1. Derivation\n\n### Exercise 3: Gradient flow of $X = W_2 W_1$"
                               "\n\nDerive $\\dot X$.\n\n1. First.\n2. Second.")


def test_an_exercise_without_number_or_title():
    assert md(EXERCISE).splitlines()[2] == "### Exercise: Gradient flow of $X = W_2 W_1$"
    assert md(":::{exercise}\nDo it.\n:::") == "### Exercise\n\nDo it."


def test_two_exercises_in_one_cell_count_on():
    text = "```{exercise} A\nx\n```\n\n```{exercise} B\ny\n```"
    assert re.findall(r"### .*", md(text, 1)) == ["### Exercise 1: A", "### Exercise 2: B"]


def test_colon_fences_and_nested_fences():
    text = ("::::{exercise} Outer\n:label: ex-o\n\nBefore.\n\n:::{note}\nInside.\n:::\n\n"
            "After.\n::::")
    assert md(text, 1) == ("### Exercise 1: Outer\n\nBefore.\n\n> **Note**\n>\n> Inside.\n\n"
                           "After.")
    text = ("````{exercise} Outer\n\n```{hint}\nTry $x$.\n```\n\n```python\nx = 1\n```\n"
            "````")
    assert md(text) == ("### Exercise: Outer\n\n> **Hint**\n>\n> Try $x$.\n\n```python\nx = 1\n"
                        "```")


def test_solution_fences_disappear_and_their_text_stays():
    assert md("```{solution-start} ex-a\n:class: dropdown\n```") == ""
    assert md("```{solution-end}\n```") == ""
    assert md("Because.\n\n```{solution-end}\n```") == "Because."
    assert md(":::{solution-start} ex-a\n:::\nText.\n:::{solution-end}\n:::") == "Text."


@pytest.mark.parametrize("source, expected", [
    ("```{note}\nRead this.\n```", "> **Note**\n>\n> Read this."),
    ("```{tip}\nA.\n\nB.\n```", "> **Tip**\n>\n> A.\n>\n> B."),
    ("```{warning}\nCareful.\n```", "> **Warning**\n>\n> Careful."),
    ("```{important}\nThis.\n```", "> **Important**\n>\n> This."),
    ("```{hint}\n:class: dropdown\nTry.\n```", "> **Hint**\n>\n> Try."),
    ("```{note} First line.\nSecond.\n```", "> **Note**\n>\n> First line.\n> Second."),
    (":::{admonition} Why {cite}`wu2023implicit`?\n:class: tip\nSee.\n:::",
     "> **Why Wu and Su (2023)?**\n>\n> See."),
    ("````{note}\n```{warning}\nDeep.\n```\n````",
     "> **Note**\n>\n> > **Warning**\n> >\n> > Deep."),
])
def test_admonitions_become_blockquotes_with_a_bold_title(source, expected):
    assert md(source) == expected


def test_the_math_directive_becomes_a_display_and_eq_points_to_it():
    text = ("```{math}\n:label: eq-flow\n\n\\dot X = -G X\n```\n\n"
            "By {eq}`eq-flow` and {eq}`eq-other`, with {eq}`Eq. 1 <eq-flow>`.")
    assert md(text) == ("$$\n\\dot X = -G X\n$$\n\nBy (the equation above) and (eq-other), "
                        "with Eq. 1.")
    assert md("```{math} a = b\n```") == "$$\na = b\n$$"


def test_labels_and_labelled_dollar_math_lose_their_labels():
    text = "(sec-intro)=\n## Intro\n\n$$\nx = 1\n$$ (eq-x)\n\nSee {eq}`eq-x`; $$ y $$ (eq-y)"
    assert md(text) == "## Intro\n\n$$\nx = 1\n$$\n\nSee (the equation above); $$ y $$"


def test_code_directives_become_code_blocks():
    assert md("```{code-block} python\n:linenos:\nx = 1\n```") == "```python\nx = 1\n```"


# ---- roles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("{cite}`orvieto2022anticorrelated,wu2023implicit`", "Orvieto et al. (2022); Wu and Su (2023)"),
    ("{cite:t}`orvieto2022anticorrelated, wu2023implicit`",
     "Orvieto et al. (2022); Wu and Su (2023)"),
    ("{cite:p}`orvieto2022anticorrelated,wu2023implicit`",
     "(Orvieto et al., 2022; Wu and Su, 2023)"),
    ("{cite}`orvieto2022anticorrelated,nobody2020`", "Orvieto et al. (2022); nobody2020"),
    ("{ref}`the derivation <sec-derivation>`", "the derivation"),
    ("{ref}`sec-derivation`", "sec-derivation"),
    ("{numref}`fig-loss`", "fig-loss"),
    ("{numref}`Figure %s <fig-loss>`", "Figure fig-loss"),
    ("{doc}`derivation`", "derivation"),
    ("{doc}`the derivation <derivation>`", "the derivation"),
    ("{prf:ref}`prop-euler`", "prop-euler"),
    ("{math}`x^2`", "$x^2$"),
    ("{eq}`eq-unseen`", "(eq-unseen)"),
])
def test_roles_become_text(source, expected):
    assert md(f"See {source} here.") == f"See {expected} here."


def test_everything_else_is_unchanged():
    text = ("# Title\n\nText with $x_{ij}$, `code {x}` and **bold**.\n\n- a\n- b\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n$$\n\\sum_i x_i\n$$\n\n"
            "```python\n(label)=\nprint('{cite}`k`')\n```\n\n~~~\n:::{note}\n~~~")
    assert md(text) == text


def test_an_unclosed_fence_runs_to_the_end():
    assert md("```{exercise} T\nBody.") == "### Exercise: T\n\nBody."
    assert md("```python\nx = 1") == "```python\nx = 1"


# ---- the chapters ----------------------------------------------------------------------------

_EXERCISE = re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{exercise\}\s*(.*?)\s*$", re.M)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_chapters_exercises_convert_cleanly(chapter, book_refs):
    nb = nbformat.read(chapter.folder / "exercises.ipynb", as_version=4)
    number = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        titles = _EXERCISE.findall(cell.source)
        text = to_markdown(cell.source, book_refs, number + 1 if titles else None)
        for leftover in ("```{", ":::{", "{cite", ":label:", "{ref"):
            assert leftover not in text, f"cell {index}: {leftover!r} left in\n{text}"
        for title in titles:
            number += 1
            assert f"### Exercise {number}: {title}\n" in text, f"cell {index}:\n{text}"
    assert number >= 1
