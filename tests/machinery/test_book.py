"""The book, built as a reader gets it: every notebook executed at the quick preset by papermill,
rendered by Jupyter Book with warnings as errors; then the student edition."""

from __future__ import annotations

import ast
import builtins
import html as html_lib
import json
import re
import subprocess
import sys
from collections import Counter

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
def html(book_build, book_html):
    """The session's build (``book_build`` in conftest: `repro book --controls`)."""
    assert "The book is built. Open" in book_build.stdout
    return book_html


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
        # a warning printed on a page is noise to a reader (or a bug to fix)
        stderr = [o["text"] for c in code for o in c.get("outputs", [])
                  if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        assert not stderr, f"{notebook.name} prints to stderr: {stderr[0][:300]}"
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
    badges = re.findall(r'<span class="repro-badge repro-([a-z-]+)"', build_table)
    assert badges == [("not-run" if "quick" not in c.presets
                       else "known-failure" if "quick" in c.known_failure else "pass")
                      for c in claims]


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
    raw = (html / "chapters" / chapter.folder.name / "index.html").read_text()
    table = raw.split(f'<span class="pre">{record.preset}</span></code> preset.</strong>')[1]
    shown = re.findall(r'<span class="repro-badge repro-([a-z-]+)"', table.split("Recorded on")[0])
    assert shown == [v.status.replace(" ", "-") for v in verdicts]
    dashboard = text_of(html / "book" / "claims.html")
    assert "Recorded runs at other presets" in dashboard


def test_the_dashboard_and_reading_list_are_generated(html):
    dashboard = text_of(html / "book" / "claims.html")
    assert re.search(r"\d+ pass, \d+ fail, (\d+ known failures?, )?(\d+ diverged, )?\d+ not run "
                     r"at the quick preset", dashboard)
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


# --- what a reader's browser gets: math, navigation, numbering, noise --------------------------

def pages(html) -> list:
    """Every page of the book (not the redirecting index.html, nor the theme's own files)."""
    return [p for p in sorted(html.rglob("*.html")) if p != html / "index.html"
            and not {"_static", "_sources", "_images"} & set(p.relative_to(html).parts)]


def title_of(page) -> str:
    return html_lib.unescape(re.search(r"<title>(.*?)</title>", page.read_text(), re.S).group(1))


def h1_of(page) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", page.read_text(), re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", "", found.group(1)))).strip()


def sidebar_links(page) -> list[str]:
    """The text of each link in the left-hand navigation (the book's contents)."""
    nav = re.search(r'<nav class="[^"]*bd-docs-nav.*?</nav>', page.read_text(), re.S).group(0)
    return [re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", "", text))).strip()
            for text in re.findall(r"<a [^>]*>(.*?)</a>", nav, re.S)]


def scripts(page) -> list[tuple[str, str]]:
    """(src, inline body) of each <script> of a page."""
    return [(re.search(r'src="([^"]*)"', attrs).group(1) if "src=" in attrs else "", body)
            for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", page.read_text(),
                                          re.S)]


def test_math_typesets_from_the_mathjax_that_ships_with_the_book(html):
    """No page loads MathJax (or anything else) from a CDN: every page with math loads the copy
    in _static/mathjax, once, with its fonts and extensions, and configures it as MathJax 3."""
    mathjax = html / "_static" / "mathjax"
    assert (mathjax / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff"
            ).is_file()
    assert (mathjax / "input" / "tex" / "extensions" / "boldsymbol.js").is_file()
    assert '.VERSION="3.' in (mathjax / "tex-mml-chtml.js").read_text()
    with_math = 0
    for page in pages(html):
        text = page.read_text()
        assert "cdn.jsdelivr" not in text and "unpkg.com" not in text, page
        assert not re.search(r"https?://[^\"' ]*mathjax", text, re.I), page
        loaded = [src for src, _ in scripts(page) if "mathjax" in src.lower()]
        if 'class="math' not in text:
            continue
        with_math += 1
        assert len(loaded) == 1, (page, loaded)
        assert (page.parent / loaded[0].split("?")[0]).resolve() == (
            mathjax / "tex-mml-chtml.js").resolve()
        # MathJax 3's configuration (options.processHtmlClass), not MathJax 2's (tex2jax)
        assert '"options": {"processHtmlClass"' in text and "MathJax.Hub" not in text, page
        # Sphinx writes \(..\) inline and \[..\] or an environment for display: MathJax 3's own
        for formula in re.findall(r'<span class="math notranslate nohighlight">(.*?)</span>',
                                  text, re.S):
            assert formula.startswith("\\(") and formula.endswith("\\)"), (page, formula)
        for formula in re.findall(r'<div class="math notranslate nohighlight"[^>]*>\s*(.*?)</div>',
                                  text, re.S):
            assert formula.startswith(("\\[", "\\begin")), (page, formula[:80])
    assert with_math >= 3 * len(CHAPTERS)


def test_navigation_shows_no_tex(html):
    """Titles with math read as text in the browser tab, the sidebar and search results."""
    for page in pages(html):
        assert not re.search(r"[\\$]", title_of(page)), (page, title_of(page))
        links = sidebar_links(page)
        assert links and not [t for t in links if re.search(r"[\\$]", t)], page
    index = (html / "searchindex.js").read_text()
    titles = json.loads(re.search(r'"titles":\s*(\[.*?\])', index).group(1))
    assert len(titles) >= 4 * len(CHAPTERS)  # every page's title, read from the index
    assert not [t for t in titles if re.search(r"[\\$]", t)]
    # the heading that showed \(UU^\top\) reads in Unicode, in the sidebar and the tab alike
    page = html / "chapters" / CHAPTERS[0].folder.name / "derivation.html"
    assert "UUᵀ" in title_of(page) and any("UUᵀ" in t for t in sidebar_links(page))


def test_pages_are_numbered_as_in_the_plan(html):
    """Chapter N is "Chapter N." and its pages N.1, N.2, N.3 wherever they are named, Sphinx adds
    no numbers of its own (no "5.9.1. 1. The widening valley"), and the parts keep their plan
    numerals."""
    for page in pages(html):
        assert 'class="section-number"' not in page.read_text(), page
    for chapter in CHAPTERS:
        folder = html / "chapters" / chapter.folder.name
        expected = {"index": f"Chapter {chapter.number}. "}
        expected.update({nb.stem: f"{chapter.number}.{k} "
                         for k, nb in enumerate(chapter.notebooks(), start=1)})
        numbered: dict[str, list[int]] = {}
        for stem, number in expected.items():
            page = folder / f"{stem}.html"
            assert h1_of(page).startswith(number) and title_of(page).startswith(number), stem
            # figures, exercises and theorems: "Fig. 10.2", numbered within the chapter
            for caption in re.findall(r'<span class="caption-number">([^<]*)</span>',
                                      page.read_text()):
                kind, n = re.fullmatch(rf"(\w+\.?) {chapter.number}\.(\d+) ", caption).groups()
                numbered.setdefault(kind, []).append(int(n))
        assert numbered.get("Exercise"), chapter.slug
        for kind, numbers in numbered.items():
            assert numbers == list(range(1, len(numbers) + 1)), (chapter.slug, kind, numbers)
            assert any(t.startswith(number) for t in sidebar_links(folder / "index.html"))
    links = sidebar_links(html / "book" / "intro.html")
    captions = re.findall(r'<p aria-level="2" class="caption"[^>]*>\s*<span[^>]*>(.*?)</span>',
                          (html / "book" / "intro.html").read_text(), re.S)
    assert [c.split(":")[0] for c in captions if c.startswith("Part")] == ["Part I", "Part II",
                                                                           "Part VI"]
    assert "Chapter 10. Anticorrelated noise injection" in links


def test_pages_make_no_console_noise(html):
    """No script declared twice (sphinx-thebe's `const THEBE_JS_URL` was, on every page), a
    favicon that exists, no empty bar for papermill's injected parameters, and the parameters
    cell collapsed behind a note."""
    favicon = html / "_static" / "favicon.svg"
    assert favicon.is_file() and favicon.read_text().lstrip().startswith("<svg")
    for page in pages(html):
        text = page.read_text()
        inline = " ".join(body for src, body in scripts(page) if not src)
        declared = Counter(re.findall(r"\b(?:const|let)\s+([A-Za-z_$][\w$]*)", inline))
        assert not [name for name, n in declared.items() if n > 1], (page, declared)
        icon = re.search(r'<link rel="icon" href="([^"]+)"', text)
        assert icon and (page.parent / icon.group(1)).resolve() == favicon.resolve(), page
        assert "tag_injected-parameters" not in text, page
        # the theme's light/dark mode has a default (without one it logs an error on first load)
        assert 'localStorage.getItem("mode") || "auto"' in text, page
    for chapter in CHAPTERS:
        text = (html / "chapters" / chapter.folder.name / "experiments.html").read_text()
        cell = re.search(r'<div class="cell tag_parameters[^"]*"', text)
        assert cell and "tag_hide-input" in cell.group(0), chapter.slug
        note = html_lib.unescape(re.sub(r"<[^>]+>", "", text[:cell.start()].rsplit("<p>", 1)[-1]))
        assert "The notebook\u2019s parameters, as this page ran them" in note, chapter.slug


KERNEL_NOISE = ("[IPKernelApp]", "Kernel is running over TCP", "KeyboardInterrupt caught")


def test_kernels_keep_their_log_out_of_the_terminal(html, book_build, tmp_path):
    """`repro book` prints its progress, not the kernels' own log lines; checked on a notebook
    executed here (the session's build may have reused every executed notebook)."""
    assert not [n for n in KERNEL_NOISE if n in book_build.stdout + book_build.stderr]
    # nor the execution engine's: Dask's logs and warnings (a busy port, a closing stream)
    noise = [line for line in (book_build.stdout + book_build.stderr).splitlines()
             if "distributed." in line or "Warning" in line]
    assert not noise, noise[:5]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nbformat.write(notebook, tmp_path / "small.ipynb")
    code = ("from pathlib import Path\nfrom repro.machinery.runner import execute_notebook\n"
            "for k in range(3):\n"
            f"    execute_notebook(Path({str(tmp_path / 'small.ipynb')!r}), "
            f"Path({str(tmp_path)!r}) / f'out{{k}}.ipynb')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert not [n for n in KERNEL_NOISE if n in done.stdout + done.stderr], done.stderr
    out = nbformat.read(tmp_path / "out2.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["text"].strip() == "42"


def _bound(tree: ast.Module) -> set[str]:
    """Names a cell binds at its top level (assignments, imports, definitions, loop targets)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def test_the_student_edition_offers_notebooks_with_starting_code(html, student_html):
    """The notebook the student edition's download button serves holds each exercise's starting
    code (so a public test meets the student's names, not a NameError), and neither the solutions
    nor the hidden tests."""
    from repro.machinery.assign import HIDDEN_TEST, SOLUTION, TEST, parse_exercises

    for chapter in CHAPTERS:
        page = (student_html / "chapters" / chapter.folder.name / "exercises.html").read_text()
        download = student_html / "_sources" / "chapters" / chapter.folder.name / "exercises.ipynb"
        assert f"_sources/chapters/{chapter.folder.name}/exercises.ipynb" in page
        student = nbformat.read(download, as_version=4)
        source = nbformat.read(chapter.folder / "exercises.ipynb", as_version=4)
        _, questions = parse_exercises(source)
        tags = {t for c in student.cells for t in c.get("metadata", {}).get("tags", [])}
        assert not tags & {SOLUTION, HIDDEN_TEST}, chapter.slug
        everything = "\n".join(c.source for c in student.cells)
        assert "Hidden test" not in everything
        solutions = [c for c in source.cells if SOLUTION in c.get("metadata", {}).get("tags", [])]
        given = "\n".join(c.source for c in source.cells if c not in solutions)
        for cell in solutions:  # no line of a solution's code, unless it is given elsewhere too
            body = [line for line in cell.source.splitlines() if len(line.strip()) > 30
                    and not line.strip().startswith(('"""', "#", "def ")) and line not in given]
            assert cell.cell_type != "code" or not [line for line in body if line in everything]
        stubs = [c for c in student.cells if c.source.startswith("# Your answer")]
        assert len(stubs) == sum(bool(q.cells(SOLUTION)) for q in questions) == len(questions)
        bound = set(dir(builtins))
        for cell in student.cells:
            if cell.cell_type != "code":
                continue
            tree = ast.parse(cell.source)
            if TEST in cell.get("metadata", {}).get("tags", []):
                assert not cell.get("outputs"), chapter.slug  # they ran against the solutions
                names = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
                own = {n.id for n in names if not isinstance(n.ctx, ast.Load)} | {
                    a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
                missing = {n.id for n in names} - own - bound - _bound(tree)
                assert not missing, f"{chapter.slug}: a test reads {missing}, never defined"
            bound |= _bound(tree)
        assert "# Your answer" in text_of(student_html / "chapters" / chapter.folder.name
                                          / "exercises.html")
        teacher = html / "_sources" / "chapters" / chapter.folder.name / "exercises.ipynb"
        assert HIDDEN_TEST in {t for c in nbformat.read(teacher, as_version=4).cells
                               for t in c.get("metadata", {}).get("tags", [])}


# --- the site's edits, on small inputs ---------------------------------------------------------

@pytest.mark.parametrize("tex, text", [
    (r"UU^\top", "UUᵀ"), (r"\ell_4", "ℓ₄"), (r"G G^\top \alpha = 1/\alpha", "GGᵀα = 1/α"),
    (r"\alpha \to 0", "α → 0"), (r"X_t", "Xₜ"), (r"\tilde L", "L̃"), (r"w_{n+1}", "wₙ₊₁"),
    (r"\frac{1}{2}", None), (r"X_{GD}", None),  # None: left as math, never half-converted
])
def test_math_in_headings_becomes_plain_text(tex, text):
    from repro.machinery.book import plain_heading, tex_to_text

    assert tex_to_text(tex) == text
    shown = f"*{text}*" if text else f"${tex}$"
    assert plain_heading(f"## Step 2: the flow of ${tex}$") == f"## Step 2: the flow of {shown}"


def test_titles_are_numbered_once_and_only_outside_code():
    from repro.machinery.book import number_title

    source = "```python\n# a comment\n```\n# Exercises\n\n## 1. Derivation"
    numbered = number_title(source, "10.3")
    assert numbered == "```python\n# a comment\n```\n# 10.3 Exercises\n\n## 1. Derivation"
    assert number_title(numbered, "10.3") == numbered
    assert number_title("# Anti-PGD", "Chapter 10.") == "# Chapter 10. Anti-PGD"


def test_the_parameters_cell_shows_the_values_the_run_used():
    from repro.machinery.book import merge_parameters

    cell = ('preset: str = "quick"     # preset name\nmetrics_path: str = ""  # set by the runner\n'
            'steps: int = 100          # iterations; [1, inf)\nname: str = "a # b"  # a label')
    injected = ('# Parameters\npreset = "paper"\nmetrics_path = "/home/me/run/m.json"\n'
                'steps = 5000\nname = "a # b"\n')
    assert merge_parameters(cell, injected).splitlines() == [
        'preset: str = "paper"     # preset name', 'metrics_path: str = ""  # set by the runner',
        'steps: int = 5000         # iterations; [1, inf)', 'name: str = "a # b"  # a label']


def test_the_readme_is_reachable_from_the_book(html):
    """The how-to page sends readers to the README; the book carries it as an appendix."""
    page = text_of(html / "book" / "repository.html")
    for heading in ("Quick start", "Re-running a chapter", "Teaching", "Adding a chapter"):
        assert heading in page
    assert 'href="repository.html"' in (html / "book" / "how-to-use.html").read_text()
