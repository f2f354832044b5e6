"""Student handouts: MyST exercise text as plain Jupyter markdown.

The chapters' exercises are written in MyST for Jupyter Book (sphinx-exercise directives,
sphinxcontrib-bibtex citations, labelled equations). Plain Jupyter shows a directive's fence as a
raw code block, so a student notebook gets its markdown converted first:

- ``{exercise} Title`` becomes a heading ``### Exercise N: Title`` followed by its body;
- ``{solution-start}`` and ``{solution-end}`` fences disappear (the text between them stays);
- admonitions (``{note}``, ``{tip}``, ``{admonition} Title``, ...) become blockquotes with a bold
  title, ``{math}`` becomes a ``$$`` display, ``{code-block} lang`` a plain code block, and any
  other directive its body;
- roles become text: ``{cite}`` the authors and year, ``{ref}`` / ``{numref}`` / ``{doc}`` the
  link text (or the label), ``{eq}`` a pointer to the equation, ``{math}`` inline ``$...$``;
- label lines ``(label)=`` disappear and ``$$ ... $$ (label)`` loses its label.

Code blocks that are not directives, and everything else, pass through unchanged.

Used by: `repro assign`, which decides which cells to convert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,}|~{3,})\s*(?P<info>.*?)\s*$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<arg>.*)$")
_OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*?)\s*$")
_TARGET = re.compile(r"^\s*\((?P<label>[^()\s]+)\)=\s*$")
_MATH_LABEL = re.compile(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
_ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:+.-]*)\}`(?P<content>[^`]*)`")
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "warning": "Warning",
               "important": "Important", "caution": "Caution", "attention": "Attention",
               "danger": "Danger", "error": "Error", "seealso": "See also"}
CODE_DIRECTIVES = ("code-block", "code", "sourcecode")


@dataclass(frozen=True)
class References:
    """Citation texts by bibtex key: ``key -> (authors, year)``."""

    works: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_bib(cls, path: Path | str) -> References:
        """Read a .bib file with pybtex; authors become "A", "A and B" or "A et al."."""
        from pybtex.database import parse_file
        from pybtex.richtext import Text

        def surname(person) -> str:
            return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as(
                "text")

        works = {}
        for key, entry in parse_file(str(path), bib_format="bibtex").entries.items():
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [surname(p) for p in people]
            if not names:
                authors = key
            elif len(names) > 2 or names[-1] == "others":
                authors = f"{names[0]} et al."
            else:
                authors = " and ".join(names)
            works[key] = (authors, entry.fields.get("year", ""))
        return cls(works)

    def cite(self, key: str, parenthetical: bool = False) -> str:
        """The text of a citation: "Orvieto et al. (2022)", or "Orvieto et al., 2022" when
        parenthetical; an unknown key reads as itself."""
        if key not in self.works:
            return key
        authors, year = self.works[key]
        if not year:
            return authors
        return f"{authors}, {year}" if parenthetical else f"{authors} ({year})"


def to_markdown(source: str, references: References, number: int | None = None) -> str:
    """Convert one markdown cell's MyST text to markdown that plain Jupyter renders well.

    ``number`` is the exercise's number in its heading (the next ones in the same cell, if any,
    count on from it); without it the heading reads "Exercise: Title".
    """
    converter = _Converter(references, number)
    return "\n".join(converter.lines(source.splitlines())).strip("\n")


class _Converter:
    def __init__(self, references: References, number: int | None):
        self.references = references
        self.number = number
        self.equations: set[str] = set()  # equation labels met so far, for {eq}

    # ---- blocks ---------------------------------------------------------------------------

    def lines(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            opening = _FENCE.match(line)
            if opening and not (opening["fence"][0] == "`" and "`" in opening["info"]):
                end = _closing(lines, i, opening["fence"])
                body = lines[i + 1:end]
                directive = _DIRECTIVE.match(opening["info"])
                if directive:
                    out += self.directive(directive["name"], directive["arg"], body,
                                          opening["indent"])
                else:
                    out += lines[i:end + 1]  # a code block: verbatim
                i = end + 1
                continue
            if not _TARGET.match(line):
                out.append(self.text(line))
            i += 1
        return out

    def directive(self, name: str, arg: str, body: list[str], indent: str) -> list[str]:
        options, body = _options(body)
        if name in ("solution-start", "solution-end", "exercise-end"):
            return []
        if name in CODE_DIRECTIVES:
            return [f"{indent}```{arg}", *body, f"{indent}```"]
        if name == "math":
            if "label" in options:
                self.equations.add(options["label"])
            return [f"{indent}$$", *([f"{indent}{arg}"] if arg else []), *body, f"{indent}$$"]
        if name in ("exercise", "exercise-start"):
            return [f"{indent}{self.heading(arg)}", "", *self.lines(body)]
        if name == "admonition" or name in ADMONITIONS:
            title = self.text(arg) if name == "admonition" else ADMONITIONS[name]
            if name != "admonition" and arg:
                body = [arg, *body]  # these take no title: the first line is content
            return _quote([f"**{title}**", "", *self.lines(body)], indent)
        return self.lines(body)

    def heading(self, title: str) -> str:
        label = "Exercise" if self.number is None else f"Exercise {self.number}"
        if self.number is not None:
            self.number += 1
        return f"### {label}: {self.text(title)}" if title else f"### {label}"

    # ---- inline ---------------------------------------------------------------------------

    def text(self, line: str) -> str:
        labelled = _MATH_LABEL.search(line)
        if labelled:
            self.equations.add(labelled["label"])
            line = line[:labelled.start()] + "$$"
        return _ROLE.sub(self.role, line)

    def role(self, match: re.Match) -> str:
        name, content = match["name"], match["content"]
        if name.startswith("cite"):
            keys = [k.strip() for k in content.split(",") if k.strip()]
            if name == "cite:p":
                return "(" + "; ".join(self.references.cite(k, True) for k in keys) + ")"
            return "; ".join(self.references.cite(k) for k in keys)
        if name == "math":
            return f"${content}$"
        explicit = _EXPLICIT.match(content)
        text, target = (explicit["text"], explicit["target"]) if explicit else ("", content)
        if name == "eq":
            return text or ("(the equation above)" if target in self.equations else f"({target})")
        if name == "numref":  # "Figure %s" or "Figure {number}": the label stands for the number
            text = text.replace("%s", target).replace("{number}", target)
        return text or target


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The index of the line closing the fence opened at ``start`` (or the last line)."""
    closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    for j in range(start + 1, len(lines)):
        if closing.match(lines[j]):
            return j
    return len(lines)


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split a directive's body into its options (``:key: value`` lines or a ``---`` block)
    and its content, without the blank line between them."""
    options: dict[str, str] = {}
    i = 0
    if body and body[0].strip() == "---":
        close = next((j for j in range(1, len(body)) if body[j].strip() == "---"), None)
        if close is not None:
            for line in body[1:close]:
                key, _, value = line.partition(":")
                options[key.strip()] = value.strip()
            i = close + 1
    while i < len(body) and _OPTION.match(body[i]):
        option = _OPTION.match(body[i])
        options[option["key"]] = option["value"]
        i += 1
    while i < len(body) and not body[i].strip():
        i += 1
    return options, body[i:]


def _quote(lines: list[str], indent: str) -> list[str]:
    """Lines as a markdown blockquote, at the directive's indentation."""
    def quoted(line: str) -> str:
        line = line[len(indent):] if line.startswith(indent) else line
        return f"{indent}> {line}" if line.strip() else f"{indent}>"

    return [quoted(line) for line in lines]
