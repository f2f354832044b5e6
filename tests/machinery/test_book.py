"""The book, built as a reader gets it: every notebook executed at the quick preset by papermill,
rendered by Jupyter Book with warnings as errors; then the student edition."""

from __future__ import annotations

import html as html_lib
import json
import re
import subprocess

import nbformat
import pytest

from conftest import REPRO, ROOT
from repro.machinery.chapters import all_chapters
from repro.machinery.claims import ChapterClaims, check_all
from repro.machinery.records import load_records

pytestmark = pytest.mark.slow
CHAPTERS = all_chapters(ROOT)
EXECUTED = ROOT / "_build" / "executed" / "quick"


def build(*extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run([REPRO, "book", "--preset", "quick", *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


@pytest.fixture(scope="module")
def html():
    done = build("--controls")
    assert "The book is built. Open" in done.stdout
    return ROOT / "_build" / "site-quick" / "_build" / "html"


@pytest.fixture(scope="module")
def student_html(html):
    done = build("--student")
    # the notebooks were executed once, for the first build; the second reuses them
    assert "0 to execute" in done.stdout
    return ROOT / "_build" / "site-quick-student" / "_build" / "html"


def text_of(page) -> str:
    """The page's text: tags dropped, entities decoded, Sphinx's curly apostrophes made straight."""
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page.read_text())).replace("\u2019", "'")
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_notebook_was_executed_without_errors(html, chapter):
    for notebook in chapter.notebooks():
        nb = nbformat.read(EXECUTED / chapter.folder.name / notebook.name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), notebook.name
        errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{notebook.name}: {errors[:1]}"
        assert (html / "chapters" / chapter.folder.name / f"{notebook.stem}.html").exists()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_the_experiments_page_shows_figures(html, chapter):
    page = (html / "chapters" / chapter.folder.name / "experiments.html").read_text()
    assert page.count("<img") >= 2


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_quick_claim_was_checked_and_came_out_as_expected(html, chapter):
    """Each claim meant for the quick preset got a verdict from this build's run: pass, or fail
    where claims.yaml records why it does not reproduce at this preset (a change either way is
    caught)."""
    verdicts = json.loads((EXECUTED / chapter.folder.name / "run" / "verdicts.json").read_text())
    claims = ChapterClaims.load(chapter.claims_path).claims
    assert [v["id"] for v in verdicts] == [c.id for c in claims]
    page = text_of(html / "chapters" / chapter.folder.name / "index.html")
    for claim, verdict in zip(claims, verdicts):
        expected = ("not run" if "quick" not in claim.presets
                    else "fail" if "quick" in claim.known_failure else "pass")
        assert verdict["verdict"] == expected, f"{claim.id}: {verdict}"
        assert claim.statement.split()[0] in page
    build_table = (html / "chapters" / chapter.folder.name / "index.html").read_text().split(
        "Recorded run at the")[0]                  # recorded runs' tables follow this build's
    cells = re.findall(r"<td><p><strong>(pass|FAIL)</strong></p></td>", build_table)
    assert cells.count("pass") == sum("quick" in c.presets and "quick" not in c.known_failure
                                      for c in claims)


RECORDS = [(c, r) for c in CHAPTERS for r in load_records(c.slug, ROOT)]


@pytest.mark.parametrize("chapter, record", RECORDS,
                         ids=[f"{c.slug}-{r.preset}" for c, r in RECORDS])
def test_recorded_runs_show_on_their_chapter_page_and_the_dashboard(html, chapter, record):
    """A record in data/records is shown with verdicts checked again from its metrics (the same
    verdicts `repro.machinery.claims` gives them now) and where and when it ran."""
    page = text_of(html / "chapters" / chapter.folder.name / "index.html")
    assert f"Recorded run at the {record.preset} preset" in page
    section = page.split(f"Recorded run at the {record.preset} preset")[1]
    commit = record.provenance["git"]["commit"][:10]
    assert f"commit {commit}" in section and record.provenance["environment"]["device"] in section
    claims = ChapterClaims.load(chapter.claims_path)
    verdicts = check_all(claims, record.metrics, record.preset)
    shown = re.findall(r"\b(pass|FAIL|not run)\b", section.split("Recorded on")[0])
    assert shown == [{"pass": "pass", "fail": "FAIL", "not run": "not run"}[v.verdict]
                     for v in verdicts]
    dashboard = text_of(html / "book" / "claims.html")
    assert "Recorded runs at other presets" in dashboard


def test_the_dashboard_and_reading_list_are_generated(html):
    dashboard = text_of(html / "book" / "claims.html")
    assert re.search(r"\d+ pass, \d+ fail, \d+ not run at the quick preset", dashboard)
    reading = (html / "book" / "reading-list.html").read_text()
    assert "272 works in 12 themes" in text_of(html / "book" / "reading-list.html")
    for chapter in CHAPTERS:
        assert f'href="../chapters/{chapter.folder.name}/index.html"' in reading


def test_the_student_edition_has_no_solutions(html, student_html):
    for chapter in CHAPTERS:
        teacher = (html / "chapters" / chapter.folder.name / "exercises.html").read_text()
        student = (student_html / "chapters" / chapter.folder.name / "exercises.html").read_text()
        assert 'class="solution' in teacher  # the check below can fail
        assert 'class="solution' not in student
        assert "Solution to" not in text_of(student_html / "chapters" / chapter.folder.name
                                            / "exercises.html")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_chapter_proves_its_claims_can_fail(html, chapter):
    """At least three negative controls per chapter, every one caught in this build: a planted
    bug makes each claim it names say fail."""
    claims = ChapterClaims.load(chapter.claims_path)
    assert len(claims.controls) >= 3, f"{chapter.slug} lists {len(claims.controls)} controls"
    report = json.loads((ROOT / "_build" / "controls" / "quick"
                         / f"{chapter.folder.name}.json").read_text())
    outcomes = {c["id"]: (c["outcome"], c["detail"]) for c in report["controls"]}
    assert set(outcomes) == {c.id for c in claims.controls}
    survived = {k: v for k, v in outcomes.items() if v[0] != "caught"}
    assert not survived, f"{chapter.slug}: controls not caught: {survived}"
    page = text_of(html / "chapters" / chapter.folder.name / "index.html")
    assert "Negative controls." in page and "not run in this build" not in page


def test_the_dashboard_summarises_each_chapter_with_its_controls(html):
    dashboard = text_of(html / "book" / "claims.html")
    for chapter in CHAPTERS:
        n = len(ChapterClaims.load(chapter.claims_path).controls)
        assert f"{n} of {n} caught" in dashboard, chapter.slug
