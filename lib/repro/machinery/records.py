"""Records of runs a laptop cannot repeat.

The book's own build runs every chapter at one preset (``quick`` in CI). A run at another preset,
the paper's scale on a GPU say, is kept as a *record*: its ``metrics.json`` and
``provenance.json`` in ``data/records/<chapter>/<preset>/``, committed without the executed
notebook. The chapter page then shows the record's verdicts next to the build's own. Verdicts are
not stored: they are checked again from the recorded metrics against the chapter's current
``claims.yaml`` whenever the book is built, so a changed claim or tolerance shows at once.

Only honest runs become records: one that finished (status ``ok``) from a committed tree (so its
commit says exactly which code produced it), at a preset other than ``quick`` (which every build
runs again anyway).

Used by: `repro record` and the Sphinx extension.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from repro import paths
from repro.machinery.chapters import BadInput, Chapter, find_chapter
from repro.machinery.engine import write_folder_atomic
from repro.machinery.runner import portable_command

FILES = ("metrics.json", "provenance.json")


@dataclass
class Record:
    chapter: str        # slug
    preset: str
    metrics: dict
    provenance: dict

    @property
    def non_default_parameters(self) -> dict:
        """The parameters the run set on the command line (``-p``), beyond its preset."""
        return dict(self.provenance.get("overrides") or {})


def records_dir(root: Path | None = None) -> Path:
    return (root or paths.root()) / "data" / "records"


def save_record(run_folder: Path, replace: bool = False, root: Path | None = None) -> Path:
    """Copy a finished run's metrics and provenance into ``data/records/<chapter>/<preset>/``.

    Refuses (BadInput, nothing written) a folder that is not a finished run, a run from
    uncommitted changes, a ``quick`` run, and an existing record unless ``replace``."""
    run_folder = Path(run_folder)
    provenance_path = run_folder / "provenance.json"
    if not provenance_path.is_file():
        raise BadInput(f"{run_folder} is not a run folder (no provenance.json); "
                       "make one with `repro run`")
    provenance = json.loads(provenance_path.read_text())
    if provenance.get("status") != "ok" or not (run_folder / "metrics.json").is_file():
        raise BadInput(f"the run in {run_folder} did not finish (status "
                       f"{provenance.get('status')!r}); only finished runs are recorded")
    chapter: Chapter = find_chapter(str(provenance.get("chapter")), root)
    preset = provenance.get("preset")
    if preset not in chapter.presets:
        raise BadInput(f"the run's preset {preset!r} is not a preset of {chapter.slug}")
    if preset == "quick":
        raise BadInput("quick runs are executed again by every build of the book; records are for "
                       "presets a laptop cannot repeat")
    git = provenance.get("git") or {}
    if not git.get("commit") or git.get("dirty") is not False:
        raise BadInput("the run was made from uncommitted changes (or outside git), so no commit "
                       "says which code produced it; commit and run again")
    target = records_dir(root) / chapter.slug / preset
    if target.exists() and not replace:
        raise BadInput(f"a record already exists in {target}; pass --replace to replace it")
    # a run made by an older version may hold the recording machine's absolute paths
    provenance["command"] = portable_command(list(provenance.get("command") or []),
                                             root or paths.root())
    # written beside the target, then swapped in: a failure leaves the old record (or none)
    write_folder_atomic({"metrics.json": (run_folder / "metrics.json").read_bytes(),
                         "provenance.json": (json.dumps(provenance, indent=2, sort_keys=True)
                                             + "\n").encode()}, target)
    return target


def load_records(slug: str, root: Path | None = None) -> list[Record]:
    """The records of one chapter, ordered by preset name."""
    folder = records_dir(root) / slug
    out = []
    if not folder.is_dir():
        return out
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if all((sub / name).is_file() for name in FILES):
            out.append(Record(slug, sub.name, json.loads((sub / "metrics.json").read_text()),
                              json.loads((sub / "provenance.json").read_text())))
    return out
