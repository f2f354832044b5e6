"""A Sphinx extension for the book's generated pages.

Directives (used from MyST markdown):

``claims-table``      in a chapter's index.md: the chapter's claims with the paper's value, this
                      build's measurement and the verdict, from ``run/metrics.json`` beside it.
``claims-dashboard``  every chapter's verdicts on one page.
``reading-list``      the catalog of papers (``data/papers.yaml``) grouped by theme, each linked
                      to its chapter or marked as not yet reproduced.

The directives write MyST markdown and parse it in place, so the tables look like any other.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from repro.chapters import all_chapters
from repro.claims import FAIL, NOT_RUN, PASS, ChapterClaims, check_all

BADGE = {PASS: "**pass**", FAIL: "**FAIL**", NOT_RUN: "*not run*"}


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: no pipes, newlines or emphasis markers."""
    text = str(text).replace("\n", " ")
    for special in ("\\", "|", "*", "_", "`"):
        text = text.replace(special, "\\" + special)
    return text


def load_run(folder: Path) -> tuple[dict | None, dict | None]:
    metrics = folder / "run" / "metrics.json"
    provenance = folder / "run" / "provenance.json"
    return (json.loads(metrics.read_text()) if metrics.exists() else None,
            json.loads(provenance.read_text()) if provenance.exists() else None)


class _MarkdownDirective(SphinxDirective):
    has_content = False

    def parse(self, text: str) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(self.content.__class__(text.splitlines(), source=self.get_source_info()[0]),
                                self.content_offset, container)
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
            measured = v.measured + (f" ({v.detail})" if v.verdict == FAIL and v.detail else "")
            lines.append(
                f"| {_cell(v.claim.statement)} | {_cell(v.claim.where)} "
                f"| {_cell(v.claim.paper or v.claim.describe_check())} | {_cell(measured)} "
                f"| {BADGE[v.verdict]} |"
            )
        if provenance:
            commit = (provenance.get("git") or {}).get("commit") or "unknown"
            dirty = " (uncommitted changes)" if (provenance.get("git") or {}).get("dirty") else ""
            env = provenance.get("environment", {})
            note = (f"Measured at the `{preset}` preset on {env.get('device', '?')} in "
                    f"{provenance.get('wall_time_s', '?')} s, commit `{str(commit)[:10]}`{dirty}, "
                    f"torch {env.get('torch', '?')}.")
        else:
            note = "This build ran no experiments, so every claim is *not run*."
        return self.parse("\n".join(lines) + "\n\n" + note + "\n")


class ClaimsDashboard(_MarkdownDirective):
    def run(self):
        lines = ["| chapter | claim | paper | this run | verdict |", "|---|---|---|---|---|"]
        totals = defaultdict(int)
        for chapter in all_chapters(self.srcdir):
            claims = ChapterClaims.load(chapter.claims_path)
            metrics, provenance = load_run(chapter.folder)
            preset = (provenance or {}).get("preset", self.preset)
            link = f"[{_cell(claims.paper.get('short', chapter.slug))}](/chapters/{chapter.folder.name}/index.md)"
            for v in check_all(claims, metrics, preset):
                totals[v.verdict] += 1
                lines.append(f"| {link} | {_cell(v.claim.statement)} "
                             f"| {_cell(v.claim.paper or v.claim.describe_check())} "
                             f"| {_cell(v.measured)} | {BADGE[v.verdict]} |")
        summary = (f"**{totals[PASS]} pass, {totals[FAIL]} fail, {totals[NOT_RUN]} not run** "
                   f"at the `{self.preset}` preset.")
        return self.parse(summary + "\n\n" + "\n".join(lines) + "\n")


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
            for p in sorted(by_theme[theme], key=lambda p: (order.get(p["relevance"], 3), p["title"])):
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
