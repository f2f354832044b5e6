"""The verdict tables, the claims dashboard's summary and the reading list, from the functions the
book's Sphinx directives call; then once through Sphinx on a miniature book (a few seconds).

One renderer (``repro.machinery.claims.verdicts_html``) draws every verdict table: the chapter
pages, the dashboard, recorded runs and the experiments notebooks' output."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from repro.machinery.claims import (
    BADGES,
    DIVERGED,
    FAIL,
    KNOWN_FAILURE,
    NOT_RUN,
    PASS,
    STATUSES,
    ChapterClaims,
    Claim,
    VerdictTable,
    badge_html,
    check_claim,
    count_text,
    rich_html,
    verdicts_html,
)
from repro.machinery.records import Record
from repro.machinery.sphinxext import (
    _record_section,
    arxiv_year,
    chapter_verdicts,
    paper_link,
    paper_year,
    reading_list,
    summary_table,
)

MATH = re.compile(r'<span class="math notranslate nohighlight">\\\((.*?)\\\)</span>')


def claim(**raw) -> Claim:
    return Claim.from_dict({"id": "c", "statement": "a is below b.", "metric": "m.v",
                            "check": {"ordering": ["a", "b"]}, "presets": ["quick"], **raw})


def row_of(table: str, claim_id: str) -> str:
    """The <tr> of a claim in a rendered table."""
    rows = re.findall(r"<tr class=\"repro-row-[^\"]+\">.*?</tr>", table)
    [row] = [r for r in rows if f"<code>{claim_id}</code>" in r]
    return row


def maths(html: str) -> list[str]:
    """The TeX of every MathJax span (HTML entities decoded)."""
    return [m.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            for m in MATH.findall(html)]


# --- the badges ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", STATUSES)
def test_each_status_has_a_badge_with_its_own_word_symbol_and_class(status):
    icon, word = BADGES[status]
    badge = badge_html(status, "why it is so")
    assert f'class="repro-badge repro-{status.replace(" ", "-")}"' in badge
    # the word is read out; the symbol is for the eye only
    assert re.sub(r"<[^>]+>", "", badge).strip() == f"{icon} {word}"
    assert f'<span class="repro-badge-icon" aria-hidden="true">{icon}</span>' in badge
    assert 'title="why it is so"' in badge
    others = [BADGES[s] for s in STATUSES if s != status]
    assert all(icon != i and word.lower() != w.lower() for i, w in others)


def test_every_kind_of_verdict_gets_its_status_and_badge():
    """pass, fail, a fail that claims.yaml expects (known failure), a fail on a non-finite value
    (diverged), and a claim the preset cannot test (not run)."""
    metrics = {"m": {"v": {"a": 1.0, "b": 2.0}}, "bad": {"v": {"a": 2.0, "b": 1.0}},
               "nan": {"v": {"a": math.nan, "b": 1.0}}}
    verdicts = [
        check_claim(claim(id="passes"), metrics, "quick"),
        check_claim(claim(id="fails", metric="bad.v"), metrics, "quick"),
        check_claim(claim(id="known", metric="bad.v",
                          known_failure={"quick": "too few seeds here"}), metrics, "quick"),
        check_claim(claim(id="diverges", metric="nan.v"), metrics, "quick"),
        check_claim(claim(id="later", presets=["paper"]), metrics, "quick"),
    ]
    assert [v.status for v in verdicts] == [PASS, FAIL, KNOWN_FAILURE, DIVERGED, NOT_RUN]
    assert [v.verdict for v in verdicts] == [PASS, FAIL, FAIL, FAIL, NOT_RUN]  # verdicts stay
    assert verdicts[2].as_dict()["status"] == KNOWN_FAILURE
    table = verdicts_html(verdicts)
    for v in verdicts:
        row = row_of(table, v.claim.id)
        css = v.status.replace(" ", "-")
        assert row.startswith(f'<tr class="repro-row-{css}">')
        assert f'repro-badge repro-{css}"' in row and BADGES[v.status][1] in row
    assert "too few seeds here" in row_of(table, "known")       # why it is expected to fail


def test_a_failing_claim_is_marked_differently_from_a_passing_one():
    metrics = {"m": {"v": {"a": 1.0, "b": 2.0}}, "bad": {"v": {"a": 2.0, "b": 1.0}}}
    good = check_claim(claim(id="good"), metrics, "quick")
    bad = check_claim(claim(id="bad", metric="bad.v"), metrics, "quick")
    table = verdicts_html([good, bad])
    good_row, bad_row = row_of(table, "good"), row_of(table, "bad")
    assert 'class="repro-row-pass"' in good_row and 'class="repro-row-fail"' in bad_row
    assert "✓</span> pass</span>" in good_row and "✗</span> FAIL</span>" in bad_row
    assert "FAIL" not in good_row and "pass</span>" not in bad_row
    # the stylesheet gives the two badges and rows their own colours and borders
    css = (ROOT / "book" / "_static" / "repro.css").read_text()
    rules = {name: re.search(r"\.repro-" + name + r" \{(.*?)\}", css, re.S).group(1)
             for name in ("pass", "fail", "known-failure", "diverged", "not-run")}
    borders = {name: re.search(r"border: (.*);", rule).group(1) for name, rule in rules.items()}
    assert len(set(borders.values())) == 5       # told apart without colour, too
    assert len({re.search(r"background: (.*);", r).group(1) for r in rules.values()}) == 5
    assert "tr.repro-row-fail" in css


# --- what a row shows ------------------------------------------------------------------------

def test_a_row_shows_the_statement_with_its_place_and_id_beneath():
    c = claim(id="valley-anti-pgd-u2", where="Thm. 3.1",
              statement="On the widening valley, Anti-PGD stays below the bound.")
    row = row_of(verdicts_html([check_claim(c, {"m": {"v": {"a": 1, "b": 2}}}, "quick")]),
                 "valley-anti-pgd-u2")
    cell = re.search(r'<td class="repro-claim">(.*?)</td>', row).group(1)
    assert cell.startswith('<span class="repro-statement">On the widening valley, Anti-PGD')
    assert ('<span class="repro-claim-id">Thm. 3.1 · <code>valley-anti-pgd-u2</code></span>'
            in cell)


def test_a_long_statement_shows_its_first_sentence_and_the_rest_on_a_click():
    first = "Depth 3 completes the matrix at the data-poor count (see Eq. 2 and Fig. 1)."
    rest = "Measured on the same runs as the previous claim. " * 5
    html = verdicts_html([check_claim(claim(statement=first + " " + rest), {}, "paper")])
    summary = re.search(r'<details class="repro-statement"><summary>(.*?)</summary>(.*?)</details>',
                        html)
    assert summary.group(1) == first and summary.group(2).startswith("Measured on the same")


def test_paper_values_are_math_where_the_claim_gives_tex_or_writes_a_formula():
    tex = claim(paper="lim E|u|^2 <= alpha D",
                paper_tex=r"\lim_{t\to\infty} \mathbb{E}|u_t|^2 \le \alpha D")
    cell = re.search(r'<td class="repro-paper"[^>]*>(.*?)</td>',
                     verdicts_html([check_claim(tex, {}, "paper")])).group(1)
    assert maths(cell) == [r"\lim_{t\to\infty} \mathbb{E}|u_t|^2 \le \alpha D"]
    ascii_ = claim(paper="X_GD → X_nuc as α → 0")
    cell = re.search(r'<td class="repro-paper"[^>]*>(.*?)</td>',
                     verdicts_html([check_claim(ascii_, {}, "paper")])).group(1)
    assert maths(cell) == [r"X_{\mathrm{GD}} \to X_{\mathrm{nuc}}", r"\alpha \to 0"]
    assert " as " in re.sub(r"<[^>]+>", "", cell)


@pytest.mark.parametrize("text, tex", [
    ("ends within its bounds (E|u|^2 <= alpha*D, Tr H <= 16*alpha*D, time averages)",
     [r"E \lvert u\rvert^{2} \le \alpha D", r"\operatorname{Tr} H \le 16 \alpha D"]),
    ("Nash-MTL's Delta_m% against single-task learning", [r"\Delta_{m}"]),
    ("At alpha = 1e-6 the gap is below the tolerance gap_tol (5%).", [r"\alpha = 10^{-6}"]),
    ("GD from alpha*I stays diagonal; UU^T is PSD", [r"\alpha I", r"UU^{\top}"]),
    ("On l4 linear regression the model w = w1 w2 is faster", [r"\ell_{4}", "w = w_{1} w_{2}"]),
    ("the paper writes $\\hat x = G(z)$ here", [r"\hat x = G(z)"]),
    # prose, code names and formulas that do not parse stay text
    ("a is below b; gap_tol and noise_std^2 are parameters; x* = G(z*), z* ~ N(0, I)", []),
    ("(1 + cos(g₁, g₂) > 1e-3)", []),
])
def test_common_ascii_and_unicode_formulas_are_typeset_and_prose_is_left_alone(text, tex):
    rendered = rich_html(text)
    assert maths(rendered) == tex
    if not tex:                                   # the text as it was, escaped for HTML
        assert html.unescape(rendered) == text


def test_measured_values_keep_their_spread_and_n_and_several_values_fold():
    metrics = {"m": {"v": {"a": [1.0, 1.2, 1.1], "b": [2.0, 2.2, 2.1]}},
               "w": {"v": {k: [float(i), i + 0.5] for i, k in enumerate("abcde")}}}
    one = check_claim(claim(id="one"), metrics, "quick")
    many = check_claim(claim(id="many", metric="w.v", check={"ordering": list("abcde")}),
                       metrics, "quick")
    table = verdicts_html([one, many])
    assert "a 1.1 ± 0.1 (n=3); b 2.1 ± 0.1 (n=3)" in row_of(table, "one")
    cell = re.search(r'<td class="repro-measured"[^>]*>(.*?)</td>', row_of(table, "many")).group(1)
    first, more = re.search(r"<summary>(.*?) <span class=\"repro-more-count\">\(\+(\d) more\)",
                            cell).groups()
    assert first == "a 0.25 ± 0.35 (n=2)" and more == "4"
    assert cell.count("<span>") == 4                       # the others, one per line, folded


def test_a_claim_that_fails_for_want_of_data_says_why():
    """A recorded run without QM9 shows why the QM9 claim failed, not a bare dash."""
    v = check_claim(claim(id="qm9", metric="qm9.delta_m", presets=["paper"]), {}, "paper")
    cell = re.search(r'<td class="repro-measured"[^>]*>(.*?)</td>',
                     row_of(verdicts_html([v]), "qm9")).group(1)
    assert "not measured: the run recorded no metric &#x27;qm9.delta_m&#x27;" in cell
    record = Record("mini", "paper", {}, {"git": {"commit": "abc"}, "environment": {}})
    text = _record_section(ChapterClaims({}, (v.claim,)), record)
    assert "**Recorded run at the `paper` preset.** 0 pass, 1 fail, 0 not run." in text
    assert "not measured: the run recorded no metric" in text


def test_the_notebook_shows_the_same_table_as_the_pages():
    metrics = {"m": {"v": {"a": 1.0, "b": 2.0}}}
    verdicts = [check_claim(claim(id="x"), metrics, "quick"),
                check_claim(claim(id="y", presets=["paper"]), metrics, "quick")]
    table = VerdictTable(verdicts, "quick")
    html = table._repr_html_()
    assert html.startswith(verdicts_html(verdicts))
    assert "Preset <code>quick</code>: 1 pass, 0 fail, 1 not run." in html
    assert "a is below b." in table._repr_markdown_() and "✓ pass" in table._repr_markdown_()


def test_count_text_names_known_failures_and_divergences_only_when_there_are_some():
    assert count_text({PASS: 3, FAIL: 0, NOT_RUN: 2}) == "3 pass, 0 fail, 2 not run"
    assert (count_text({PASS: 1, FAIL: 1, KNOWN_FAILURE: 2, DIVERGED: 1, NOT_RUN: 0})
            == "1 pass, 1 fail, 2 known failures, 1 diverged, 0 not run")


# --- the dashboard's summary -----------------------------------------------------------------

SECOND_CLAIMS = """\
paper: {title: Another paper, authors: [Nobody], venue: Test 2025, short: Other}
claims:
  - id: holds
    statement: alpha*x is small.
    metric: run.x
    check: {bound: "<= 1"}
    presets: [quick]
  - id: expected-to-fail
    statement: y is small.
    metric: run.y
    check: {bound: "<= 1"}
    presets: [quick]
    known_failure: {quick: the quick run is too short}
  - id: broken
    statement: z is small.
    metric: run.z
    check: {bound: "<= 1"}
    presets: [quick]
controls:
  - {id: c1, what: a bug, cell: "x = 1", must_fail: [holds]}
  - {id: c2, what: another bug, cell: "x = 2", must_fail: [holds]}
"""


@pytest.fixture
def two_chapters(mini_book) -> Path:
    """The miniature book with a second chapter; both have a run, the second its controls."""
    first = mini_book / "chapters" / "01-mini-chapter"
    (first / "run").mkdir()
    (first / "run" / "metrics.json").write_text(json.dumps(
        {"run": {"score": {"a": [1.0, 1.1], "b": 2.0}, "x": [0.5, 0.7], "limit": 1.0}}))
    (first / "run" / "provenance.json").write_text(json.dumps({"preset": "quick"}))
    second = mini_book / "chapters" / "02-other-chapter"
    (second / "run").mkdir(parents=True)
    (second / "claims.yaml").write_text(SECOND_CLAIMS)
    (second / "run" / "metrics.json").write_text(json.dumps({"run": {"x": 0.5, "y": 2, "z": 3}}))
    (second / "run" / "provenance.json").write_text(json.dumps({"preset": "quick"}))
    (second / "run" / "controls.json").write_text(json.dumps(
        {"controls": [{"id": "c1", "outcome": "caught"}, {"id": "c2", "outcome": "survived"}]}))
    return mini_book


def test_the_summary_counts_each_chapter_and_all_of_them(two_chapters):
    chapters = chapter_verdicts(two_chapters, "quick")
    assert [c.statuses for c in chapters] == [
        {PASS: 2, FAIL: 0, KNOWN_FAILURE: 0, DIVERGED: 0, NOT_RUN: 1},
        {PASS: 1, FAIL: 1, KNOWN_FAILURE: 1, DIVERGED: 0, NOT_RUN: 0}]
    rows = summary_table(chapters).splitlines()
    assert rows[0] == ("| chapter | ✓ pass | ✗ fail | ⚠ known failure | – not run "
                       "| negative controls |")
    assert rows[2] == ("| [1. Mini](/chapters/01-mini-chapter/index.md) | 2 | 0 | 0 | 1 "
                       "| none listed |")
    assert rows[3] == ("| [2. Other](/chapters/02-other-chapter/index.md) | 1 | **1** | 1 | 0 "
                       "| 1 of 2 caught **(!)** |")
    assert rows[4] == "| **all chapters** | **3** | **1** | **1** | **1** | **1 of 2 caught** |"


def test_the_summary_says_when_the_controls_did_not_run(two_chapters):
    (two_chapters / "chapters" / "02-other-chapter" / "run" / "controls.json").unlink()
    rows = summary_table(chapter_verdicts(two_chapters, "quick")).splitlines()
    assert rows[3].endswith("| 2 listed, not run in this build (`repro book --controls`) |")
    assert rows[4].endswith("| **0 of 2 caught** |")


# --- the reading list ------------------------------------------------------------------------

CATALOG = {
    "themes": {"depth": "Implicit bias of depth", "noise": "Noise and sharpness"},
    "papers": [
        {"id": "mini-chapter", "title": "A miniature paper", "year": None, "theme": "depth",
         "relevance": "high", "class": "A"},
        {"id": "dated", "title": "Old and dated", "year": 2019, "theme": "depth",
         "relevance": "low", "class": "D", "doi": "10.1000/xyz"},
        {"id": "from-arxiv", "title": "Only an identifier", "year": None, "theme": "noise",
         "relevance": "medium", "class": "B", "arxiv": "2412.08424"},
        {"id": "in-bib", "title": "Flat {M}inima", "year": None, "theme": "noise",
         "relevance": "high", "class": "C"},
        {"id": "unknown", "title": "Nothing known: at all", "year": None, "theme": "noise",
         "relevance": "low", "class": "C"},
    ],
}
BIB = """@article{hochreiter1997flat,
  title   = {Flat Minima},
  journal = {Neural Computation},
  year    = {1997},
  doi     = {10.1162/neco.1997.9.1.1}
}
"""


@pytest.fixture
def catalog(mini_book) -> Path:
    (mini_book / "data" / "papers.yaml").write_text(yaml.safe_dump(CATALOG))
    (mini_book / "book").mkdir(exist_ok=True)
    (mini_book / "book" / "references.bib").write_text(BIB)
    return mini_book


def test_every_paper_is_linked_with_its_year_and_chapter(catalog):
    intro, sections = reading_list(catalog)
    rows = {line.split("](")[0].lstrip("| ["): line
            for _, _, table in sections for line in table.splitlines()[2:]}
    mini = rows["A miniature paper"]
    # the chapter's claims.yaml gives the arXiv id (0000.00000), whose year is 2000
    assert mini.startswith("| [A miniature paper](https://arxiv.org/abs/0000.00000) | 2000 |")
    assert mini.endswith("| [1. Mini](/chapters/01-mini-chapter/index.md) |")
    dated = rows["Old and dated"]
    assert dated.startswith("| [Old and dated](https://doi.org/10.1000/xyz) | 2019 |")
    assert dated.endswith("| not yet reproduced |")
    assert "(https://arxiv.org/abs/2412.08424) | 2024 |" in rows["Only an identifier"]
    # a title found in the book's bibliography takes its DOI and year
    assert "(https://doi.org/10.1162/neco.1997.9.1.1) | 1997 |" in rows["Flat {M}inima"]
    unknown = rows["Nothing known: at all"]
    assert ("(https://scholar.google.com/scholar?q=%22Nothing+known%3A+at+all%22) *(search)* | — |"
            in unknown)
    assert "the other 1 the link searches for the title" in intro
    assert "The year is unknown (—) for 1." in intro


def test_the_reading_list_opens_with_a_contents_of_its_themes(catalog):
    intro, sections = reading_list(catalog)
    assert [(label, title) for label, title, _ in sections] == [
        ("reading-list-depth", "Implicit bias of depth"),
        ("reading-list-noise", "Noise and sharpness")]
    assert intro.startswith("5 works in 2 themes; 1 reproduced so far.")
    assert ("- {ref}`reading-list-depth`: 2 papers, 1 reproduced\n"
            "- {ref}`reading-list-noise`: 3 papers\n") in intro
    # most relevant first within a theme
    noise = sections[1][2]
    assert noise.index("Flat {M}inima") < noise.index("Only an identifier") < noise.index(
        "Nothing known")


@pytest.mark.parametrize("identifier, year", [
    ("2412.08424", 2024), ("0704.0001", 2007), ("1705.09280v3", 2017),
    ("math/0211159", 2002), ("hep-th/9901001", 1999), ("math.PR/0611234", 2006),
    ("not an id", None), ("12345", None)])
def test_the_year_of_an_arxiv_identifier(identifier, year):
    assert arxiv_year(identifier) == year


def test_the_catalog_year_wins_over_the_others():
    paper = {"title": "t", "year": 2022, "arxiv": "2306.00342"}
    assert paper_year(paper) == 2022
    assert paper_year({"title": "t"}, {"venue": "ICML 2018"}) == 2018
    assert paper_link({"title": "t"}, {"eprint": "2202.02831", "archiveprefix": "arXiv"}) == (
        "https://arxiv.org/abs/2202.02831", "arXiv")


# --- through Sphinx --------------------------------------------------------------------------

def test_the_directives_in_a_sphinx_build(two_chapters, catalog, tmp_path):
    """The chapter page, the dashboard and the reading list of a miniature book, built by Sphinx
    with warnings as errors: the tables, the theme sections and their contents links, the
    stylesheet, and MathJax on a page whose only math is in a verdict table."""
    root = two_chapters
    (root / "book" / "_static").mkdir()
    shutil.copy2(ROOT / "book" / "_static" / "repro.css", root / "book" / "_static")
    (root / "chapters" / "02-other-chapter" / "index.md").write_text(
        "# Other chapter\n\n```{claims-table}\n```\n")
    (root / "book" / "claims.md").write_text("# Claims dashboard\n\n```{claims-dashboard}\n```\n")
    (root / "book" / "reading-list.md").write_text("# Reading list\n\n```{reading-list}\n```\n")
    (root / "index.md").write_text(
        "# Book\n\n```{toctree}\nbook/claims\nbook/reading-list\n"
        "chapters/01-mini-chapter/index\nchapters/02-other-chapter/index\n```\n")
    (root / "conf.py").write_text(
        'extensions = ["myst_parser", "repro.machinery.sphinxext"]\n'
        'myst_enable_extensions = ["dollarmath"]\n'
        'exclude_patterns = ["data", "_build", "**/run"]\n')
    record = root / "data" / "records" / "mini-chapter" / "paper"
    record.mkdir(parents=True)
    (record / "metrics.json").write_text(json.dumps({"run": {"score": {"a": 3.0, "b": 2.0}}}))
    (record / "provenance.json").write_text(json.dumps(
        {"git": {"commit": "0123456789abcdef"}, "environment": {"device": "cuda"}}))
    out = tmp_path / "html"
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(root),
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    page = (out / "chapters" / "02-other-chapter" / "index.html").read_text()
    assert 'href="../../_static/repro.css' in page and (out / "_static" / "repro.css").exists()
    assert page.count('class="repro-row-') == 3
    assert 'class="repro-row-known-failure"' in page and "the quick run is too short" in page
    assert "1 pass, 1 fail, 1 known failure, 0 not run" in page

    first = (out / "chapters" / "01-mini-chapter" / "index.html").read_text()
    assert "Recorded run at the <code" in first and "✗</span> FAIL" in first.split(
        "Recorded run at the")[1]

    dashboard = (out / "book" / "claims.html").read_text()
    assert re.search(r"<h2>Every claim.*?</h2>", dashboard)
    assert re.search(r'<section id="claims-02-other-chapter">\s*<h3>2. Other', dashboard)
    assert "Recorded runs at other presets" in dashboard
    assert "<strong>3 pass, 1 fail, 1 known failure, 1 not run</strong>" in dashboard
    assert "mathjax" in dashboard.lower()          # loaded for the verdict tables' math

    reading = (out / "book" / "reading-list.html").read_text()
    assert '<section id="reading-list-noise">' in reading
    assert re.search(r'<a class="reference internal" href="#reading-list-noise">'
                     r'<span class="std std-ref">Noise and sharpness</span>', reading)
    assert 'href="../chapters/01-mini-chapter/index.html"' in reading
