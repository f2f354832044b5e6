"""The chapters on disk: where they are, what parameters they take, what presets they offer.

A chapter is a folder ``chapters/NN-slug/`` with ``claims.yaml``. Its experiments notebook's
cell tagged ``parameters`` is the single source of its parameters: each line
``name: type = default  # what it is; (0, inf)`` gives the name, the type, the quick-preset
default, a help text and an optional constraint: an interval such as ``(0, inf)``, ``[0, inf)``,
``[1, inf)`` or ``[0, 1]`` (written without "=", which papermill's own parser cannot read in a
comment). ``presets.yaml`` holds the overrides of the other presets.

Used by: every other machinery module and by `repro list`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import nbformat
import yaml

from repro import paths

NOTEBOOKS = ("derivation.ipynb", "experiments.ipynb", "exercises.ipynb")
DEFAULT_PRESET = "quick"
# Parameters the runner sets itself; a user may not pass them with -p.
RUNNER_PARAMETERS = ("preset", "metrics_path")

_FOLDER = re.compile(r"^(\d+)-([a-z0-9][a-z0-9-]*)$")
_NUMBER = r"-?(?:inf|[0-9][0-9.eE+-]*|\.[0-9][0-9eE+-]*)"
_CONSTRAINT = re.compile(rf";\s*([\[(])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([\])])\s*$")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_ARTICLE = {"int": "an", "float": "a", "str": "a", "bool": "a"}


class BadInput(ValueError):
    """Input the runner refuses before anything executes; the message is one line."""


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    closed_low: bool
    closed_high: bool

    def contains(self, value: float) -> bool:
        above = value >= self.low if self.closed_low else value > self.low
        below = value <= self.high if self.closed_high else value < self.high
        return above and below

    def __str__(self) -> str:
        def show(x: float) -> str:
            return "inf" if x == float("inf") else "-inf" if x == float("-inf") else f"{x:g}"

        return (f"{'[' if self.closed_low else '('}{show(self.low)}, {show(self.high)}"
                f"{']' if self.closed_high else ')'}")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # int, float, str or bool
    default: Any
    help: str = ""
    constraint: Interval | None = None

    def parse(self, text: str) -> Any:
        """Turn a command-line string into a value of this parameter's type, or raise BadInput."""
        try:
            if self.type == "bool":
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Any = lowered in ("true", "1", "yes")
            elif self.type == "int":
                value = int(text)
            elif self.type == "float":
                value = float(text)
            else:
                value = text
        except ValueError:
            raise BadInput(
                f"parameter {self.name!r} takes {_ARTICLE[self.type]} {self.type}; "
                f"{text!r} is not one"
            ) from None
        self.validate(value)
        return value

    def validate(self, value: Any) -> None:
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        expected = _TYPES[self.type]
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise BadInput(
                f"parameter {self.name!r} takes {_ARTICLE[self.type]} {self.type}; got {value!r}"
            )
        if self.type in ("int", "float") and value != value:  # NaN
            raise BadInput(f"parameter {self.name!r} must be a number; got {value!r}")
        if self.constraint and not self.constraint.contains(value):
            raise BadInput(f"parameter {self.name!r} must lie in {self.constraint}; got {value!r}")


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    folder: Path

    @property
    def claims_path(self) -> Path:
        return self.folder / "claims.yaml"

    @property
    def experiments(self) -> Path:
        return self.folder / "experiments.ipynb"

    def notebooks(self) -> list[Path]:
        return [self.folder / name for name in NOTEBOOKS if (self.folder / name).exists()]

    @cached_property
    def parameters(self) -> dict[str, Parameter]:
        return notebook_parameters(self.experiments)

    @cached_property
    def presets(self) -> dict[str, dict[str, Any]]:
        """Preset name -> parameter overrides; ``quick`` is the notebook's own defaults."""
        path = self.folder / "presets.yaml"
        raw = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
        presets = {DEFAULT_PRESET: {}}
        for name, overrides in raw.items():
            presets[str(name)] = dict(overrides or {})
        for name, overrides in presets.items():
            for key, value in overrides.items():
                if key not in self.parameters:
                    raise BadInput(f"{path}: preset {name!r} sets unknown parameter {key!r}")
                self.parameters[key].validate(value)
        return presets

    def resolve(self, preset: str, overrides: dict[str, str]) -> dict[str, Any]:
        """The parameters a run gets: notebook defaults, then the preset, then -p overrides."""
        if preset not in self.presets:
            raise BadInput(
                f"unknown preset {preset!r} for {self.slug}; choose from: {', '.join(self.presets)}"
            )
        values = {name: p.default for name, p in self.parameters.items()}
        values.update(self.presets[preset])
        for name, text in overrides.items():
            if name in RUNNER_PARAMETERS:
                raise BadInput(f"parameter {name!r} is set by the runner; use --preset / --out")
            if name not in self.parameters:
                raise BadInput(
                    f"unknown parameter {name!r} for {self.slug}; choose from: "
                    + ", ".join(n for n in self.parameters if n not in RUNNER_PARAMETERS)
                )
            values[name] = self.parameters[name].parse(text)
        values["preset"] = preset
        return values


def notebook_parameters(notebook: Path) -> dict[str, Parameter]:
    """Read the cell tagged ``parameters``: ``name: type = default  # help; > 0`` per line."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    source = cells[0].source
    lines = source.splitlines()
    found: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        kind = ast.unparse(node.annotation)
        if kind not in _TYPES:
            raise ValueError(f"{notebook}: parameter {node.target.id} has unsupported type {kind}")
        default = ast.literal_eval(node.value) if node.value is not None else None
        line = lines[node.lineno - 1]
        help_text = line.split("#", 1)[1].strip() if "#" in line else ""
        constraint = None
        match = _CONSTRAINT.search(help_text)
        if match:
            constraint = Interval(float(match.group(2)), float(match.group(3)),
                                  match.group(1) == "[", match.group(4) == "]")
            help_text = help_text[: match.start()].strip()
        elif re.search(r";\s*[<>]", help_text):
            raise ValueError(f"{notebook}: parameter {node.target.id}: write its range as an "
                             "interval such as (0, inf) or [0, inf)")
        found[node.target.id] = Parameter(node.target.id, kind, default, help_text, constraint)
    return found


def _as_chapter(path: Path) -> Chapter | None:
    """The chapter in folder ``path``, if it is one: named ``NN-slug`` and holding claims.yaml."""
    match = _FOLDER.match(path.name)
    if match and (path / "claims.yaml").exists():
        return Chapter(int(match.group(1)), match.group(2), path)
    return None


def all_chapters(root: Path | None = None) -> list[Chapter]:
    folder = (root or paths.root()) / "chapters"
    found = [_as_chapter(path) for path in sorted(folder.iterdir())] if folder.is_dir() else []
    return [chapter for chapter in found if chapter]


def chapter_at(path: str | Path) -> Chapter | None:
    """The chapter whose folder is ``path`` or holds it (``chapters/NN-slug/...``), else None.

    Read from the path alone, not from ``paths.root()``: a notebook executed in one checkout of
    the book belongs to that checkout's chapter, whichever checkout the package came from."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if folder.parent.name == "chapters" and (chapter := _as_chapter(folder)):
            return chapter
    return None


def find_chapter(name: str, root: Path | None = None) -> Chapter:
    """A chapter by slug (``anticorrelated-noise-injection``), folder name or number."""
    chapters = all_chapters(root)
    for chapter in chapters:
        if name in (chapter.slug, chapter.folder.name, str(chapter.number)):
            return chapter
    choices = ", ".join(c.slug for c in chapters) or "(none)"
    raise BadInput(f"unknown chapter {name!r}; choose from: {choices}")
