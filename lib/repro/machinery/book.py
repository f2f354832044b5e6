"""Building the book: execute every notebook with papermill, then render with Jupyter Book.

Sources in git carry no outputs. ``build_book`` executes each chapter notebook at a preset into
``_build/executed/<preset>/`` (in parallel over the cores), reusing an executed notebook whose
inputs did not change: the notebook, the other files of its chapter, the ``repro`` sources, the
parameters and preset, and the versions of the packages that compute. It then assembles a site
tree (the sources with the executed notebooks and each chapter's run record in place) and renders
it with Jupyter Book, whose own execution is off, failing on any warning.

Used by: `repro book`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from repro import paths
from repro.machinery.chapters import Chapter, all_chapters
from repro.machinery.claims import ChapterClaims
from repro.machinery.controls import report_path as controls_report_path
from repro.machinery.runner import RunFailed, execute_notebook, run_chapter

# Packages whose version can change a computed number.
COMPUTING_PACKAGES = ("torch", "numpy", "scikit-learn", "mnist1d", "matplotlib", "papermill",
                      "nbclient", "ipykernel", "scipy")
SITE_SOURCES = ("_config.yml", "_toc.yml", "book", "chapters")


class BuildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Job:
    chapter: Chapter
    notebook: Path  # source notebook
    preset: str

    @property
    def target(self) -> Path:
        return executed_dir(self.preset) / self.chapter.folder.name / self.notebook.name

    @property
    def is_experiments(self) -> bool:
        return self.notebook.name == "experiments.ipynb"


def executed_dir(preset: str) -> Path:
    return paths.root() / "_build" / "executed" / preset


def _versions() -> dict[str, str]:
    found = {}
    for name in COMPUTING_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def input_key(job: Job) -> str:
    """A hash of everything that can change what executing this notebook produces."""
    h = hashlib.sha256()
    h.update(job.notebook.read_bytes())
    for path in sorted(job.chapter.folder.rglob("*")):
        if path.is_file() and path.suffix != ".ipynb" and "__pycache__" not in path.parts:
            h.update(path.relative_to(job.chapter.folder).as_posix().encode())
            h.update(path.read_bytes())
    lib = Path(__file__).resolve().parents[1]  # all of repro: the science and the machinery
    for path in sorted(lib.rglob("*.py")):
        h.update(path.relative_to(lib).as_posix().encode())
        h.update(path.read_bytes())
    parameters = job.chapter.resolve(job.preset, {}) if job.is_experiments else {}
    h.update(json.dumps({"preset": job.preset, "parameters": parameters,
                         "versions": _versions()}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _key_file(job: Job) -> Path:
    return job.target.with_suffix(".key")


def is_current(job: Job) -> bool:
    key = _key_file(job)
    return job.target.exists() and key.exists() and key.read_text().strip() == input_key(job)


def execute_job(job: Job) -> tuple[str, float]:
    """Execute one notebook into the executed tree; returns (its name, seconds)."""
    import time

    t0 = time.perf_counter()
    key = input_key(job)
    _key_file(job).unlink(missing_ok=True)
    if job.is_experiments:
        run_folder = job.target.parent / "run"
        shutil.rmtree(run_folder, ignore_errors=True)
        result = run_chapter(job.chapter, job.preset, {}, out=run_folder, progress=False)
        if result.status != "ok":
            raise RunFailed(f"{job.chapter.slug}/experiments.ipynb: {result.error}")
        shutil.copy2(run_folder / "experiments.ipynb", job.target)
    else:
        from repro.machinery.chapters import notebook_parameters

        wanted = {"preset": job.preset} if "preset" in notebook_parameters(job.notebook) else {}
        try:
            execute_notebook(job.notebook, job.target, wanted, cwd=job.chapter.folder)
        except RunFailed as error:
            raise RunFailed(f"{job.chapter.slug}/{job.notebook.name}: {error}") from None
    _key_file(job).write_text(key + "\n")
    return f"{job.chapter.slug}/{job.notebook.name}", time.perf_counter() - t0


def execute_all(preset: str, jobs: int | None = None, log=print) -> list[Path]:
    """Execute every chapter notebook whose inputs changed; return the executed notebooks."""
    work = [Job(ch, nb, preset) for ch in all_chapters() for nb in ch.notebooks()]
    stale = [job for job in work if not is_current(job)]
    log(f"{len(work)} notebooks at preset {preset!r}: {len(work) - len(stale)} current, "
        f"{len(stale)} to execute")
    if stale:
        workers = max(1, min(jobs or os.cpu_count() or 1, len(stale)))
        # Share the cores between the kernels rather than oversubscribing them.
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        failures = []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(execute_job, job): job for job in stale}
            for future in as_completed(futures):
                try:
                    name, seconds = future.result()
                    log(f"  executed {name} in {seconds:.1f} s")
                except Exception as error:  # noqa: BLE001 - reported together below
                    failures.append(str(error))
                    log(f"  FAILED {error}")
        if failures:
            raise BuildFailed(f"{len(failures)} notebook(s) failed: " + "; ".join(failures))
    return [job.target for job in work]


def prepare_for_book(notebook: Path, student: bool) -> None:
    """Edit an executed notebook for the page: fold the runner's injected parameters (without the
    machine-specific metrics path) and, for the student edition, drop the cells tagged
    ``solution`` (solution code and its gated markers)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if student and "solution" in tags:
            continue
        if "injected-parameters" in tags:
            cell.source = "\n".join(line for line in cell.source.splitlines()
                                     if not line.startswith("metrics_path ="))
            cell.metadata["tags"] = [*tags, "hide-input"]
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, notebook)


def assemble_site(preset: str, student: bool) -> Path:
    """Sources plus executed notebooks and run records, in ``_build/site-<preset>[-student]``."""
    root = paths.root()
    site = root / "_build" / (f"site-{preset}" + ("-student" if student else ""))
    for name in SITE_SOURCES:
        target = site / name
        if target.is_dir():
            shutil.rmtree(target)
        source = root / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(
                "__pycache__", ".ipynb_checkpoints", "*.ipynb"))
        else:
            site.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (site / "data").mkdir(exist_ok=True)
    shutil.copy2(root / "data" / "papers.yaml", site / "data" / "papers.yaml")
    records = root / "data" / "records"
    if (site / "data" / "records").exists():
        shutil.rmtree(site / "data" / "records")
    if records.is_dir():
        shutil.copytree(records, site / "data" / "records",
                        ignore=shutil.ignore_patterns(".*"))
    executed = executed_dir(preset)
    for chapter in all_chapters():
        for notebook in chapter.notebooks():
            target = site / "chapters" / chapter.folder.name / notebook.name
            shutil.copy2(executed / chapter.folder.name / notebook.name, target)
            prepare_for_book(target, student)
        run = executed / chapter.folder.name / "run"
        site_run = site / "chapters" / chapter.folder.name / "run"
        shutil.rmtree(site_run, ignore_errors=True)   # nothing left from an earlier build
        report = controls_report_path(chapter, preset)
        for source, name in [(run / "metrics.json", "metrics.json"),
                             (run / "provenance.json", "provenance.json"),
                             (report, "controls.json")]:
            if source.exists():
                site_run.mkdir(exist_ok=True)
                shutil.copy2(source, site_run / name)
    config = yaml.safe_load((site / "_config.yml").read_text())
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["hide_solutions"] = bool(student)
    sphinx_config["repro_preset"] = preset
    if student:
        config["title"] = f"{config.get('title', 'Book')} (student edition)"
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return site


def render(site: Path, log=print) -> Path:
    """Render the site with Jupyter Book (execution off); any warning fails the build."""
    exe = Path(sys.executable).with_name("jupyter-book")
    command = [str(exe) if exe.exists() else "jupyter-book", "build", str(site), "--all",
               "--warningiserror", "--keep-going", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise BuildFailed("Jupyter Book reported errors or warnings:\n" + output[-6000:])
    index = site / "_build" / "html" / "index.html"
    if not index.exists():
        raise BuildFailed(f"Jupyter Book finished but wrote no {index}")
    return index


def run_book_controls(preset: str, jobs: int | None = None, log=print) -> None:
    """Every chapter's negative controls, in one pool; each chapter's report lands in
    ``_build/controls/<preset>/`` and from there on its page and the dashboard."""
    from repro.machinery.controls import run_all

    tasks = [(ch, list(ChapterClaims.load(ch.claims_path).controls), ch.resolve(preset, {}))
             for ch in all_chapters()]
    log(f"{sum(len(c) for _, c, _ in tasks)} negative controls at preset {preset!r}")
    run_all(tasks, preset, jobs, log)


def build_book(preset: str = "quick", student: bool = False, jobs: int | None = None,
               controls: bool = False, log=print) -> Path:
    execute_all(preset, jobs=jobs, log=log)
    if controls:
        run_book_controls(preset, jobs=jobs, log=log)
    site = assemble_site(preset, student)
    log(f"rendering {site.relative_to(paths.root())} with Jupyter Book")
    return render(site, log=log)
