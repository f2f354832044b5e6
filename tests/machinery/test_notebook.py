"""``finish``, the last cell of every experiments notebook: it finds its chapter from the folder it
runs in, saves the metrics for the runner and returns the verdicts; where it cannot tell the
chapter, it says so before writing anything. (Executed by the runner, it is tested end to end by
test_runner's good run of the miniature chapter.)"""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import ROOT
from repro.machinery import Chapter, NoChapter, all_chapters, finish
from repro.machinery.chapters import chapter_at

METRICS = {"run": {"score": {"a": [1.0, 1.1], "b": 2.0}, "x": [0.5, 0.7], "limit": 1.0}}
FINISH_CELL = "from repro.machinery import finish\n\nfinish(metrics, metrics_path, preset)"


def verdicts(table) -> dict[str, str]:
    return {v.claim.id: v.verdict for v in table.verdicts}


def test_finish_in_the_chapter_folder_saves_metrics_and_returns_the_verdicts(mini_book, tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(mini_book / "chapters" / "01-mini-chapter")
    target = tmp_path / "metrics.json"
    table = finish(METRICS, str(target), "quick")
    assert json.loads(target.read_text()) == METRICS
    assert verdicts(table) == {"ordered": "pass", "bounded": "pass", "big-only": "not run"}
    assert "2 pass, 0 fail, 1 not run" in table._repr_markdown_()


def test_finish_run_by_hand_writes_nothing(mini_book, monkeypatch):
    """By hand, metrics_path is the parameter cell's empty default."""
    monkeypatch.chdir(mini_book / "chapters" / "01-mini-chapter")
    before = sorted(mini_book.rglob("*"))
    assert verdicts(finish(METRICS, "", "paper"))["big-only"] == "fail"  # measured at paper only
    assert sorted(mini_book.rglob("*")) == before


def test_finish_from_a_folder_inside_the_chapter(mini_book, monkeypatch):
    inside = mini_book / "chapters" / "01-mini-chapter" / "figures"
    inside.mkdir()
    monkeypatch.chdir(inside)
    assert verdicts(finish(METRICS, "", "quick"))["ordered"] == "pass"


def test_finish_outside_a_chapter_says_so_and_writes_nothing(mini_book, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "metrics.json"
    with pytest.raises(NoChapter, match=r"cannot tell which chapter .* pass chapter="):
        finish(METRICS, str(target), "quick")
    assert not target.exists()


def test_a_chapter_given_by_name_wins_over_the_working_directory(mini_book, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert verdicts(finish(METRICS, "", "quick", chapter="mini-chapter"))["bounded"] == "pass"


def test_chapter_at_needs_a_numbered_folder_with_claims_under_chapters(tmp_path):
    loose = tmp_path / "01-loose"  # right name, but not under chapters/
    loose.mkdir()
    (loose / "claims.yaml").write_text("claims: []\n")
    assert chapter_at(loose) is None
    unclaimed = tmp_path / "chapters" / "02-unclaimed"  # under chapters/, but no claims.yaml
    unclaimed.mkdir(parents=True)
    assert chapter_at(unclaimed) is None
    assert chapter_at(tmp_path / "chapters") is None


@pytest.mark.parametrize("chapter", all_chapters(ROOT), ids=lambda c: c.slug)
def test_each_real_chapter_is_found_from_its_folder_and_ends_with_finish(chapter: Chapter):
    assert chapter_at(chapter.folder) == chapter
    last = nbformat.read(chapter.experiments, as_version=4).cells[-1]
    assert last.cell_type == "code" and last.source == FINISH_CELL
