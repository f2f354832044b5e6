"""Building the book: execute every notebook with papermill, then render with Jupyter Book.

Sources in git carry no outputs. ``build_book`` executes each chapter notebook at a preset into
``_build/executed/<preset>/`` (in parallel over the cores), reusing an executed notebook whose
inputs did not change: the notebook, the other files of its chapter, the ``repro`` sources, the
parameters and preset, and the versions of the packages that compute. It then assembles a site
tree (the sources with the executed notebooks and each chapter's run record in place) and renders
it with Jupyter Book, whose own execution is off, failing on any warning.

The site's copies of the notebooks are edited for the reader (``prepare_for_book``): page titles
carry the chapter's number in the book's plan (``Chapter 10.``, ``10.1``, ...; Sphinx's own
section numbering is off), math in headings is written in plain Unicode so that the sidebar,
the browser tab and search show no TeX, papermill's injected-parameters cell is folded into the
parameters cell, which is collapsed, and the student edition's notebooks get each exercise's
starting code instead of its solution, and no hidden tests. MathJax is copied into the site
from the ``django-static-mathjax`` package (``copy_mathjax``), so formulas typeset offline.
This module is also a small Sphinx extension (``setup``): figures, exercises and theorems are
numbered within their chapter (Fig. 10.2).

Used by: `repro book`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from repro import paths
from repro.machinery.chapters import Chapter, all_chapters
from repro.machinery.claims import ChapterClaims
from repro.machinery.controls import report_path as controls_report_path

# Packages whose version can change a computed number.
COMPUTING_PACKAGES = ("torch", "numpy", "scikit-learn", "mnist1d", "matplotlib", "papermill",
                      "nbclient", "ipykernel", "scipy")
# README.md is not a page of its own (exclude_patterns): book/repository.md includes it
SITE_SOURCES = ("_config.yml", "_toc.yml", "README.md", "book", "chapters")
# Where the site keeps MathJax: a folder of html_static_path in _config.yml, whose mathjax_path
# names mathjax/tex-mml-chtml.js in it.
MATHJAX_STATIC = "_mathjax"


class BuildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Job:
    chapter: Chapter
    notebook: Path  # source notebook
    preset: str
    overrides: tuple[tuple[str, str], ...] = ()  # -p values beyond the preset (a sweep's cell)

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


# Modules of the executing side that shape what an execution produces (the record, the verdicts),
# besides the modules the kernel itself imported.
HOST_MODULES = ("repro.machinery.runner", "repro.machinery.chapters", "repro.machinery.claims")
_LIB = Path(__file__).resolve().parents[1]  # the repro package


def library_digests() -> dict[str, str]:
    """The sha256 of every module of the library, by dotted name (``repro.optim.sam``)."""
    digests = {}
    for path in sorted(_LIB.rglob("*.py")):
        parts = path.relative_to(_LIB.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def input_key(job: Job, modules: list[str], digests: dict[str, str] | None = None) -> str:
    """A hash of everything that can change what executing this notebook produces: the notebook,
    its chapter's other files, the library modules it used (``modules``, as recorded when it last
    ran; a module that no longer exists counts as changed), the parameters and preset, and the
    versions of the computing packages."""
    digests = library_digests() if digests is None else digests
    h = hashlib.sha256()
    h.update(job.notebook.read_bytes())
    for path in sorted(job.chapter.folder.rglob("*")):
        if path.is_file() and path.suffix != ".ipynb" and "__pycache__" not in path.parts:
            h.update(path.relative_to(job.chapter.folder).as_posix().encode())
            h.update(path.read_bytes())
    for name in sorted(set(modules) | set(HOST_MODULES)):
        h.update(f"{name}={digests.get(name, 'missing')}".encode())
    parameters = (job.chapter.resolve(job.preset, dict(job.overrides)) if job.is_experiments
                  else {})
    h.update(json.dumps({"preset": job.preset, "parameters": parameters,
                         "versions": _versions()}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _key_file(job: Job) -> Path:
    return job.target.with_suffix(".key")


def recorded_modules(job: Job) -> list[str] | None:
    """The library modules the notebook used when it last ran (None: never ran, or by an older
    version of the builder)."""
    try:
        return list(json.loads(_key_file(job).read_text())["modules"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_current(job: Job, digests: dict[str, str] | None = None) -> bool:
    modules = recorded_modules(job)
    if modules is None or not job.target.exists():
        return False
    return json.loads(_key_file(job).read_text())["key"] == input_key(job, modules, digests)


def job_task(job: Job) -> dict:
    """The engine's task that executes ``job`` (see ``engine.execute_task``)."""
    if job.is_experiments:
        from repro.machinery.runner import portable_command

        return {"kind": "run", "chapter": job.chapter.slug, "preset": job.preset, "overrides": {},
                "command": portable_command(sys.argv, paths.root())}
    from repro.machinery.chapters import notebook_parameters

    wanted = {"preset": job.preset} if "preset" in notebook_parameters(job.notebook) else {}
    return {"kind": "notebook", "chapter": job.chapter.slug, "notebook": job.notebook.name,
            "parameters": wanted}


def store_result(job: Job, answer: dict, digests: dict[str, str]) -> None:
    """Write what a worker sent back for ``job`` into the executed tree, then its key."""
    from repro.machinery.engine import write_folder_atomic
    from repro.machinery.runner import write_text_atomic

    _key_file(job).unlink(missing_ok=True)
    files = answer["files"]
    if job.is_experiments:
        run_folder = write_folder_atomic(files, job.target.parent / "run")
        shutil.copy2(run_folder / "experiments.ipynb", job.target)
    else:
        write_text_atomic(files[job.notebook.name].decode(), job.target)
    key = {"key": input_key(job, answer["modules"], digests), "modules": sorted(answer["modules"])}
    _key_file(job).write_text(json.dumps(key, indent=1) + "\n")


def execute_all(preset: str, jobs: int | None = None, log=print, scheduler: str | None = None,
                cluster: str | None = None) -> list[Path]:
    """Execute every chapter notebook whose inputs changed, as tasks of the execution engine (a
    local Dask cluster unless ``scheduler`` or ``cluster`` names another); return the executed
    notebooks."""
    from repro.machinery.engine import Engine

    work = [Job(ch, nb, preset) for ch in all_chapters() for nb in ch.notebooks()]
    digests = library_digests()  # the sources as they were when the build started
    stale = [job for job in work if not is_current(job, digests)]
    log(f"{len(work)} notebooks at preset {preset!r}: {len(work) - len(stale)} current, "
        f"{len(stale)} to execute")
    if stale:
        failures = []
        workers = max(1, min(jobs or os.cpu_count() or 1, len(stale)))
        tasks = [{**job_task(job), "job": i} for i, job in enumerate(stale)]
        with Engine(scheduler=scheduler, cluster=cluster, workers=workers, preset=preset,
                    log=log) as engine:
            for outcome in engine.run(tasks):
                job = stale[outcome.task["job"]]
                name = f"{job.chapter.slug}/{job.notebook.name}"
                if outcome.ok:
                    store_result(job, outcome.answer, digests)
                    log(f"  executed {name} in {outcome.answer['seconds']:.1f} s")
                else:
                    reason = outcome.reason if outcome.reason.startswith(name) else \
                        f"{name}: {outcome.reason}"
                    failures.append(reason)
                    log(f"  FAILED {reason}")
        if failures:
            raise BuildFailed(f"{len(failures)} notebook(s) failed: " + "; ".join(failures))
    return [job.target for job in work]


# --- the site's copies of the pages -----------------------------------------------------------

_GREEK = {name: chr(code) for name, code in zip(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "varsigma sigma tau upsilon phi chi psi omega".split(), range(0x3B1, 0x3CA))}
_GREEK.update({name.capitalize(): chr(ord(letter) - 32) for name, letter in _GREEK.items()
               if name not in ("varsigma",)})
_GREEK.update(varepsilon="ε", vartheta="ϑ", varphi="φ", varrho="ϱ")
_SYMBOLS = {
    **_GREEK, "ell": "ℓ", "top": "⊤", "to": " → ", "rightarrow": " → ", "leftarrow": " ← ",
    "mapsto": " ↦ ", "infty": "∞", "cdot": "·", "times": "×", "le": " ≤ ", "leq": " ≤ ",
    "ge": " ≥ ", "geq": " ≥ ", "ne": " ≠ ", "neq": " ≠ ", "approx": " ≈ ", "sim": " ∼ ",
    "in": " ∈ ", "nabla": "∇", "partial": "∂", "sum": "∑", "prod": "∏", "pm": "±", "ldots": "…",
    "dots": "…", "propto": " ∝ ", "|": "‖", "lVert": "‖", "rVert": "‖", "Vert": "‖", ",": " ",
    ";": " ", " ": " ", "quad": " ", "{": "{", "}": "}", "log": "log ", "exp": "exp ",
    "sin": "sin ", "cos": "cos ", "det": "det ", "min": "min ", "max": "max ", "Tr": "Tr ",
    "mathbb": "", "mathrm": "", "text": "", "operatorname": "", "mathcal": "", "boldsymbol": "",
    "mathbf": "", "tilde": "\u0303", "hat": "\u0302", "bar": "\u0304",
}
_DOUBLE_STRUCK = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ"}
_SUP = dict(zip("0123456789+-=()niTtajkmxy⊤", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵀᵗᵃʲᵏᵐˣʸᵀ"))
_SUB = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))
_MATH = re.compile(r"\$([^$]+)\$|\{math\}`([^`]+)`")


def tex_to_text(tex: str) -> str | None:
    r"""Simple TeX math as plain Unicode text (``UU^\top`` -> ``UUᵀ``, ``\ell_4`` -> ``ℓ₄``,
    ``\alpha \to 0`` -> ``α → 0``), or None when it holds anything this cannot write."""
    out, i = [], 0

    def group(at: int) -> tuple[str | None, int]:
        """The argument at ``at``: a {group}, a command or one character; (text, next index)."""
        while at < len(tex) and tex[at] == " ":
            at += 1
        if at >= len(tex):
            return None, at
        if tex[at] == "{":
            depth, j = 1, at + 1
            while j < len(tex) and depth:
                depth += {"{": 1, "}": -1}.get(tex[j], 0)
                j += 1
            return (tex_to_text(tex[at + 1:j - 1]) if not depth else None), j
        if tex[at] == "\\":
            match = re.match(r"\\([A-Za-z]+|.)", tex[at:])
            name = match.group(1)
            return _SYMBOLS.get(name), at + match.end()
        return tex[at], at + 1

    while i < len(tex):
        char = tex[i]
        if char in "^_":
            argument, i = group(i + 1)
            table = _SUP if char == "^" else _SUB
            if argument is None or not argument.strip() or any(
                    c not in table for c in argument.strip()):
                return None
            out.append("".join(table[c] for c in argument.strip()))
        elif char == "\\":
            match = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            name, i = match.group(1), i + match.end()
            if name not in _SYMBOLS:
                return None
            if name in ("tilde", "hat", "bar"):
                argument, i = group(i)
                if argument is None:
                    return None
                out.append(argument + _SYMBOLS[name])
            elif name in ("mathbb",):
                argument, i = group(i)
                if argument not in _DOUBLE_STRUCK:
                    return None
                out.append(_DOUBLE_STRUCK[argument])
            elif name in ("mathrm", "text", "operatorname", "mathcal", "boldsymbol", "mathbf"):
                argument, i = group(i)
                if argument is None:
                    return None
                out.append(argument)
            else:
                out.append(_SYMBOLS[name])
        elif char in "{}":
            argument, i = group(i) if char == "{" else (None, i)
            if argument is None:
                return None
            out.append(argument)
        elif char in "=<>":
            out.append(f" {char} ")
            i += 1
        elif char == ",":
            out.append(", ")
            i += 1
        elif char == " ":
            i += 1  # TeX ignores spaces in math; relations bring their own
        elif char in "$&%#~":
            return None
        else:
            out.append(char)
            i += 1
    return re.sub(r"\s+", " ", "".join(out)).strip()


def plain_heading(line: str) -> str:
    """A markdown heading with its math in Unicode, in italics (the page, the sidebar, the
    browser tab and search then all show the same plain text); math that ``tex_to_text`` cannot
    write is left as it was."""
    def plain(match: re.Match) -> str:
        text = tex_to_text(match.group(1) or match.group(2))
        return f"*{text}*" if text and "*" not in text else match.group(0)

    return _MATH.sub(plain, line)


def _headings(source: str, edit) -> str:
    """``source`` with ``edit`` applied to each markdown heading outside code fences."""
    lines, fence = source.split("\n"), None
    for k, line in enumerate(lines):
        marker = re.match(r"^\s*(`{3,}|~{3,}|:{3,})", line)
        if marker and (fence is None or marker.group(1).startswith(fence)):
            fence = None if fence else marker.group(1)
        elif fence is None and re.match(r"^#{1,6} ", line):
            lines[k] = edit(line)
    return "\n".join(lines)


def number_title(source: str, number: str) -> str:
    """``source`` (markdown) with its first level-1 heading numbered ``number`` (``10.1``, or
    ``Chapter 10.``), unless it already starts with a number."""
    def edit(line: str) -> str:
        nonlocal done
        if done or not line.startswith("# "):
            return line
        done = True
        title = line[2:].strip()
        return line if re.match(r"Chapter \d+\.|\d+\.\d+ ", title) else f"# {number} {title}"

    done = False
    return _headings(source, edit)


def _comment_column(line: str) -> int | None:
    """Where a one-line statement's comment starts, or None."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            if token.type == tokenize.COMMENT:
                return token.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return None


def merge_parameters(cell_source: str, injected_source: str) -> str:
    """The parameters cell with papermill's injected values put in place of its defaults (the
    machine's own ``metrics_path`` left out), comments and alignment kept."""
    values = {}
    for line in injected_source.splitlines():
        match = re.match(r"^([A-Za-z_]\w*) = (.+)$", line)
        if match and match.group(1) != "metrics_path":
            values[match.group(1)] = match.group(2).strip()
    lines = []
    for line in cell_source.splitlines():
        match = re.match(r"^([A-Za-z_]\w*)(\s*:\s*\w+)?(\s*=\s*)", line)
        if match and match.group(1) in values:
            column = _comment_column(line)
            comment = line[column:] if column is not None else ""
            value = line[match.end():column].rstrip() if column is not None \
                else line[match.end():].rstrip()
            if value != values[match.group(1)]:
                code = line[:match.end()] + values[match.group(1)]
                pad = max(2, (column or 0) - len(code)) if comment else 0
                line = code + " " * pad + comment
        lines.append(line)
    return "\n".join(lines)


def _student_cells(nb) -> list:
    """The exercises notebook as a student gets it: each exercise's solution cells replaced by
    its starting code (``assign.stub_for``: every name the tests read, as ``...``), no hidden
    tests, and the public tests without outputs (they ran against the solutions)."""
    import nbformat

    from repro.machinery.assign import HIDDEN_TEST, SOLUTION, TEST, parse_exercises, stub_for

    _, questions = parse_exercises(nb)
    # each question's starting code goes where its first solution cell was
    stubs = {id(q.cells(SOLUTION)[0]): stub_for(q) for q in questions if q.cells(SOLUTION)}
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if id(cell) in stubs:
            stub = nbformat.v4.new_code_cell(stubs[id(cell)])
            stub.metadata["tags"] = ["answer"]
            cells.append(stub)
        if SOLUTION in tags or HIDDEN_TEST in tags:
            continue
        if TEST in tags and cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    return cells


def prepare_for_book(notebook: Path, student: bool, number: str = "",
                     preset: str = "quick") -> None:
    """Edit an executed notebook for the page.

    - its title is numbered ``number`` (``10.1``) and every heading's math written in Unicode;
    - papermill's injected-parameters cell is folded into the parameters cell (the run's values
      in place of the defaults, without the machine-specific metrics path) and dropped;
    - the parameters cell is collapsed (``hide-input``) behind a one-line note;
    - for the student edition, ``_student_cells``: starting code instead of solutions, no hidden
      tests. The page and the notebook it offers for download are then the same."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    injected = next((c for c in nb.cells
                     if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)
    cells, titled = [], False
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell is injected:
            continue
        if cell.cell_type == "markdown":
            cell.source = _headings(cell.source, plain_heading)
            if number and not titled and re.search(r"^# ", cell.source, re.M):
                cell.source, titled = number_title(cell.source, number), True
        if "parameters" in tags and cell.cell_type == "code":
            if injected is not None:
                cell.source = merge_parameters(cell.source, injected.source)
            cell.metadata["tags"] = [*tags, "hide-input"]
            cells.append(nbformat.v4.new_markdown_cell(
                f"The notebook's parameters, as this page ran them (the `{preset}` preset); "
                f"`repro list` describes each."))
        cells.append(cell)
    nb.cells = cells
    if student:
        nb.cells = _student_cells(nb)
    nbformat.write(nb, notebook)


def prepare_markdown(page: Path, number: str = "") -> None:
    """A markdown page of the site: math in headings in Unicode, the title numbered."""
    source = _headings(page.read_text(), plain_heading)
    page.write_text(number_title(source, number) if number else source)


def copy_mathjax(site: Path) -> None:
    """MathJax 3 (the ``django-static-mathjax`` package's copy) into ``site/_mathjax/mathjax``:
    the combined TeX component that Sphinx's ``mathjax_path`` names, its fonts, the TeX
    extensions it loads on demand and the accessibility components of its menu."""
    from importlib import resources

    try:
        es5 = Path(str(resources.files("mathjax") / "static" / "mathjax" / "es5"))
    except ModuleNotFoundError:
        es5 = None
    if es5 is None or not (es5 / "tex-mml-chtml.js").is_file():
        raise BuildFailed("MathJax is missing: install the book's packages "
                          "(pip install -e '.[book]', which brings django-static-mathjax)")
    target = site / MATHJAX_STATIC / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(es5 / "tex-mml-chtml.js", target)
    license_file = es5.parent / "LICENSE"
    if license_file.exists():
        shutil.copy2(license_file, target / "LICENSE")
    for part in ("output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y", "sre"):
        shutil.copytree(es5 / part, target / part)


# --- a Sphinx extension: numbers within each chapter --------------------------------------------

def _chapter_number(docname: str) -> int | None:
    match = re.match(r"chapters/(\d+)-", docname)
    return int(match.group(1)) if match else None


def number_by_chapter(app, env) -> list[str]:
    """Figures, exercises, theorems and the like numbered within their chapter by its number in
    the plan (Fig. 10.2 is the second figure of chapter 10, Exercise 10.1 its first exercise), in
    the order Sphinx met them. Sphinx's toctree numbering is off (the page titles carry the
    plan's numbers), which alone would number them through the whole book (Fig. 17)."""
    entries = []
    for docname, figtypes in env.toc_fignumbers.items():
        chapter = _chapter_number(docname)
        if chapter is not None:
            entries += [(figtype, number, docname, target, chapter)
                        for figtype, targets in figtypes.items()
                        for target, number in targets.items()]
    counters: dict[tuple[str, int], int] = {}
    for figtype, _, docname, target, chapter in sorted(entries, key=lambda e: (e[0], e[1])):
        counters[figtype, chapter] = counters.get((figtype, chapter), 0) + 1
        env.toc_fignumbers[docname][figtype][target] = (chapter, counters[figtype, chapter])
    return []


def setup(app):
    """The book's Sphinx extension for numbering (named in _config.yml)."""
    # after Sphinx's own numbering (the toctree collector's handler, at the default priority)
    app.connect("env-get-updated", number_by_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


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
    for page in (site / "book").glob("*.md"):
        prepare_markdown(page)
    for chapter in all_chapters():
        prepare_markdown(site / "chapters" / chapter.folder.name / "index.md",
                         f"Chapter {chapter.number}.")
        for k, notebook in enumerate(chapter.notebooks(), start=1):
            target = site / "chapters" / chapter.folder.name / notebook.name
            shutil.copy2(executed / chapter.folder.name / notebook.name, target)
            prepare_for_book(target, student, f"{chapter.number}.{k}", preset)
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
    copy_mathjax(site)
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


def run_book_controls(preset: str, jobs: int | None = None, log=print,
                      scheduler: str | None = None) -> None:
    """Every chapter's negative controls, in one pool; each chapter's report lands in
    ``_build/controls/<preset>/`` and from there on its page and the dashboard."""
    from repro.machinery.controls import run_all

    tasks = [(ch, list(ChapterClaims.load(ch.claims_path).controls), ch.resolve(preset, {}))
             for ch in all_chapters()]
    log(f"{sum(len(c) for _, c, _ in tasks)} negative controls at preset {preset!r}")
    run_all(tasks, preset, jobs, log, scheduler=scheduler)


def build_book(preset: str = "quick", student: bool = False, jobs: int | None = None,
               controls: bool = False, log=print, scheduler: str | None = None) -> Path:
    execute_all(preset, jobs=jobs, log=log, scheduler=scheduler)
    if controls:
        run_book_controls(preset, jobs=jobs, log=log, scheduler=scheduler)
    site = assemble_site(preset, student)
    log(f"rendering {site.relative_to(paths.root())} with Jupyter Book")
    return render(site, log=log)
