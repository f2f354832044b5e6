"""Records of paper-scale runs: only finished, committed, non-quick runs become records; a record
holds metrics and provenance (no verdicts: those are checked again at every build)."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import REPRO
from repro.machinery.claims import ChapterClaims
from repro.machinery.records import load_records
from repro.machinery.runner import portable_command
from repro.machinery.sphinxext import _record_section


def repro(*args, cwd=None):
    return subprocess.run([REPRO, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.parts)


def test_a_paper_run_becomes_a_record_checked_again_from_its_metrics(committed_book):
    out = committed_book / "runs" / "paper"
    done = repro("run", "mini-chapter", "--preset", "paper", "--out", str(out), "--no-progress")
    assert done.returncode == 1, done.stderr      # a claim failed: still a finished run
    done = repro("record", str(out))
    assert done.returncode == 0, done.stderr
    target = committed_book / "data" / "records" / "mini-chapter" / "paper"
    assert sorted(p.name for p in target.iterdir()) == ["metrics.json", "provenance.json"]
    provenance = json.loads((target / "provenance.json").read_text())
    assert provenance["parameters"]["steps"] == 5
    # the record travels: no path of the recording machine (the run folder was given absolute)
    assert provenance["command"][:2] == ["repro", "run"]
    assert "runs/paper" in provenance["command"]
    assert str(committed_book) not in json.dumps(provenance)

    [record] = load_records("mini-chapter", committed_book)
    assert record.preset == "paper"
    claims = ChapterClaims.load(committed_book / "chapters" / "01-mini-chapter" / "claims.yaml")
    text = _record_section(claims, record)
    assert "Recorded run at the `paper` preset" in text
    # 'ordered' holds in the run; 'big-only' is a paper claim whose metric the run never wrote
    assert '<span class="repro-statement">a is below b.</span>' in text
    assert "✓</span> pass</span>" in text and "✗</span> FAIL</span>" in text
    assert "x stays under" in text and "–</span> not run</span>" in text   # a quick-only claim

    # a second record of the same preset needs --replace; nothing changes without it
    before = (target / "metrics.json").read_text()
    done = repro("record", str(out))
    assert done.returncode == 2 and "--replace" in done.stderr
    assert (target / "metrics.json").read_text() == before
    assert repro("record", str(out), "--replace").returncode == 0


@pytest.mark.parametrize("case, message", [
    ("quick", "executed again by every build"),
    ("dirty", "uncommitted changes"),
    ("failed", "did not finish"),
    ("empty", "not a run folder"),
])
def test_what_cannot_become_a_record_is_refused_and_nothing_is_written(committed_book, case,
                                                                      message):
    out = committed_book / "runs" / case
    if case == "quick":
        assert repro("run", "mini-chapter", "--out", str(out), "--no-progress").returncode == 0
    elif case == "dirty":
        (committed_book / "chapters" / "01-mini-chapter" / "notes.md").write_text("draft\n")
        assert repro("run", "mini-chapter", "--preset", "paper", "--out", str(out),
                     "--no-progress").returncode == 1
    elif case == "failed":              # diverges: lr 10 over 5 steps overflows the loss
        assert repro("run", "mini-chapter", "--preset", "paper", "-p", "lr=10", "--out", str(out),
                     "--no-progress").returncode == 3
    else:
        out.mkdir(parents=True)
    before = snapshot(committed_book / "data")
    done = repro("record", str(out))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert snapshot(committed_book / "data") == before


def test_a_command_line_is_written_without_the_recording_machines_paths(tmp_path):
    root = tmp_path / "book"
    (root / "runs").mkdir(parents=True)
    argv = [str(root / ".venv" / "bin" / "repro"), "run", "ch", "-p", "lr=0.1",
            "--out", str(root / "runs" / "x"), f"--out={root}/runs/y", "/elsewhere/scratch/z"]
    assert portable_command(argv, root) == ["repro", "run", "ch", "-p", "lr=0.1", "--out",
                                            "runs/x", "--out=runs/y", ".../z"]
    # run as `python -m repro.machinery.cli` (no console script, as on a machine that only has
    # the sources on its path): still `repro`
    module = [str(root / "lib" / "repro" / "machinery" / "cli.py"), "record", "runs/x"]
    assert portable_command(module, root) == ["repro", "record", "runs/x"]
