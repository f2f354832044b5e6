"""Where notebooks execute: a Dask cluster, by default one embedded in this process.

Every execution of a notebook (a page of the book, a chapter run, a cell of a sweep) is a task
submitted to a Dask cluster through ``Engine``:

- nothing configured: a ``LocalCluster`` of one single-threaded worker process per core (or per
  ``jobs``), which lives as long as the command;
- ``scheduler="tcp://HOST:PORT"`` (``--scheduler``, or the ``REPRO_SCHEDULER`` variable): a
  cluster that already runs, whose workers were started from a checkout of the same code;
- ``cluster="slurm"`` or ``"pbs"`` (``--cluster``): workers submitted as batch jobs through
  ``dask-jobqueue``, configured in Dask's own configuration file (``~/.config/dask/jobqueue.yaml``),
  with the resources a preset needs (``RESOURCES``; a GPU for ``paper``) on top.

A worker executes a task in a temporary folder of its own and sends back the files it made (the
executed notebook, metrics, provenance) as bytes; the client writes them, atomically, so the
cluster needs no shared filesystem and no half-written folder is ever left. Before it executes
anything, a worker compares the code the task runs (commit, a hash of the uncommitted changes to
the library and the task's chapter folder, a hash of the library's sources, the library's version)
with the client's and refuses the task if they differ, so no record mixes two versions of the code.
Edits elsewhere in the tree (another chapter, the prose of the book) do not stop a run. A worker
that dies mid-task has its task retried on another worker (Dask's ``allowed-failures``,
``RETRIES_ON_DEATH`` here) and then reported failed.

Used by: ``repro book`` (``book.execute_all``, and its controls), ``repro run``, ``repro controls``
and ``repro sweep``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro import paths
from repro.machinery.chapters import BadInput

CLUSTERS = ("slurm", "pbs")
# How often a task may lose its worker before it is reported failed.
RETRIES_ON_DEATH = 2
# What one task of a preset needs from a batch queue; any key can be overridden in the Dask
# configuration (``repro: {resources: {paper: {walltime: ...}}}``).
RESOURCES = {
    "quick": {"cores": 2, "memory": "8GB", "walltime": "00:30:00", "gpus": 0},
    "paper": {"cores": 8, "memory": "64GB", "walltime": "12:00:00", "gpus": 1},
}


_NO_DASHBOARD = {"dashboard": False, "dashboard_address": ":0"}


class CodeMismatch(RuntimeError):
    """A worker runs other code than the client: it refuses the task."""


# --- the code a process runs ----------------------------------------------------------------

def code_identity(root: Path | None = None, chapter: str | None = None) -> dict[str, Any]:
    """What identifies the code this process would execute: the repository's commit, a hash of
    its uncommitted changes (tracked and untracked), a hash of the library's sources and its
    version. With ``chapter`` (a chapter's slug), the uncommitted changes counted are those a task
    of that chapter executes: the library, ``pyproject.toml`` and the chapter's folder."""
    import repro
    from repro.machinery.book import library_digests

    root = root or paths.root()
    scope: list[str] = []
    if chapter is not None:
        from repro.machinery.chapters import find_chapter

        folder = find_chapter(chapter).folder.resolve()
        scope = ["--", "lib", "pyproject.toml", folder.relative_to(root.resolve()).as_posix()]

    def git(*args: str) -> bytes | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    changes = hashlib.sha256(git("diff", "HEAD", "--binary", *scope) or b"")
    untracked = git("ls-files", "--others", "--exclude-standard", "-z", *scope) or b""
    for name in sorted(untracked.split(b"\0")):
        if name and (root / name.decode()).is_file():
            changes.update(name + b"\0" + (root / name.decode()).read_bytes())
    library = hashlib.sha256(json.dumps(library_digests(), sort_keys=True).encode())
    return {"commit": commit.decode().strip() if commit else None,
            "changes": changes.hexdigest()[:16], "library": library.hexdigest()[:16],
            "repro": repro.__version__}


def _describe(identity: Mapping[str, Any]) -> str:
    commit = (identity.get("commit") or "no commit")[:10]
    return (f"commit {commit}, uncommitted changes {identity.get('changes')}, library "
            f"{identity.get('library')} (repro {identity.get('repro')})")


def check_identity(client: Mapping[str, Any], chapter: str | None = None) -> dict[str, Any]:
    """On a worker: refuse (CodeMismatch) unless this worker runs the client's code for a task of
    ``chapter``. ``client`` is the client's ``code_identity`` for the same chapter, with its host
    and repository root (which only shape the message)."""
    mine = code_identity(chapter=chapter)
    if any(mine[k] != client.get(k) for k in mine):
        here = socket.gethostname()
        if client.get("host") == here and client.get("root") == str(paths.root()):
            raise CodeMismatch(f"the code in {paths.root()} changed while the command ran (now "
                               f"{_describe(mine)}; at its start {_describe(client)}); refused, "
                               "so that no record mixes versions: run the command again")
        raise CodeMismatch(f"worker on {here} runs other code ({_describe(mine)}) than the "
                           f"client ({_describe(client)}); refused, so that no record mixes "
                           "versions: start the workers from the client's checkout")
    return mine


# --- tasks, as a worker executes them ---------------------------------------------------------

def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _read_folder(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def execute_task(task: Mapping[str, Any], client: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task on this worker; return what the client writes.

    ``task["kind"]`` is ``"notebook"`` (a page: ``chapter``, ``notebook``, ``parameters``) or
    ``"run"`` (a chapter run: ``chapter``, ``preset``, ``overrides``, ``command``) or ``"control"``
    (a negative control: ``chapter``, ``control``, ``values``, ``preset``). The answer
    holds the files (relative path -> bytes), the library modules the kernel imported, the status
    and error of a run, and where it ran."""
    from repro.machinery.chapters import find_chapter
    from repro.machinery.runner import RunFailed, execute_notebook, run_chapter

    check_identity(client, task["chapter"])
    # Dask's nanny starts a worker with MALLOC_TRIM_THRESHOLD_=65536, and a kernel started here
    # would inherit it: glibc then hands every freed block back to the system at once, and torch's
    # many short-lived tensors ran twice as slowly (the quick book took 36 % longer than in a
    # process pool). Kernels get the allocator's default, as they did before the engine.
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    chapter = find_chapter(task["chapter"])
    where = {"worker": _worker_name(), "host": socket.gethostname()}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="repro-task-") as scratch:
        scratch = Path(scratch)
        if task["kind"] == "notebook":
            source = chapter.folder / task["notebook"]
            try:
                modules = execute_notebook(source, scratch / source.name,
                                           dict(task.get("parameters") or {}),
                                           cwd=chapter.folder, record_imports=True).modules
            except RunFailed as error:
                return {**where, "status": "failed", "files": {},
                        "error": f"{chapter.slug}/{source.name}: {error}", "modules": []}
            return {**where, "status": "ok", "error": None, "modules": modules,
                    "files": _read_folder(scratch), "seconds": time.perf_counter() - t0}
        if task["kind"] == "run":
            result = run_chapter(chapter, task["preset"], dict(task.get("overrides") or {}),
                                 out=scratch / "run", progress=False)
            provenance = json.loads((scratch / "run" / "provenance.json").read_text())
            provenance.update(where)
            if task.get("command") is not None:
                provenance["command"] = list(task["command"])
            (scratch / "run" / "provenance.json").write_text(
                json.dumps(provenance, indent=2, sort_keys=True) + "\n")
            return {**where, "status": result.status, "error": result.error or None,
                    "modules": provenance.get("modules") or [],
                    "files": _read_folder(scratch / "run"), "seconds": time.perf_counter() - t0}
        if task["kind"] == "control":
            from repro.machinery.claims import ChapterClaims
            from repro.machinery.controls import run_control

            [control] = [c for c in ChapterClaims.load(chapter.claims_path).controls
                         if c.id == task["control"]]
            result = run_control(chapter, control, dict(task["values"]), task["preset"], scratch)
            return {**where, "status": "ok", "error": None, "modules": [], "files": {},
                    "result": result, "seconds": time.perf_counter() - t0}
    raise ValueError(f"unknown task kind {task.get('kind')!r}")


# --- the client's side --------------------------------------------------------------------------

def write_folder_atomic(files: Mapping[str, bytes], target: Path) -> Path:
    """Write ``files`` as the folder ``target``: into a hidden sibling first, then renamed into
    place, so the folder is either complete or absent. An existing ``target`` must be empty or
    hold only an earlier result of the same task (it is replaced)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass
class Outcome:
    """What came back for one task: the worker's answer, or why there is none."""
    task: dict
    answer: dict | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.get("status") == "ok"

    @property
    def reason(self) -> str:
        if self.error:
            return self.error
        return str((self.answer or {}).get("error") or (self.answer or {}).get("status"))


def resources(preset: str) -> dict[str, Any]:
    import dask

    base = dict(RESOURCES.get(preset, RESOURCES["quick"]))
    base.update(dask.config.get(f"repro.resources.{preset}", default={}) or {})
    return base


def jobqueue_cluster(kind: str, preset: str, **overrides: Any):
    """A dask-jobqueue cluster for a batch queue (no jobs are submitted until it is scaled):
    its account, queue, interface and so on come from Dask's configuration file; what a task
    of ``preset`` needs (cores, memory, walltime, GPUs) is set here."""
    if kind not in CLUSTERS:
        raise BadInput(f"unknown cluster {kind!r}; choose one of {', '.join(CLUSTERS)}")
    try:
        from dask_jobqueue import PBSCluster, SLURMCluster
    except ImportError:
        raise BadInput("--cluster needs dask-jobqueue: pip install dask-jobqueue") from None
    need = resources(preset)
    gpus = int(need.get("gpus") or 0)
    options: dict[str, Any] = dict(cores=need["cores"], processes=1, memory=need["memory"],
                                   walltime=need["walltime"],
                                   scheduler_options=dict(_NO_DASHBOARD))
    extra = []
    if gpus:
        extra = [f"--gres=gpu:{gpus}"] if kind == "slurm" else []
        options["worker_extra_args"] = ["--resources", f"GPU={gpus}"]
        if kind == "pbs":
            options["resource_spec"] = (f"select=1:ncpus={need['cores']}:ngpus={gpus}:"
                                        f"mem={need['memory']}")
    if extra:
        options["job_extra_directives"] = extra
    options.update(overrides)
    return (SLURMCluster if kind == "slurm" else PBSCluster)(**options)


class Engine:
    """A Dask client for the duration of a ``with`` block, and the tasks it runs.

    ``scheduler``: an address (``tcp://HOST:PORT``); default ``REPRO_SCHEDULER``, else a local
    cluster of ``workers`` processes (default: one per core). ``cluster``: ``slurm`` or ``pbs``,
    scaled to ``workers`` jobs. ``gpu``: tasks ask for a worker with a ``GPU`` resource (workers of
    a batch queue started for a GPU preset have one)."""

    def __init__(self, scheduler: str | None = None, cluster: str | None = None,
                 workers: int | None = None, preset: str = "quick",
                 log: Callable[[str], None] = print) -> None:
        if scheduler and cluster:
            raise BadInput("give --scheduler or --cluster, not both")
        self.scheduler = scheduler or (None if cluster else os.environ.get("REPRO_SCHEDULER"))
        self.cluster_kind = cluster
        self.workers = workers
        self.preset = preset
        self.log = log
        self.client = None
        self._cluster = None
        self.gpu = bool(cluster) and int(resources(preset).get("gpus") or 0) > 0

    def __enter__(self) -> Engine:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise BadInput("the execution engine needs Dask: pip install 'distributed'") from None
        dask.config.set({"distributed.scheduler.allowed-failures": RETRIES_ON_DEATH,
                         "distributed.worker.daemon": False,
                         # see execute_task: no trimming allocator for the local workers either
                         "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError) as error:
                raise BadInput(f"no Dask scheduler answers at {self.scheduler}: {error}") from None
            self.log(f"executing on the Dask cluster at {self.scheduler} "
                     f"({len(self.client.scheduler_info()['workers'])} workers)")
        elif self.cluster_kind:
            self._cluster = jobqueue_cluster(self.cluster_kind, self.preset)
            self._cluster.scale(jobs=self.workers or 1)
            self.client = Client(self._cluster)
            self.log(f"executing on {self.cluster_kind} jobs ({self.workers or 1} requested)")
        else:
            workers = max(1, self.workers or os.cpu_count() or 1)
            # Each worker runs one kernel at a time: share the cores between them.
            threads = str(max(1, (os.cpu_count() or 1) // workers))
            os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            # On the loopback only, and without the dashboard; the scheduler's small HTTP server
            # takes any free port (its default, 8787, may be taken, and it says so on stderr).
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address=None,
                                         scheduler_kwargs=_NO_DASHBOARD, silence_logs=50)
            self.client = Client(self._cluster)
        return self

    def __exit__(self, *exc) -> None:
        for thing in (self.client, self._cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing what is already gone
                    pass

    def run(self, tasks: list[dict], progress: bool = False) -> Iterator[Outcome]:
        """Submit every task; yield each one's outcome as it finishes. Closing the iterator early
        (Ctrl-C in the caller's loop) cancels the tasks still pending."""
        from distributed import as_completed

        where = {"host": socket.gethostname(), "root": str(paths.root())}
        identities = {slug: {**code_identity(chapter=slug), **where}
                      for slug in {task["chapter"] for task in tasks}}
        extra = {"resources": {"GPU": 1}} if self.gpu else {}
        futures = {self.client.submit(execute_task, task, identities[task["chapter"]], pure=False,
                                      **extra): task
                   for task in tasks}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), unit="task")
        try:
            for future in as_completed(list(futures)):
                task = futures[future]
                try:
                    outcome = Outcome(task, future.result())
                except Exception as error:  # noqa: BLE001 - a row that says why
                    outcome = Outcome(task, None, _task_error(error))
                if bar is not None:
                    bar.update(1)
                yield outcome
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
            if bar is not None:
                bar.close()


def _task_error(error: BaseException) -> str:
    name = type(error).__name__
    if name == "KilledWorker":
        return (f"its worker died {RETRIES_ON_DEATH + 1} times while running it "
                f"(killed, or out of memory); not retried again")
    if isinstance(error, CodeMismatch) or name == "CodeMismatch":
        return str(error)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{name}: {first}"
