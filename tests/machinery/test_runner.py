"""The runner: bad input is refused before anything is written; a good run leaves a complete
record; a failing or diverging run leaves a record marked failed and no metrics.json."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import REPRO, ROOT
from repro.machinery.chapters import BadInput, find_chapter
from repro.machinery.cli import main


def repro(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([REPRO, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["run", "no-such-chapter"], "unknown chapter 'no-such-chapter'; choose from: mini-chapter"),
    (["run", "mini-chapter", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "mini-chapter", "-p", "nope=1"], "unknown parameter 'nope'"),
    (["run", "mini-chapter", "-p", "steps=1.5"], "takes an int; '1.5' is not one"),
    (["run", "mini-chapter", "-p", "lr=fast"], "takes a float"),
    (["run", "mini-chapter", "-p", "flip=maybe"], "takes a bool"),
    (["run", "mini-chapter", "-p", "lr=-0.1"], "'lr' must lie in (0, inf)"),
    (["run", "mini-chapter", "-p", "sigma=-1"], "'sigma' must lie in [0, inf)"),
    (["run", "mini-chapter", "-p", "steps=0"], "'steps' must lie in [1, inf)"),
    (["run", "mini-chapter", "-p", "lr"], "-p takes name=value"),
    (["run", "mini-chapter", "-p", "preset=paper"], "set by the runner"),
    (["book", "--preset", "huge"], "unknown preset 'huge'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_refused_with_one_line_and_writes_nothing(mini_book, capsys, args, message):
    before = sorted(p for p in mini_book.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1, err  # one line
    assert sorted(p for p in mini_book.rglob("*")) == before


def test_an_existing_run_folder_is_never_overwritten(mini_book, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier run")
    assert main(["run", "mini-chapter", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_list_shows_presets_parameters_types_and_defaults(mini_book, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mini-chapter" in out and "presets: quick, paper" in out
    assert "steps: int = 3 in [1, inf)  number of steps  [paper: 5]" in out


def test_presets_resolve_in_order_defaults_preset_overrides(mini_book):
    chapter = find_chapter("mini-chapter")
    assert chapter.resolve("quick", {})["steps"] == 3
    assert chapter.resolve("paper", {})["steps"] == 5
    assert chapter.resolve("paper", {"steps": "7"})["steps"] == 7
    with pytest.raises(BadInput):
        chapter.resolve("paper", {"steps": "x"})


def test_a_good_run_writes_notebook_metrics_verdicts_and_provenance(mini_book, tmp_path):
    out = tmp_path / "run"
    done = repro("run", "mini-chapter", "-p", "sigma=0.25", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "experiments.ipynb", "metrics.json", "provenance.json", "verdicts.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["sigma"] == 0.25  # the override reached the notebook
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "ok" and provenance["preset"] == "quick"
    assert provenance["parameters"]["sigma"] == 0.25
    assert provenance["overrides"] == {"sigma": "0.25"}
    assert {"commit", "dirty"} <= set(provenance["git"])
    assert {"device", "python", "torch", "numpy"} <= set(provenance["environment"])
    # every distribution the notebook imported, with the version the kernel saw
    from importlib.metadata import version
    assert provenance["packages"]["numpy"] == version("numpy")
    assert provenance["wall_time_s"] > 0 and provenance["started"]
    verdicts = {v["id"]: v["verdict"] for v in json.loads((out / "verdicts.json").read_text())}
    assert verdicts == {"ordered": "pass", "bounded": "pass", "big-only": "not run"}
    assert "ordered" in done.stdout and "2 pass, 0 fail, 1 not run" in done.stdout


def test_a_failing_claim_gives_exit_status_1(mini_book, tmp_path):
    done = repro("run", "mini-chapter", "-p", "flip=true", "--out", str(tmp_path / "r"),
                 "--no-progress")
    assert done.returncode == 1
    assert "1 pass, 1 fail, 1 not run" in done.stdout


def test_a_diverging_run_is_marked_failed_and_leaves_no_metrics(mini_book, tmp_path):
    out = tmp_path / "run"
    done = repro("run", "mini-chapter", "-p", "lr=1e6", "--out", str(out), "--no-progress")
    assert done.returncode == 3
    assert "run failed: Diverged: loss became non-finite at step" in done.stderr
    assert not (out / "metrics.json").exists()
    assert not list(out.glob(".*partial*"))
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "failed" and "Diverged" in provenance["error"]


# --- the real chapter: refusals cost nothing; one small run goes end to end ---------------------




@pytest.mark.parametrize("args, message", [
    (["-p", "quad_lr=-0.01"], "'quad_lr' must lie in (0, inf)"),
    (["-p", "quad_sigma=-0.1"], "'quad_sigma' must lie in [0, inf)"),
    (["-p", "valley_seeds=many"], "'valley_seeds' takes an int"),
    (["-p", "learning_rate=0.1"], "unknown parameter 'learning_rate'"),
    (["--preset", "laptop"], "unknown preset 'laptop' for anticorrelated-noise-injection"),
])
def test_the_chapter_refuses_bad_input(monkeypatch, tmp_path, capsys, args, message):
    monkeypatch.setenv("REPRO_ROOT", str(ROOT))
    out = tmp_path / "run"
    assert main(["run", "anticorrelated-noise-injection", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_the_chapter_reruns_with_overrides(tmp_path):
    """`repro run CHAPTER -p ...` as a researcher would: a new notebook, metrics and verdicts."""
    out = tmp_path / "run"
    small = ["valley_seeds=16", "valley_steps=2000", "quad_seeds=4", "quad_steps=1500",
             "quad_noise_steps=1000", "quad_sigma_grid=0.05", "mnist_seeds=2", "mnist_steps=300",
             "mnist_noise_steps=200", "mnist_probes=4"]
    args = [a for s in small for a in ("-p", s)]
    done = subprocess.run([REPRO, "run", "anticorrelated-noise-injection", *args, "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "REPRO_ROOT": str(ROOT)})
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a claim failed at this tiny size
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "ok"
    assert provenance["parameters"]["valley_steps"] == 2000
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["valley"]["u2"]["anti_pgd"]) == 16  # one value per seed
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert {v["verdict"] for v in verdicts} <= {"pass", "fail", "not run"}
    assert sum(v["verdict"] == "not run" for v in verdicts) == 2  # the CIFAR claims
    assert "pass," in done.stdout and "[quick]" in done.stdout


def test_a_diverging_chapter_run_says_where_and_writes_no_metrics(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([REPRO, "run", "anticorrelated-noise-injection", "-p", "valley_steps=200",
                           "-p", "quad_lr=3", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "REPRO_ROOT": str(ROOT)})
    assert done.returncode == 3
    assert "Diverged: quadratic regression loss" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["experiments.ipynb", "provenance.json"]
    assert json.loads((out / "provenance.json").read_text())["status"] == "failed"


def test_a_kernel_that_dies_while_starting_is_started_again(monkeypatch, tmp_path):
    """Kernels started side by side can race for a port; the runner retries, then gives up."""
    import papermill

    from repro.machinery.runner import RunFailed, execute_notebook

    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    execute_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb", attempts=3)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(RunFailed, match="the kernel failed"):
        execute_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb", attempts=2)
    assert len(calls) == 2


def _kernel_children() -> list[int]:
    """Processes of this test whose command line runs a Jupyter kernel."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"ipykernel" in cmdline:
            found.append(int(entry))
    return found


def test_an_executed_notebook_leaves_no_kernel_running(tmp_path):
    """The runner gives papermill a kernel manager of its own, which nbclient does not shut down:
    the runner must, or every notebook of a build leaves a kernel of hundreds of MB behind."""
    import nbformat

    from repro.machinery.runner import RunFailed, execute_notebook

    good = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), good)
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), bad)
    execute_notebook(good, tmp_path / "out.ipynb")
    imports = execute_notebook(good, tmp_path / "out2.ipynb", record_imports=True)
    assert imports.modules == [] and "ipykernel" in imports.packages   # the kernel's own
    with pytest.raises(RunFailed):
        execute_notebook(bad, tmp_path / "out3.ipynb")
    assert _kernel_children() == []
