"""Negative controls: a planted bug must make its claims fail (caught), the runner says when it
does not (survived) or when the planted run broke (error), and nothing in the book is written."""

from __future__ import annotations

import json

import pytest

from repro.machinery.chapters import find_chapter
from repro.machinery.claims import ChapterClaims, ClaimsError
from repro.machinery.cli import main
from repro.machinery.controls import CAUGHT, ERROR, SURVIVED, load_report, plant, run_controls

CONTROLS = """
controls:
  - id: flipped
    what: the two methods swapped, so a is no longer below b
    cell: |
      flip = True
    must_fail: [ordered]
  - id: harmless
    what: a change the claims cannot see (the noise level is not measured)
    cell: |
      sigma = 0.0
    must_fail: [ordered]
  - id: crash
    what: a bug that stops the run before it measures anything
    cell: |
      raise RuntimeError("planted crash")
    must_fail: [bounded]
"""


@pytest.fixture
def controlled_book(mini_book):
    claims = mini_book / "chapters" / "01-mini-chapter" / "claims.yaml"
    claims.write_text(claims.read_text() + CONTROLS)
    return mini_book


def snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "_build" not in p.parts}


def test_each_control_is_caught_survives_or_errors_and_the_book_is_untouched(controlled_book):
    before = snapshot(controlled_book)
    results = run_controls(find_chapter("mini-chapter"), jobs=2, log=lambda _: None)
    outcome = {r.control.id: r for r in results}
    assert [r.control.id for r in results] == ["flipped", "harmless", "crash"]  # claims.yaml order
    assert outcome["flipped"].outcome == CAUGHT and "ordered" in outcome["flipped"].failed
    assert outcome["harmless"].outcome == SURVIVED and outcome["harmless"].missed == ["ordered"]
    assert outcome["crash"].outcome == ERROR and "planted crash" in outcome["crash"].detail
    assert snapshot(controlled_book) == before
    report = load_report(find_chapter("mini-chapter"), "quick")
    assert [c["outcome"] for c in report["controls"]] == [CAUGHT, SURVIVED, ERROR]


def test_the_command_prints_the_table_and_exits_1_when_a_control_survives(controlled_book,
                                                                           capsys):
    assert main(["controls", "mini-chapter", "--control", "flipped"]) == 0
    out = capsys.readouterr().out
    assert "flipped" in out and "caught" in out and "1 of 1 controls caught" in out
    assert main(["controls", "mini-chapter", "--control", "harmless"]) == 1
    assert "survived (still passing or not run: ordered)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["controls", "mini-chapter", "--control", "nope"], "has no control nope"),
    (["controls", "no-such-chapter"], "no-such-chapter"),
    (["controls", "mini-chapter", "-p", "steps=many"], "steps"),
])
def test_bad_input_is_refused_with_one_line(controlled_book, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_chapter_without_controls_is_refused(mini_book, capsys):
    assert main(["controls", "mini-chapter"]) == 2
    assert "lists no controls" in capsys.readouterr().err


def test_a_control_must_name_existing_claims(controlled_book):
    claims = controlled_book / "chapters" / "01-mini-chapter" / "claims.yaml"
    claims.write_text(claims.read_text().replace("must_fail: [bounded]", "must_fail: [nope]"))
    with pytest.raises(ClaimsError, match="names unknown claims: nope"):
        ChapterClaims.load(claims)


def test_the_control_cell_runs_after_the_parameters(controlled_book, tmp_path):
    chapter = find_chapter("mini-chapter")
    control = ChapterClaims.load(chapter.claims_path).controls[0]
    planted = json.loads(plant(chapter.experiments, control, tmp_path / "p.ipynb").read_text())
    tags = [c["metadata"].get("tags", []) for c in planted["cells"]]
    at = tags.index(["parameters"])
    assert tags[at + 1] == ["control"]
    assert "flip = True" in "".join(planted["cells"][at + 1]["source"])
