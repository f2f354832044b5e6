"""The execution engine and `repro sweep`, with real processes on the loopback: a Dask scheduler
and workers started here, a worker killed in the middle of a sweep, a worker that runs other code,
bad grids refused before anything is submitted, a sweep that resumes, and the batch script
dask-jobqueue writes for a GPU preset."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import REPRO, git

DASK = str(Path(sys.executable).with_name("dask"))




class Cluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, each in a checkout."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.processes: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, args: list[str], root: Path) -> subprocess.Popen:
        env = {**os.environ, "REPRO_ROOT": str(root), "OMP_NUM_THREADS": "1",
               "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}
        log = open(self.folder / f"{name}.log", "wb")
        process = subprocess.Popen([DASK, *args], env=env, stdout=log, stderr=log,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def scheduler(self, root: Path) -> str:
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(self.file)], root)
        for _ in range(300):
            if self.file.exists() and self.file.stat().st_size:
                try:
                    return json.loads(self.file.read_text())["address"]
                except ValueError:
                    pass
            time.sleep(0.1)
        raise AssertionError("the scheduler did not start: "
                             + (self.folder / "scheduler.log").read_text()[-2000:])

    def worker(self, name: str, root: Path) -> subprocess.Popen:
        # no nanny: a killed worker stays dead, as a lost machine would
        return self._start(name, ["worker", "--scheduler-file", str(self.file), "--nthreads",
                                  "1", "--no-nanny", "--no-dashboard", "--name", name,
                                  "--host", "127.0.0.1"], root)

    def wait_for_workers(self, address: str, n: int) -> None:
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def cluster(tmp_path):
    folder = tmp_path / "cluster"
    folder.mkdir()
    c = Cluster(folder)
    yield c
    c.stop()


def sweep(*args, cwd=None, env=None):
    return subprocess.Popen([REPRO, "sweep", "mini-chapter", *args, "--no-progress"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def table(folder: Path) -> list[dict]:
    with open(folder / "sweep.csv") as f:
        return list(csv.DictReader(f))


def test_a_sweep_on_a_cluster_survives_a_worker_killed_mid_sweep(committed_book, cluster,
                                                                  tmp_path):
    address = cluster.scheduler(committed_book)
    cluster.worker("w1", committed_book)
    cluster.worker("w2", committed_book)
    cluster.wait_for_workers(address, 2)
    out = tmp_path / "sweep"
    running = sweep("-p", "lr=0.1,0.2", "-p", "steps=1..4", "--scheduler", address,
                    "--out", str(out))
    # kill one worker as soon as the first cell has come back
    for _ in range(1200):
        if out.exists() and any(p.is_dir() and not p.name.startswith(".") for p in out.iterdir()):
            break
        time.sleep(0.1)
    os.killpg(cluster.processes["w1"].pid, signal.SIGKILL)
    stdout, stderr = running.communicate(timeout=600)
    assert running.returncode == 0, stdout + stderr
    rows = table(out)
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows), rows
    assert {(r["lr"], r["steps"]) for r in rows} == {(lr, str(s)) for lr in ("0.1", "0.2")
                                                     for s in range(1, 5)}
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(folders) == 8 and not [p for p in out.iterdir() if p.name.startswith(".")]
    for folder in folders:
        provenance = json.loads((out / folder / "provenance.json").read_text())
        assert provenance["status"] == "ok" and provenance["worker"].startswith("tcp://127.0.0.1")
        assert provenance["command"][:3] == ["repro", "sweep", "mini-chapter"]
    # the killed worker finished at most what it had done before it died; w2 did the rest
    assert "8 of 8 cells finished" in stdout


def test_a_worker_running_other_code_refuses(committed_book, cluster, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(committed_book, other)
    (other / "chapters" / "01-mini-chapter" / "index.md").write_text("# Changed\n")
    git(other, "commit", "-qam", "another version")
    address = cluster.scheduler(other)
    cluster.worker("w1", other)
    cluster.wait_for_workers(address, 1)
    out = tmp_path / "sweep"
    running = sweep("-p", "lr=0.1", "--scheduler", address, "--out", str(out))
    stdout, stderr = running.communicate(timeout=300)
    assert running.returncode == 3, stdout + stderr
    [row] = table(out)
    assert row["status"] == "failed" and "runs other code" in row["error"]
    assert "refused" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv"]   # no run folder


def test_a_tasks_identity_covers_the_library_and_its_chapter_not_the_rest(committed_book):
    from repro.machinery.engine import code_identity

    before = code_identity(chapter="mini-chapter")
    # edits elsewhere in the tree (another chapter being written, the book's prose) change the
    # whole tree's identity but not what a task of this chapter executes
    (committed_book / "chapters" / "02-other").mkdir()
    (committed_book / "chapters" / "02-other" / "notes.md").write_text("draft\n")
    (committed_book / "_toc.yml").write_text("format: jb-book\nroot: somewhere/else\n")
    assert code_identity(chapter="mini-chapter") == before
    assert code_identity()["changes"] != before["changes"]
    # an edit to the chapter's own folder, tracked or not, changes it
    chapter = committed_book / "chapters" / "01-mini-chapter"
    (chapter / "scratch.py").write_text("x = 1\n")
    assert code_identity(chapter="mini-chapter")["changes"] != before["changes"]
    (chapter / "scratch.py").unlink()
    (chapter / "presets.yaml").write_text("quick: {}\npaper: {steps: 6}\n")
    assert code_identity(chapter="mini-chapter")["changes"] != before["changes"]


@pytest.mark.parametrize("axes, message", [
    (["-p", "nope=1,2"], "unknown parameter 'nope'"),
    (["-p", "steps=a,b"], "steps"),
    (["-p", "lr=-1"], "lr"),
    (["-p", "steps="], "empty value"),
    (["-p", "steps=5..1"], "is empty"),
    (["-p", "lr=0.1,0.1"], "listed twice"),
    ([], "at least one axis"),
    (["-p", "lr=0.1", "--plot", "run.sigma"], "--plot and --x go together"),
    (["-p", "lr=0.1", "--plot", "run.sigma", "--x", "steps"], "not an axis"),
])
def test_bad_sweeps_are_refused_before_anything_is_submitted(committed_book, tmp_path, axes,
                                                             message):
    out = tmp_path / "sweep"
    # nothing listens at this address: a refusal must come before any attempt to reach it
    running = sweep(*axes, "--scheduler", "tcp://127.0.0.1:9", "--out", str(out))
    stdout, stderr = running.communicate(timeout=120)
    assert running.returncode == 2, stdout + stderr
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not out.exists()


def test_a_sweep_writes_its_table_and_figure_and_resumes(committed_book, tmp_path):
    out = tmp_path / "sweep"
    args = ("-p", "sigma=0.5,1.5", "-p", "steps=1..2", "--out", str(out), "--plot", "run.sigma",
            "--x", "sigma", "--workers", "2")
    running = sweep(*args)
    stdout, stderr = running.communicate(timeout=600)
    assert running.returncode == 0, stdout + stderr
    rows = table(out)
    assert [(r["sigma"], r["steps"]) for r in rows] == [("0.5", "1"), ("0.5", "2"),
                                                       ("1.5", "1"), ("1.5", "2")]
    assert all(r["verdict:ordered"] == "pass" for r in rows)
    assert [float(r["metric:run.sigma"]) for r in rows] == [0.5, 0.5, 1.5, 1.5]
    assert (out / "sweep-run.sigma.svg").read_text().lstrip().startswith("<?xml")
    assert "4 cells at preset 'quick': 0 current, 4 to run" in stdout

    running = sweep(*args)
    stdout, stderr = running.communicate(timeout=600)
    assert running.returncode == 0, stdout + stderr
    assert "4 current, 0 to run" in stdout
    # a new value on one axis runs only the new cells
    running = sweep("-p", "sigma=0.5,1.5,2.5", "-p", "steps=1..2", "--out", str(out))
    stdout, stderr = running.communicate(timeout=600)
    assert running.returncode == 0, stdout + stderr
    assert "6 cells at preset 'quick': 4 current, 2 to run" in stdout
    assert len(table(out)) == 6


def test_a_kernel_on_a_local_worker_runs_as_it_would_alone(committed_book, tmp_path):
    # Dask's nanny gives its workers MALLOC_TRIM_THRESHOLD_=65536 and one thread each; a kernel
    # that inherited them ran torch's small allocations twice as slowly, and `repro run` (one
    # worker) on one core of two.
    experiments = committed_book / "chapters" / "01-mini-chapter" / "experiments.ipynb"
    nb = nbformat.read(experiments, as_version=4)
    nb.cells.insert(-1, nbformat.v4.new_code_cell(
        'import os, torch\nmetrics["env"] = {"trim": os.environ.get("MALLOC_TRIM_THRESHOLD_", '
        '"unset"), "threads": torch.get_num_threads()}'))
    nbformat.write(nb, experiments)
    git(committed_book, "commit", "-qam", "report the kernel's environment")
    out = tmp_path / "run"
    done = subprocess.run([REPRO, "run", "mini-chapter", "--out", str(out)], capture_output=True,
                          text=True, timeout=300,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
    assert done.returncode == 0, done.stdout + done.stderr
    env = json.loads((out / "metrics.json").read_text())["env"]
    assert env == {"trim": "unset", "threads": os.cpu_count()}


def test_the_slurm_job_for_a_paper_sweep_asks_for_a_gpu(committed_book):
    from repro.machinery.engine import jobqueue_cluster

    cluster = jobqueue_cluster("slurm", "paper")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH --mem=60G" in script or "#SBATCH --mem=" in script
    assert "#SBATCH -t 12:00:00" in script
    assert "#SBATCH --cpus-per-task=8" in script
    assert "--resources GPU=1" in script
    quick = jobqueue_cluster("slurm", "quick")
    try:
        script = quick.job_script()
    finally:
        quick.close()
    assert "gres" not in script and "#SBATCH -t 00:30:00" in script


def test_ctrl_c_keeps_the_finished_cells_and_the_table(committed_book, tmp_path):
    out = tmp_path / "sweep"
    running = subprocess.Popen([REPRO, "sweep", "mini-chapter", "-p", "steps=1..8", "--out",
                                str(out), "--workers", "1", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    for _ in range(1200):
        if out.exists() and any(p.is_dir() and not p.name.startswith(".") for p in out.iterdir()):
            break
        time.sleep(0.1)
    os.killpg(running.pid, signal.SIGINT)   # what Ctrl-C in a terminal sends
    stdout, stderr = running.communicate(timeout=300)
    assert running.returncode == 3, stdout + stderr
    assert "interrupted" in stderr
    rows = table(out)
    assert len(rows) == 8
    finished = [r for r in rows if r["status"] == "ok"]
    assert finished and any(r["status"] == "interrupted" for r in rows), rows
    assert {r["status"] for r in rows} <= {"ok", "interrupted", "failed"}
    # every folder is a whole run; nothing half-written is left beside them
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert not [p for p in folders if p.name.startswith(".")]
    assert all((p / "provenance.json").is_file() for p in folders)
    assert {r["cell"] for r in finished} <= {p.name for p in folders}
