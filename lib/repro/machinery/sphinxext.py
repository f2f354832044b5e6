"""A Sphinx extension for the book's generated pages.

Directives (used from MyST markdown):

``claims-table``      in a chapter's index.md: the chapter's claims with the paper's value, this
                      build's measurement and the verdict, from ``run/metrics.json`` beside it;
                      then the same for each recorded run at another preset
                      (``data/records/<chapter>/<preset>/``, see ``repro.machinery.records``).
``claims-dashboard``  a summary per chapter (verdicts and negative controls), then every
                      chapter's verdicts, then those of the recorded runs.
``reading-list``      the catalog of papers (``data/papers.yaml``): a contents of its themes, then
                      one section per theme, each paper linked (arXiv, DOI, or else a search for
                      its title), with its year and its chapter where the book reproduces it.

Every verdict table is the one renderer of ``repro.machinery.claims`` (``verdicts_html``), the
same HTML the experiments notebooks display: badges that read in colour, in greyscale and to a
screen reader, styled by ``book/_static/repro.css``, which this extension adds to every page.
The rest is MyST markdown parsed in place, so it looks like any other page.

Used by: Jupyter Book, named in ``_config.yml`` (``sphinx.config.extensions``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from repro.machinery.chapters import Chapter, all_chapters
from repro.machinery.claims import (
    BADGES,
    DIVERGED,
    FAIL,
    KNOWN_FAILURE,
    NOT_RUN,
    PASS,
    ChapterClaims,
    Verdict,
    check_all,
    count_text,
    status_counts,
    verdicts_html,
)
from repro.machinery.records import Record, load_records

STYLESHEET = "repro.css"           # in book/_static/


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: no pipes, newlines or emphasis markers."""
    text = str(text).replace("\n", " ")
    for special in ("\\", "|", "*", "_", "`", "$"):
        text = text.replace(special, "\\" + special)
    return text


def _html_block(html: str) -> str:
    """Raw HTML as a markdown block of its own (one line, blank lines around)."""
    return "\n\n" + html.replace("\n", " ") + "\n\n"


def _chapter_link(chapter: Chapter, text: str) -> str:
    return f"[{_cell(text)}](/chapters/{chapter.folder.name}/index.md)"


def _short(c: "ChapterVerdicts") -> str:
    """The chapter's number and the paper's short name: ``10. Anti-PGD``."""
    return f"{c.chapter.number}. {c.claims.paper.get('short', c.chapter.slug)}"


def load_run(folder: Path) -> tuple[dict | None, dict | None]:
    metrics = folder / "run" / "metrics.json"
    provenance = folder / "run" / "provenance.json"
    return (json.loads(metrics.read_text()) if metrics.exists() else None,
            json.loads(provenance.read_text()) if provenance.exists() else None)


@dataclass
class ChapterVerdicts:
    """A chapter's claims checked against this build's run of it."""

    chapter: Chapter
    claims: ChapterClaims
    preset: str
    verdicts: list[Verdict]

    @property
    def statuses(self) -> dict[str, int]:
        return status_counts(self.verdicts)


def chapter_verdicts(root: Path, preset: str) -> list[ChapterVerdicts]:
    """Every chapter's verdicts from its ``run/`` folder in the site (every claim *not run* when
    the build has no run of it)."""
    found = []
    for chapter in all_chapters(root):
        claims = ChapterClaims.load(chapter.claims_path)
        metrics, provenance = load_run(chapter.folder)
        ran = (provenance or {}).get("preset", preset)
        found.append(ChapterVerdicts(chapter, claims, ran, check_all(claims, metrics, ran)))
    return found


# --- a chapter's page ------------------------------------------------------------------------

class _MarkdownDirective(SphinxDirective):
    has_content = False

    def parse(self, text: str) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(
            self.content.__class__(text.splitlines(), source=self.get_source_info()[0]),
            self.content_offset,
            container,
        )
        return container.children

    def section(self, label: str, title: str, children: list[nodes.Node]) -> nodes.section:
        """A section with a title and an explicit label (for ``{ref}`` and the page's contents),
        holding ``children``. A directive placed last on its page may return sections: they are
        the page's own subsections, listed in its contents and read as headings."""
        section = nodes.section(ids=[nodes.make_id(label)], names=[label])
        section += nodes.title(title, title)
        section.extend(children)
        self.state.document.note_explicit_target(section, section)
        return section

    @property
    def srcdir(self) -> Path:
        return Path(self.env.srcdir)

    @property
    def preset(self) -> str:
        return self.config.repro_preset


class ClaimsTable(_MarkdownDirective):
    def run(self):
        folder = Path(self.env.doc2path(self.env.docname)).parent
        claims = ChapterClaims.load(folder / "claims.yaml")
        metrics, provenance = load_run(folder)
        preset = (provenance or {}).get("preset", self.preset)
        verdicts = check_all(claims, metrics, preset)
        self.env.note_dependency(str(folder / "claims.yaml"))
        if provenance:
            commit = (provenance.get("git") or {}).get("commit") or "unknown"
            dirty = " (uncommitted changes)" if (provenance.get("git") or {}).get("dirty") else ""
            env = provenance.get("environment", {})
            note = (f"Measured at the `{preset}` preset on {env.get('device', '?')} in "
                    f"{provenance.get('wall_time_s', '?')} s, commit `{str(commit)[:10]}`{dirty}, "
                    f"torch {env.get('torch', '?')}: {count_text(status_counts(verdicts))}.")
        else:
            note = "This build ran no experiments, so every claim is *not run*."
        text = (_html_block(verdicts_html(verdicts)) + note + "\n"
                + _controls_section(folder, claims))
        slug = next(
            (c.slug for c in all_chapters(self.srcdir) if c.folder.name == folder.name), None
        )
        for record in load_records(slug, self.srcdir) if slug else []:
            if provenance and record.preset == preset:
                continue        # this build ran that preset itself
            for name in ("metrics.json", "provenance.json"):
                self.env.note_dependency(
                    str(self.srcdir / "data" / "records" / slug / record.preset / name)
                )
            text += "\n" + _record_section(claims, record)
        return self.parse(text)


def _controls_section(folder: Path, claims: ChapterClaims) -> str:
    """The chapter's negative controls: each planted bug, the claims that must fail under it, and
    (when this build ran them) whether they did."""
    if not claims.controls:
        return ""
    report = folder / "run" / "controls.json"
    outcome = {}
    if report.exists():
        outcome = {c["id"]: c for c in json.loads(report.read_text())["controls"]}
    lines = ["\n**Negative controls.**\n",
             "Each row breaks one method on purpose; the claims named must then say fail "
             "(`repro controls <chapter>` runs them).\n",
             "| planted bug | claims that must fail | outcome |", "|---|---|---|"]
    for control in claims.controls:
        found = outcome.get(control.id)
        result = found["outcome"] if found else "not run in this build"
        if result != "caught" and found:
            result = f"**{result}**"
        names = ", ".join(f"`{c}`" for c in control.must_fail)
        lines.append(f"| {_cell(control.what)} | {names} | {result} |")
    return "\n".join(lines) + "\n"


def _record_note(record: Record) -> str:
    prov = record.provenance
    env = prov.get("environment", {})
    commit = str((prov.get("git") or {}).get("commit") or "unknown")[:10]
    started = str(prov.get("started", "?"))[:10]
    seconds = prov.get("wall_time_s")
    took = ("?" if not isinstance(seconds, (int, float))
            else f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min")
    set_by_hand = record.non_default_parameters
    extra = ("; parameters set beyond the preset: "
             + ", ".join(f"`{k}={v}`" for k, v in set_by_hand.items())) if set_by_hand else ""
    return (f"Recorded on {started} on {env.get('device', '?')}, {took}, commit `{commit}`, "
            f"torch {env.get('torch', '?')}{extra}. The verdicts are checked again from the "
            "recorded metrics against the claims as they stand now.")


def _record_section(claims: ChapterClaims, record: Record) -> str:
    """A recorded run's verdicts as markdown: a heading line, the table, a note."""
    verdicts = check_all(claims, record.metrics, record.preset)
    return (f"**Recorded run at the `{record.preset}` preset.** "
            f"{count_text(status_counts(verdicts))}."
            + _html_block(verdicts_html(verdicts, "recorded run"))
            + _record_note(record) + "\n")


# --- the claims dashboard --------------------------------------------------------------------

def _heading(status: str) -> str:
    """A column heading: the badge's symbol and the status in words (``✗ fail``)."""
    return f"{BADGES[status][0]} {status}"


def controls_summary(chapter: Chapter, claims: ChapterClaims) -> str:
    """"k of n caught" from the build's controls report, or why there is none."""
    n = len(claims.controls)
    report = chapter.folder / "run" / "controls.json"
    if not n:
        return "none listed"
    if not report.exists():
        return f"{n} listed, not run in this build (`repro book --controls`)"
    outcomes = [c["outcome"] for c in json.loads(report.read_text())["controls"]]
    caught = outcomes.count("caught")
    return f"{caught} of {len(outcomes)} caught" + ("" if caught == len(outcomes) else " **(!)**")


def summary_table(chapters: list[ChapterVerdicts]) -> str:
    """One row per chapter (its verdicts at this build's preset and its negative controls), and
    a row of totals, as a markdown table. A column of divergences appears when there are any."""
    statuses = [PASS, FAIL, KNOWN_FAILURE, NOT_RUN]
    if any(c.statuses[DIVERGED] for c in chapters):
        statuses.insert(3, DIVERGED)
    rows = ["| chapter | " + " | ".join(_heading(s) for s in statuses) + " | negative controls |",
            "|---|" + "---:|" * len(statuses) + "---|"]
    totals = defaultdict(int)
    caught = listed = 0
    for c in chapters:
        counts = c.statuses
        cells = []
        for s in statuses:
            totals[s] += counts[s]
            cells.append(f"**{counts[s]}**" if s == FAIL and counts[s] else str(counts[s]))
        controls = controls_summary(c.chapter, c.claims)
        listed += len(c.claims.controls)
        if match := re.match(r"(\d+) of \d+ caught", controls):
            caught += int(match.group(1))
        rows.append(f"| {_chapter_link(c.chapter, _short(c))} | " + " | ".join(cells)
                    + f" | {controls} |")
    rows.append("| **all chapters** | " + " | ".join(f"**{totals[s]}**" for s in statuses)
                + f" | **{caught} of {listed} caught** |")
    return "\n".join(rows)


class ClaimsDashboard(_MarkdownDirective):
    def run(self):
        chapters = chapter_verdicts(self.srcdir, self.preset)
        for c in chapters:
            self.env.note_dependency(str(c.chapter.claims_path))
        totals = status_counts([v for c in chapters for v in c.verdicts])
        intro = (f"**{count_text(totals)}** at the `{self.preset}` preset, over "
                 f"{sum(len(c.verdicts) for c in chapters)} claims in {len(chapters)} chapters. "
                 "A *known failure* fails at this preset for a reason its chapter states; "
                 "*negative controls* are deliberate bugs that the claims must catch.\n\n"
                 + summary_table(chapters) + "\n")
        every = []
        for c in chapters:
            text = (f"{_chapter_link(c.chapter, 'Chapter page')}: "
                    f"*{_cell(c.claims.paper.get('title', ''))}*, at the `{c.preset}` preset: "
                    f"{count_text(c.statuses)}." + _html_block(verdicts_html(c.verdicts)))
            every.append(self.section(f"claims-{c.chapter.folder.name}",
                                      _short(c),
                                      self.parse(text)))
        out = [*self.parse(intro),
               self.section("claims-every-claim", "Every claim", every)]
        # runs at other presets kept in data/records (paper scale, usually on a GPU)
        recorded, counted = [], []
        for c in chapters:
            for record in load_records(c.chapter.slug, self.srcdir):
                if record.preset == self.preset:
                    continue
                verdicts = check_all(c.claims, record.metrics, record.preset)
                counted += verdicts
                recorded.append(
                    f"**{_cell(_short(c))}** at the "
                    f"`{record.preset}` preset ({_chapter_link(c.chapter, 'chapter')}):"
                    f" {count_text(status_counts(verdicts))}."
                    + _html_block(verdicts_html(verdicts, "recorded run")))
        if recorded:
            text = ("Runs this build did not repeat, kept in `data/records/` with their "
                    "provenance (each chapter's page says where and when it ran), checked again "
                    f"against today's claims: **{count_text(status_counts(counted))}**.\n\n"
                    + "\n".join(recorded))
            out.append(self.section("claims-recorded-runs", "Recorded runs at other presets",
                                    self.parse(text)))
        return out


# --- the reading list ------------------------------------------------------------------------

_NEW_ARXIV = re.compile(r"(\d{2})(\d{2})\.\d{4,5}(v\d+)?")
_OLD_ARXIV = re.compile(r"[a-z-]+(?:\.[A-Z]{2})?/(\d{2})(\d{2})\d{3}(v\d+)?")


def arxiv_year(identifier: str) -> int | None:
    """The year an arXiv identifier was issued: ``2412.08424`` -> 2024, ``math/0211159`` -> 2002."""
    identifier = str(identifier).strip()
    if match := _NEW_ARXIV.fullmatch(identifier):
        return 2000 + int(match.group(1))
    if match := _OLD_ARXIV.fullmatch(identifier):
        year = int(match.group(1))
        return 1900 + year if year >= 91 else 2000 + year
    return None


def _title_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(title).lower().replace("{", "").replace("}", "")).strip()


def bibliography(path: Path) -> dict[str, dict[str, str]]:
    """The entries of a BibTeX file by normalised title: their fields (lower-case names)."""
    if not path.is_file():
        return {}
    found = {}
    for body in re.findall(r"@\w+\s*\{[^,]+,(.*?)\n\}", path.read_text(), re.S):
        fields = {k.lower(): " ".join(v.split()) for k, v in
                  re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", body)}
        if fields.get("title"):
            found[_title_key(fields["title"])] = fields
    return found


def paper_link(paper: dict, known: dict | None = None) -> tuple[str, str]:
    """(address, kind) of a catalog entry: its arXiv page, DOI or URL (from the catalog, else from
    ``known``: the chapter's claims.yaml or the book's bibliography), or else a search for its
    title (kind ``search``)."""
    known = known or {}
    arxiv = paper.get("arxiv") or known.get("arxiv") or (
        known.get("eprint") if str(known.get("archiveprefix", "arXiv")).lower() == "arxiv"
        else None)
    if arxiv:
        return f"https://arxiv.org/abs/{arxiv}", "arXiv"
    if doi := paper.get("doi") or known.get("doi"):
        return f"https://doi.org/{doi}", "DOI"
    if url := paper.get("url") or known.get("url"):
        return str(url), "web"
    return ("https://scholar.google.com/scholar?q=" + quote_plus(f'"{paper["title"]}"'),
            "search")


def paper_year(paper: dict, known: dict | None = None) -> int | None:
    """The catalog's year, else the arXiv identifier's, else the year ``known`` gives (a
    bibliography entry's ``year``, a chapter's venue such as ``ICML 2022``)."""
    known = known or {}
    if paper.get("year"):
        return int(paper["year"])
    for identifier in (paper.get("arxiv"), known.get("arxiv"), known.get("eprint")):
        if identifier and (year := arxiv_year(identifier)):
            return year
    for text in (known.get("year"), known.get("venue")):
        if text and (match := re.search(r"\b(19|20)\d{2}\b", str(text))):
            return int(match.group())
    return None


RELEVANCE = {"high": 0, "medium": 1, "low": 2}


def reading_list(root: Path) -> tuple[str, list[tuple[str, str, str]]]:
    """The reading list as markdown: an introduction with the contents, and per theme (label,
    title, table). Each paper is linked (``paper_link``), its year given where known, and its
    chapter linked where the book reproduces it."""
    catalog = yaml.safe_load((root / "data" / "papers.yaml").read_text())
    papers = catalog["papers"] if isinstance(catalog, dict) else catalog
    themes = (catalog.get("themes", {}) if isinstance(catalog, dict) else {})
    chapters = {c.slug: c for c in all_chapters(root)}
    chapter_papers = {slug: ChapterClaims.load(c.claims_path).paper for slug, c in chapters.items()}
    bib = bibliography(root / "book" / "references.bib")
    by_theme = defaultdict(list)
    for paper in papers:
        by_theme[paper["theme"]].append(paper)
    ordered = [t for t in themes if t in by_theme] + sorted(set(by_theme) - set(themes))
    sections, contents, unknown_year, searched = [], [], 0, 0
    for theme in ordered:
        title = themes.get(theme, theme.replace("-", " ").capitalize())
        label = f"reading-list-{theme}"
        rows = ["| paper | year | relevance | class | chapter |", "|---|---|---|---|---|"]
        entries = sorted(by_theme[theme],
                         key=lambda p: (RELEVANCE.get(p["relevance"], 3), p["title"]))
        for p in entries:
            known = {**bib.get(_title_key(p["title"]), {}), **chapter_papers.get(p["id"], {})}
            url, kind = paper_link(p, known)
            year = paper_year(p, known)
            unknown_year += year is None
            searched += kind == "search"
            link = f"[{_cell(p['title'])}]({url})" + (" *(search)*" if kind == "search" else "")
            chapter = chapters.get(p["id"])
            where = (_chapter_link(chapter, _chapter_name(chapter, chapter_papers))
                     if chapter else "not yet reproduced")
            rows.append(f"| {link} | {year or '—'} | {p['relevance']} | {p['class']} "
                        f"| {where} |")
        done = sum(p["id"] in chapters for p in entries)
        contents.append(f"- {{ref}}`{label}`: {len(entries)} papers"
                        + (f", {done} reproduced" if done else ""))
        sections.append((label, title, "\n".join(rows) + "\n"))
    reproduced = sum(p["id"] in chapters for p in papers)
    intro = (f"{len(papers)} works in {len(by_theme)} themes; {reproduced} reproduced so far. "
             "A title links to the paper's arXiv page or DOI where the book knows one (from "
             "the catalog, a chapter or the bibliography); for the other "
             f"{searched} the link searches for the title (marked *search*). The year is "
             f"unknown (—) for {unknown_year}.\n\n**Themes**\n\n" + "\n".join(contents) + "\n")
    return intro, sections


def _chapter_name(chapter: Chapter, papers: dict[str, dict]) -> str:
    return f"{chapter.number}. {papers.get(chapter.slug, {}).get('short') or chapter.slug}"


class ReadingList(_MarkdownDirective):
    def run(self):
        self.env.note_dependency(str(self.srcdir / "data" / "papers.yaml"))
        intro, sections = reading_list(self.srcdir)
        return [*self.parse(intro),
                *(self.section(label, title, self.parse(table))
                  for label, title, table in sections)]


# --- the page's assets -----------------------------------------------------------------------

def _add_static_path(app, config) -> None:
    """Serve book/_static (the stylesheet of the verdict tables) with the pages, unless
    ``html_static_path`` names it already."""
    static = (Path(app.srcdir) / "book" / "_static").resolve()
    named = {(Path(app.confdir) / p).resolve() for p in config.html_static_path}
    if static.is_dir() and static not in named:
        config.html_static_path.append(str(static))


def _load_mathjax_for_verdicts(app, doctree) -> None:
    """A page whose only math is in verdict tables (raw HTML) still needs MathJax: Sphinx loads
    it only on pages with math nodes, so mark this one as having equations."""
    for node in doctree.findall(nodes.raw):
        text = node.astext()
        if "repro-verdicts" in text and 'class="math' in text:
            app.env.get_domain("math").data["has_equations"][app.env.docname] = True
            return


def setup(app):
    app.add_config_value("repro_preset", "quick", "env")
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("claims-dashboard", ClaimsDashboard)
    app.add_directive("reading-list", ReadingList)
    app.connect("config-inited", _add_static_path)
    app.connect("doctree-read", _load_mathjax_for_verdicts)
    app.add_css_file(STYLESHEET)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2"}
