"""Executing a chapter's notebooks with papermill and keeping an honest record of the run.

A run folder holds the executed notebook, ``metrics.json`` (only when the run finished),
``verdicts.json`` and ``provenance.json`` (always: status, git commit and dirty flag, preset,
parameters, seeds, device, versions, start and wall time). Input is validated before anything
is written; ``metrics.json`` is written atomically, so a failed or interrupted run never leaves a
half-written one.

Used by: `repro run`, the book build (``book``) and `finish` (``notebook``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from repro import paths
from repro.machinery.chapters import BadInput, Chapter
from repro.machinery.claims import ChapterClaims, VerdictTable, check_all

KERNEL = "python3"


class RunFailed(RuntimeError):
    """The notebook raised; the message is the notebook's own error, in one line."""


# --- small, atomic file writing --------------------------------------------------------------

def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write text to a temporary file beside ``path`` and rename it into place: a reader sees
    the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(data: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically (``write_text_atomic``)."""
    return write_text_atomic(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n",
                             path)


def save_metrics(metrics: Mapping, metrics_path: str) -> None:
    """Called by ``finish`` in the last cell of an experiments notebook.

    A no-op when run by hand.
    """
    if not metrics_path:
        return
    try:
        write_json_atomic(metrics, metrics_path)
    except ValueError as error:  # NaN or infinity: the run did not produce a usable record
        raise ValueError(f"metrics hold a non-finite number; not written ({error})") from None


# --- provenance ------------------------------------------------------------------------------

def git_state(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return out.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def portable_command(argv: list[str], root: Path) -> list[str]:
    """The command line as another machine can read it: the program by its name (``repro``, not
    the recording machine's virtual environment), paths inside the repository relative to its
    root, and any other absolute path shortened to ``.../<name>`` (it means nothing elsewhere)."""
    def portable(arg: str) -> str:
        flag, eq, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
        if not value.startswith(("/", "~")):
            return arg
        path = Path(value).expanduser()
        try:
            value = path.resolve().relative_to(root.resolve()).as_posix() or "."
        except ValueError:
            value = f".../{path.name}"
        return f"{flag}{eq}{value}"

    if not argv:
        return []
    program = Path(argv[0])
    # `python -m repro.machinery.cli` (where the console script is not installed) reads as `repro`
    name = "repro" if program.parts[-3:] == ("repro", "machinery", "cli.py") else program.name
    return [name, *(portable(arg) for arg in argv[1:])]


def environment() -> dict[str, Any]:
    import numpy
    import torch

    import repro

    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "repro": repro.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


# --- executing one notebook ------------------------------------------------------------------

KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond")


def _kernel_manager(folder: Path):
    """A manager for the notebook's kernel that keeps it off the network and out of the terminal.

    The kernel talks to papermill over IPC sockets in ``folder`` (a private temporary folder)
    instead of TCP ports on the loopback: nothing else on the machine can connect, kernels started
    side by side cannot race for a port, and ipykernel has no reason to warn that it "is running
    over TCP without encryption". The kernel's own stdout and stderr (its log: start-up messages,
    and the "KeyboardInterrupt caught in kernel" line that jupyter_client's routine shutdown can
    provoke, since it interrupts the kernel before asking it to stop) go to ``folder/kernel.log``
    rather than the terminal of `repro book`; ``execute_notebook`` quotes that log when the kernel
    fails. What a cell prints is captured by ipykernel into the notebook either way.
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(folder / "kernel.log", "ab") as log:  # the child keeps its own copy
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietKernelManager(kernel_name=KERNEL, transport="ipc", ip=str(folder / "kernel"))


def _shut_down(km) -> None:
    """Stop the kernel: nbclient leaves a kernel manager it was given to its owner, so without
    this every executed notebook would leave its kernel running (hundreds of MB each)."""
    from jupyter_core.utils import run_sync

    if km.has_kernel:
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _log_tail(folder: Path, lines: int = 20) -> str:
    log = folder / "kernel.log"
    text = log.read_text(errors="replace").strip() if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# The last cell `execute_notebook` adds when asked which modules of the library a notebook used,
# and which installed distributions (with their versions) it imported; it is taken out of the
# executed notebook again.
IMPORTS_TAG = "repro-imports"
_IMPORTS_CELL = """import json as _json, sys as _sys, importlib.metadata as _md
_owners = _md.packages_distributions()
_packages = {{}}
for _top in {{_n.split(".")[0] for _n in list(_sys.modules)}}:
    for _dist in _owners.get(_top, []):
        try:
            _packages[_dist] = _md.version(_dist)
        except _md.PackageNotFoundError:
            pass
with open({path!r}, "w") as _file:
    _json.dump({{"modules": sorted(_n for _n in _sys.modules
                                  if _n == "repro" or _n.startswith("repro.")),
                "packages": dict(sorted(_packages.items()))}}, _file)
"""


@dataclass
class Imports:
    """What a notebook's kernel had imported by its end: the library's modules (what the book's
    cache keys on) and the installed distributions, with their versions (what a record keeps)."""
    modules: list[str]
    packages: dict[str, str]


def _with_imports_cell(source: Path, folder: Path) -> tuple[Path, Path]:
    import nbformat

    nb = nbformat.read(source, as_version=4)
    report = folder / "imports.json"
    cell = nbformat.v4.new_code_cell(_IMPORTS_CELL.format(path=str(report)))
    cell.metadata["tags"] = [IMPORTS_TAG]
    nb.cells.append(cell)
    copy = folder / source.name
    nbformat.write(nb, copy)
    return copy, report


def _without_imports_cell(output: Path, source: Path) -> None:
    import nbformat

    nb = nbformat.read(output, as_version=4)
    nb.cells = [c for c in nb.cells if IMPORTS_TAG not in c.get("metadata", {}).get("tags", [])]
    if "papermill" in nb.metadata:
        nb.metadata["papermill"]["input_path"] = str(source)
    write_text_atomic(nbformat.writes(nb), output)


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, Any] | None = None,
                     cwd: Path | None = None, progress: bool = False, attempts: int = 3,
                     record_imports: bool = False) -> Imports | None:
    """Execute ``source`` into ``output`` with papermill; raise RunFailed with the error's line.

    The kernel runs with ``_kernel_manager``'s settings; its own log reaches the error message of
    a kernel that failed, and nowhere else. A kernel that dies while starting is started again
    (up to ``attempts`` times), which is no fault of the notebook. With ``record_imports``, returns
    what the kernel had imported by the end (:class:`Imports`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        # a Unix socket's path holds about 100 bytes: a deep temporary folder falls back to /tmp
        short = "/tmp" if len(tempfile.gettempdir()) > 60 and os.path.isdir("/tmp") else None
        with tempfile.TemporaryDirectory(prefix="repro-kernel-", dir=short) as folder:
            run, report = ((_with_imports_cell(source, Path(folder))) if record_imports
                           else (source, None))
            km = _kernel_manager(Path(folder))
            try:
                try:
                    papermill.execute_notebook(
                        str(run), str(output), parameters=dict(parameters or {}),
                        kernel_name=KERNEL, cwd=str(cwd or source.parent), progress_bar=progress,
                        log_output=False, km=km,
                    )
                finally:
                    _shut_down(km)
                if report is None:
                    return None
                _without_imports_cell(output, source)
                found = json.loads(report.read_text())
                return Imports(found["modules"], found["packages"])
            except PapermillExecutionError as error:
                if report is not None and output.exists():
                    _without_imports_cell(output, source)
                first = str(error.evalue).strip().splitlines()[0] if error.evalue else ""
                raise RunFailed(f"{error.ename}: {first} (cell {error.exec_count})") from None
            except RuntimeError as error:
                if attempt < attempts and any(m in str(error) for m in KERNEL_START_FAILURES):
                    time.sleep(0.5 * attempt)
                    continue
                log = _log_tail(Path(folder))
                tail = f"; the kernel's log ends with:\n{log}" if log else ""
                raise RunFailed(f"the kernel failed: {error}{tail}") from None


# --- a chapter run -------------------------------------------------------------------------

@dataclass
class RunResult:
    folder: Path
    status: str  # ok, failed, interrupted
    table: VerdictTable | None
    error: str = ""

    @property
    def failed_claims(self) -> int:
        return self.table.counts()["fail"] if self.table else 0


def default_run_folder(chapter: Chapter, preset: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return paths.root() / "runs" / chapter.slug / f"{stamp}-{preset}"


def prepare_run_folder(out: Path) -> Path:
    """Refuse an existing non-empty folder (a run never overwrites another's record)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"run folder {out} already exists and is not empty; choose another --out")
    if out.parent.exists() and not os.access(out.parent, os.W_OK):
        raise BadInput(f"cannot write to {out.parent}")
    return out


def run_chapter(chapter: Chapter, preset: str, overrides: Mapping[str, str],
                out: Path | None = None, progress: bool = True) -> RunResult:
    """Validate, execute the experiments notebook, check the claims, write the record."""
    values = chapter.resolve(preset, dict(overrides))  # raises BadInput before any write
    claims = ChapterClaims.load(chapter.claims_path)
    out = prepare_run_folder(Path(out) if out else default_run_folder(chapter, preset))

    out.mkdir(parents=True, exist_ok=True)
    metrics_tmp = out / ".metrics.partial.json"
    values["metrics_path"] = str(metrics_tmp.resolve())
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    provenance: dict[str, Any] = {
        "chapter": chapter.slug, "preset": preset,
        "parameters": {k: v for k, v in values.items() if k != "metrics_path"},
        "overrides": dict(overrides),
        "seeds": {k: v for k, v in values.items() if "seed" in k},
        "git": git_state(paths.root()), "environment": environment(),
        "started": started.isoformat(timespec="seconds"),
        "command": portable_command(sys.argv, paths.root()),
    }
    status, error, table = "ok", "", None
    try:
        # the kernel runs in the chapter's folder: that is how the notebook's finish() finds it
        imports = execute_notebook(chapter.experiments, out / "experiments.ipynb", values,
                                   cwd=chapter.folder, progress=progress, record_imports=True)
        # the versions of everything the notebook imported: a record made elsewhere (another
        # machine's image) says with what it was computed
        provenance["modules"], provenance["packages"] = imports.modules, imports.packages
        if not metrics_tmp.exists():
            raise RunFailed("the notebook finished without writing its metrics "
                            "(its last cell calls finish)")
        metrics = json.loads(metrics_tmp.read_text())
        os.replace(metrics_tmp, out / "metrics.json")
        table = VerdictTable(check_all(claims, metrics, preset), preset)
        write_json_atomic([v.as_dict() for v in table.verdicts], out / "verdicts.json")
    except RunFailed as failure:
        status, error = "failed", str(failure)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
    except Exception as failure:  # noqa: BLE001 - recorded, never reported as a success
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    finally:
        metrics_tmp.unlink(missing_ok=True)
        provenance.update(status=status, error=error or None,
                          wall_time_s=round(time.perf_counter() - t0, 2))
        if table is not None:
            provenance["verdicts"] = table.counts()
        write_json_atomic(provenance, out / "provenance.json")
    return RunResult(out, status, table, error)


def clean_partial(folder: Path) -> None:
    """Remove a folder this process created but did not finish (used by the book builder)."""
    shutil.rmtree(folder, ignore_errors=True)
