"""A Sphinx extension for the book's generated pages.

Directives (used from MyST markdown):

``claims-table``      in a chapter's index.md: the chapter's claims with the paper's value, this
                      build's measurement and the verdict, from ``run/metrics.json`` beside it;
                      then the same for each recorded run at another preset
                      (``data/records/<chapter>/<preset>/``, see ``repro.machinery.records``).
``claims-dashboard``  every chapter's verdicts on one page, and those of the recorded runs.
``reading-list``      the catalog of papers (``data/papers.yaml``) grouped by theme, each linked
                      to its chapter or marked as not yet reproduced.

The directives write MyST markdown and parse it in place, so the tables look like any other.

Used by: Jupyter Book, named in ``_config.yml`` (``sphinx.extra_extensions``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from repro.machinery.chapters import all_chapters
from repro.machinery.claims import FAIL, NOT_RUN, PASS, ChapterClaims, check_all
from repro.machinery.records import Record, load_records

BADGE = {PASS: "**pass**", FAIL: "**FAIL**", NOT_RUN: "*not run*"}


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: no pipes, newlines or emphasis markers."""
    text = str(text).replace("\n", " ")
    for special in ("\\", "|", "*", "_", "`"):
        text = text.replace(special, "\\" + special)
    return text


def _paper(v) -> str:
    """The paper's value of a verdict's claim (or the check itself), as a table cell."""
    return _cell(v.claim.paper or v.claim.describe_check())


def _measured(v, why: bool = True) -> str:
    """What the run measured, as a table cell; with ``why``, a failure's reason too."""
    return _cell(v.measured + (f" ({v.detail})" if why and v.verdict == FAIL and v.detail else ""))


def _link(chapter, claims: ChapterClaims) -> str:
    return (
        f"[{_cell(claims.paper.get('short', chapter.slug))}]"
        f"(/chapters/{chapter.folder.name}/index.md)"
    )


def load_run(folder: Path) -> tuple[dict | None, dict | None]:
    metrics = folder / "run" / "metrics.json"
    provenance = folder / "run" / "provenance.json"
    return (json.loads(metrics.read_text()) if metrics.exists() else None,
            json.loads(provenance.read_text()) if provenance.exists() else None)


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
        lines = ["| claim | where | paper | this run | verdict |", "|---|---|---|---|---|"]
        for v in verdicts:
            lines.append(f"| {_cell(v.claim.statement)} | {_cell(v.claim.where)} | {_paper(v)} "
                         f"| {_measured(v)} | {BADGE[v.verdict]} |")
        if provenance:
            commit = (provenance.get("git") or {}).get("commit") or "unknown"
            dirty = " (uncommitted changes)" if (provenance.get("git") or {}).get("dirty") else ""
            env = provenance.get("environment", {})
            note = (f"Measured at the `{preset}` preset on {env.get('device', '?')} in "
                    f"{provenance.get('wall_time_s', '?')} s, commit `{str(commit)[:10]}`{dirty}, "
                    f"torch {env.get('torch', '?')}.")
        else:
            note = "This build ran no experiments, so every claim is *not run*."
        text = "\n".join(lines) + "\n\n" + note + "\n" + _controls_section(folder, claims)
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
        lines.append(f"| {_cell(control.what)} | {', '.join(control.must_fail)} | {result} |")
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
    """A recorded run's verdicts as markdown: a heading line, a table, a note."""
    lines = [f"**Recorded run at the `{record.preset}` preset.**", "",
             "| claim | paper | recorded run | verdict |", "|---|---|---|---|"]
    for v in check_all(claims, record.metrics, record.preset):
        lines.append(f"| {_cell(v.claim.statement)} | {_paper(v)} | {_measured(v)} "
                     f"| {BADGE[v.verdict]} |")
    return "\n".join(lines) + "\n\n" + _record_note(record) + "\n"


class ClaimsDashboard(_MarkdownDirective):
    def run(self):
        lines = ["| chapter | claim | paper | this run | verdict |", "|---|---|---|---|---|"]
        totals = defaultdict(int)
        for chapter in all_chapters(self.srcdir):
            claims = ChapterClaims.load(chapter.claims_path)
            metrics, provenance = load_run(chapter.folder)
            preset = (provenance or {}).get("preset", self.preset)
            link = _link(chapter, claims)
            for v in check_all(claims, metrics, preset):
                totals[v.verdict] += 1
                lines.append(f"| {link} | {_cell(v.claim.statement)} | {_paper(v)} "
                             f"| {_measured(v, why=False)} | {BADGE[v.verdict]} |")
        summary = (f"**{totals[PASS]} pass, {totals[FAIL]} fail, {totals[NOT_RUN]} not run** "
                   f"at the `{self.preset}` preset.")
        text = (summary + "\n\n" + self.per_chapter() + "\n\n## Every claim\n\n"
                + "\n".join(lines) + "\n")
        # runs at other presets kept in data/records (paper scale, usually on a GPU)
        rec_lines = ["| chapter | preset | claim | paper | recorded run | verdict |",
                     "|---|---|---|---|---|---|"]
        rec_totals = defaultdict(int)
        for chapter in all_chapters(self.srcdir):
            claims = ChapterClaims.load(chapter.claims_path)
            for record in load_records(chapter.slug, self.srcdir):
                if record.preset == self.preset:
                    continue
                for v in check_all(claims, record.metrics, record.preset):
                    rec_totals[v.verdict] += 1
                    rec_lines.append(f"| {_link(chapter, claims)} | `{record.preset}` "
                                     f"| {_cell(v.claim.statement)} | {_paper(v)} "
                                     f"| {_measured(v, why=False)} | {BADGE[v.verdict]} |")
        if len(rec_lines) > 2:
            text += ("\n## Recorded runs at other presets\n\n"
                     "Runs this build did not repeat, kept in `data/records/` with their "
                     "provenance "
                     "(each chapter's page says where and when it ran), checked again against "
                     f"today's claims: **{rec_totals[PASS]} pass, {rec_totals[FAIL]} fail, "
                     f"{rec_totals[NOT_RUN]} not run**.\n\n" + "\n".join(rec_lines) + "\n")
        return self.parse(text)

    def per_chapter(self) -> str:
        """One row per chapter: its verdicts at this build's preset and its negative controls."""
        rows = ["| chapter | pass | fail | not run | negative controls |", "|---|---|---|---|---|"]
        for chapter in all_chapters(self.srcdir):
            claims = ChapterClaims.load(chapter.claims_path)
            metrics, provenance = load_run(chapter.folder)
            preset = (provenance or {}).get("preset", self.preset)
            verdicts = [v.verdict for v in check_all(claims, metrics, preset)]
            rows.append(f"| {_link(chapter, claims)} | {verdicts.count(PASS)} "
                        f"| {verdicts.count(FAIL)} | {verdicts.count(NOT_RUN)} "
                        f"| {controls_summary(chapter, claims)} |")
        return "\n".join(rows)


def controls_summary(chapter, claims: ChapterClaims) -> str:
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


class ReadingList(_MarkdownDirective):
    def run(self):
        catalog = yaml.safe_load((self.srcdir / "data" / "papers.yaml").read_text())
        papers = catalog["papers"] if isinstance(catalog, dict) else catalog
        themes = (catalog.get("themes", {}) if isinstance(catalog, dict) else {})
        chapters = {c.slug: c for c in all_chapters(self.srcdir)}
        by_theme = defaultdict(list)
        for paper in papers:
            by_theme[paper["theme"]].append(paper)
        reproduced = sum(p["id"] in chapters for p in papers)
        out = [f"{len(papers)} works in {len(by_theme)} themes; {reproduced} reproduced so far.\n"]
        ordered = [t for t in themes if t in by_theme] + sorted(set(by_theme) - set(themes))
        for theme in ordered:
            title = themes.get(theme, theme.replace("-", " ").capitalize())
            out.append(f"## {title}\n")
            out.append("| paper | year | relevance | class | chapter |")
            out.append("|---|---|---|---|---|")
            order = {"high": 0, "medium": 1, "low": 2}
            for p in sorted(
                by_theme[theme], key=lambda p: (order.get(p["relevance"], 3), p["title"])
            ):
                chapter = chapters.get(p["id"])
                where = (f"[chapter](/chapters/{chapter.folder.name}/index.md)" if chapter
                         else "not yet reproduced")
                out.append(f"| {_cell(p['title'])} | {p.get('year') or '—'} | {p['relevance']} "
                           f"| {p['class']} | {where} |")
            out.append("")
        return self.parse("\n".join(out))


def setup(app):
    app.add_config_value("repro_preset", "quick", "env")
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("claims-dashboard", ClaimsDashboard)
    app.add_directive("reading-list", ReadingList)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
