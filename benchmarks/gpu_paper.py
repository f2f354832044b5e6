"""The paper presets on a GPU, in one command: every chapter whose paper preset needs no
external data set is run (`repro run <slug> --preset paper`), recorded (`repro record`), and the
main training loops are timed on the GPU against the same code on the CPU, in the same run.

    .venv/bin/python benchmarks/gpu_paper.py --out "$OUT"          # on a machine with CUDA
    .venv/bin/python benchmarks/gpu_paper.py --dry-run             # the plan, every preset checked
    .venv/bin/python benchmarks/gpu_paper.py --cpu --out /tmp/smoke   # a tiny smoke run on the CPU

Sized for ten minutes on one H200: the whole command has a budget (``--budget``, seconds). The
chapters run first, in order of priority, ``--jobs`` at a time, each under its own time limit
(``timeout``); a chapter whose limit no longer fits in what is left is skipped, with a row that
says so. Then the finished runs are recorded, and last the loops are timed (a short slice per
chapter and device) in the ``--loop-reserve`` seconds kept for them. Every row is written as soon
as it is known, so a command stopped from outside still leaves its table.

What comes back under ``--out``: ``gpu_paper.md`` (the table, to copy to
``benchmarks/gpu_paper.md``), ``gpu_paper.json`` (the same rows), ``runs/<slug>/`` (each run's
metrics, provenance and verdicts), ``records/<slug>/paper/`` (the records ``repro record`` wrote
into ``data/records``, to commit) and ``logs/<slug>.log``. ``--pack FILE`` also writes all of it
into one archive, even when the run fails (a machine that returns a few files only), and
``--unpack FILE``, back here, puts the archive's records into ``data/records`` and its table into
``benchmarks/gpu_paper.md``. A record needs a run from a committed,
clean tree (``repro record --help``): on a copy without ``.git`` the run is kept and its row says
why it was not recorded.

``--cpu`` (automatic without CUDA) is the smoke test: the same plan at a tiny size on the CPU (the
runs use each chapter's ``smoke`` overrides on top of the paper preset, write to
``runs/gpu-smoke/`` and are never recorded), for the chapters of ``--only`` (by default the first
one of the plan that has smoke overrides).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the console script (a record's command then reads `repro run ...`), else the module
_SCRIPT = Path(sys.executable).with_name("repro")
REPRO = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "repro.machinery.cli"]


@dataclass
class Entry:
    """One chapter of the plan: its paper preset (plus ``overrides`` that leave out an external data
    set), the most seconds its run may take on the GPU, and the tiny overrides of the smoke run."""
    number: str
    slug: str
    timeout: int
    overrides: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)
    note: str = ""


# In order of priority: first the runs a CPU could not finish (no paper record yet), then those
# whose paper record was made on the 2-core CPU (a GPU record replaces it).
PLAN = [
    Entry("10", "anticorrelated-noise-injection", 420, {"cifar": "False"},
          note="paper preset without its CIFAR-10 section"),
    Entry("02", "arora-implicit-reg-deep-matrix-factorization", 420),
    Entry("04", "ratio-penalty-adam-matrix-completion", 420),
    Entry("14", "sharpness-aware-minimization", 300, {"cifar": "False"},
          note="paper preset without its CIFAR-10 section"),
    Entry("13", "gd-decreases-gfs-sharpness", 300),
    Entry("18", "visualizing-loss-landscape", 300),
    Entry("05", "subgradient-robust-matrix-recovery", 150,
          smoke={"d": "10", "rank": "2", "factor_rank": "10", "instances": "2", "steps": "60",
                 "record_every": "20"}),
    Entry("09", "grok-or-not-corrupted-algorithmic", 180),
    Entry("08", "grokking-lazy-to-rich", 300),
    Entry("07", "mean-field-piecewise-linear-relu", 300),
    Entry("06", "logistic-regression-large-step-perceptron", 180),
    Entry("03", "arora-implicit-acceleration-overparameterization", 180),
    Entry("11", "dynamical-stability-sgd-implicit-regularization", 300),
    Entry("12", "sgd-stability-loss-surface-geometry", 300),
    Entry("01", "gunasekar-implicit-reg-matrix-factorization", 300),
    Entry("39", "nash-mtl-bargaining", 240, {"qm9": "False"},
          note="paper preset without its QM9 section"),
]
# Paper presets that need a data set that is not on the machine: a row each, never run.
EXCLUDED = {
    "generative-compressed-sensing-uncertainty": "the paper preset needs MNIST",
}


def _git_state() -> dict:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None
    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain")
    except OSError:
        commit = status = None
    return {"commit": commit, "dirty": None if commit is None or status is None else bool(status)}


def unplanned() -> dict[str, str]:
    """Chapters of the book with a paper preset that the plan neither runs nor excludes."""
    from repro.machinery.chapters import all_chapters

    known = {e.slug for e in PLAN} | set(EXCLUDED)
    return {c.slug: "not in the plan of benchmarks/gpu_paper.py yet" for c in all_chapters()
            if c.slug not in known and "paper" in c.presets}


# --- the loops, timed -------------------------------------------------------------------------

@dataclass
class Slice:
    """A timed slice of a chapter's main loop: ``build(device)`` returns ``run(steps)``. A variant
    (``base``: the key of the eager slice) is the same loop run another way (bf16, compiled): it
    is timed on the device only and compared with its base there; ``cuda_only``: it means nothing
    without CUDA (the smoke run leaves it out)."""
    what: str
    build: object
    base: str | None = None
    cuda_only: bool = False


def _slices(tiny: bool = False):
    """chapter number -> Slice: a slice of each chapter's main training loop at its paper shapes,
    on synthetic data, through the library's own code (``tiny``: a few runs of small sizes, for the
    smoke test)."""
    import torch

    from repro import generator
    from repro.models import DeepLinear, EnsembleMLP
    from repro.optim import (
        SAM,
        AntiPGD,
        PerRunGD,
        PerRunGroupRMSprop,
        PerRunNormalizedGD,
        SubGradient,
    )
    from repro.penalties import NuclearFrobeniusRatio
    from repro.problems import MatrixCompletion
    from repro.sweep import Recorder
    from repro.train import fit_matrix, train

    def ch01(dev):
        g = generator(0)
        n, m, S = (8, 20, 2) if tiny else (50, 150, 25)
        A = torch.randn(m, n, n, generator=g, dtype=torch.float64).to(dev)
        y = torch.randn(m, generator=g, dtype=torch.float64).to(dev)
        U = (1e-3 * torch.eye(n, dtype=torch.float64)).repeat(S, 1, 1).to(dev).requires_grad_()
        opt = torch.optim.SGD([U], lr=0.02)

        def run(steps):
            for _ in range(steps):
                X = U @ U.transpose(1, 2)
                loss = ((torch.einsum("mij,sij->sm", A, X) - y) ** 2).mean(1)
                opt.zero_grad()
                loss.sum().backward()
                opt.step()
        return run

    n, runs = (10, 2) if tiny else (100, 84)

    def ch02(dev):
        problem = MatrixCompletion(n, n, 5, n_observed=n * n // 5, test_fraction=0.2, seed=0,
                                   device=dev)
        model = DeepLinear(n, n, 3, n_seeds=runs, scale=1e-3, generator=generator(1),
                           dtype=torch.float64).to(dev)
        opt = PerRunGroupRMSprop(model.parameters(), lr=torch.full((runs,), 1e-3, device=dev))
        return lambda steps: fit_matrix(model, problem.loss, opt, steps, record_every=20,
                                        record={"test": problem.test_error},
                                        stop_below=1e-30, stop_each=True)

    def ch03(dev):
        g = generator(2)
        x = torch.randn(1000, 50, generator=g).to(dev)
        target = torch.randn(50, generator=g).to(dev)
        N = 4 if tiny else 41 * 16
        w = torch.zeros(N, 50, device=dev, requires_grad=True)
        opt = PerRunGD([w], torch.logspace(-4, 0, N).to(dev))

        def run(steps):
            rec = Recorder(N, steps, limit=1e3, device=dev)
            for t in range(steps):
                loss = ((x @ (w - target).T) ** 2).mean(0)
                alive = rec.record(t, loss.detach())
                opt.zero_grad()
                (loss * alive).sum().backward()
                opt.step()
        return run

    def ch04(dev):
        problem = MatrixCompletion(n, n, 5, n_observed=n * n * 3 // 10, seed=0, device=dev)
        model = DeepLinear(n, n, 2, n_seeds=runs // 2 + 1, scale=1e-3, generator=generator(3),
                           dtype=torch.float64).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        return lambda steps: fit_matrix(model, problem.loss, opt, steps,
                                        penalty=NuclearFrobeniusRatio(0.01), record_every=2000)

    def ch05(dev):
        g = generator(4)
        d, m, S = (8, 50, 2) if tiny else (50, 1000, 16)
        A = torch.randn(m, d, d, generator=g).to(dev)
        y = torch.randn(S, m, generator=g).to(dev)
        U = torch.randn(S, d, d, generator=g).to(dev).requires_grad_()
        opt = SubGradient([U], torch.full((S,), 1e-3, device=dev), decay=0.9985)

        def run(steps):
            for _ in range(steps):
                loss = (torch.einsum("mij,sij->sm", A, U @ U.transpose(1, 2)) - y).abs().mean(1)
                opt.zero_grad()
                loss.sum().backward()
                opt.step()
        return run

    def ch06(dev):
        g = generator(5)
        seeds, gammas, n, d = (2, 2, 50, 5) if tiny else (64, 8, 1000, 100)
        x = torch.randn(seeds, n, d, generator=g, dtype=torch.float64).to(dev)
        y = torch.sign(x[..., 0] + 0.01)
        w = torch.zeros(gammas * seeds, d, dtype=torch.float64, device=dev, requires_grad=True)
        opt = PerRunNormalizedGD([w], torch.logspace(-2, 5, gammas, dtype=torch.float64)
                                 .repeat_interleave(seeds).to(dev))

        def closure():
            opt.zero_grad()
            margins = torch.einsum("snd,gsd->gsn", x, w.view(gammas, seeds, d)) * y
            losses = torch.nn.functional.softplus(-margins).mean(-1).reshape(-1)
            losses.sum().backward()
            return losses

        def run(steps):
            for _ in range(steps):
                opt.step(closure)
        return run

    ens, samples = (2, 100) if tiny else (16, 4000)

    def mnist_like(dev, n=samples):
        g = generator(6)
        x = torch.randn(n, 40, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        return {"x": x.to(dev), "y": y.to(dev), "x_test": x[:n // 4].to(dev),
                "y_test": y[:n // 4].to(dev)}

    def ch10(dev, precision="float32", compile_mode=None):
        data = mnist_like(dev)
        model = EnsembleMLP(ens, [40, 100, 100, 10], generator=generator(7)).to(dev)
        opt = AntiPGD(model.parameters(), lr=0.05, sigma=0.01, generator=generator(8))
        return lambda steps: train(model, opt, data, epochs=steps, eval_every=max(1, steps // 4),
                                   progress=False, precision=precision,
                                   compile_mode=compile_mode)

    def ch14(dev):
        data = mnist_like(dev)
        model = EnsembleMLP(ens, [40, 100, 100, 10], generator=generator(9)).to(dev)
        opt = SAM(model.parameters(), base=PerRunGD, rho=torch.full((ens,), 0.05, device=dev),
                  per_run=True, lr=torch.full((ens,), 0.05, device=dev))
        yy = data["y"].repeat(ens)

        def closure():
            logits = model(data["x"])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), yy) * ens
            loss.backward()
            return loss

        def run(steps):
            for _ in range(steps):
                opt.step(closure)
        return run

    def variant(**kwargs):
        return lambda dev: ch10(dev, **kwargs)

    return {
        "01": Slice("GD on U, 25 runs, n = 50, 150 Gaussian measurements", ch01),
        "02": Slice("fit_matrix, depth 3, 84 runs of 100 x 100, group RMSprop, stop_each", ch02),
        "03": Slice("Recorder + PerRunGD, 656 runs, d = 50", ch03),
        "04": Slice("fit_matrix, depth 2, 48 runs of 100 x 100, Adam + ratio penalty", ch04),
        "05": Slice("SubGradient, 16 runs, d = 50, 1000 measurements", ch05),
        "06": Slice("PerRunNormalizedGD, 512 runs, n = 1000, d = 100", ch06),
        "10": Slice("train: 16 MLPs 40-100-100-10, Anti-PGD, full batch 4000", ch10),
        # the same loop three other ways, against the eager row on the same device
        "10 bf16": Slice("the same, precision='bf16'", variant(precision="bf16"), base="10",
                         cuda_only=True),
        "10 compiled": Slice("the same, compile_mode='default' (torch.compile)",
                             variant(compile_mode="default"), base="10"),
        "10 CUDA graphs": Slice("the same, compile_mode='reduce-overhead' (CUDA graphs)",
                                variant(compile_mode="reduce-overhead"), base="10",
                                cuda_only=True),
        "14": Slice("SAM per run, 16 MLPs 40-100-100-10, full batch 4000", ch14),
    }


def _timed(run, dev, steps: int, seconds: float) -> tuple[float, int]:
    """Steps per second of ``run`` (built for ``dev``) over ``steps`` steps (fewer if ``seconds``
    run out on a slow device: then the rate of the steps done), after a warm-up step (3 on CUDA:
    a compiled loop compiles, and records its CUDA graphs, there)."""
    import torch

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    run(3 if dev.type == "cuda" else 1)
    sync()
    done, t0 = 0, time.perf_counter()
    # on the CPU one step at a time, so that a slow loop stops soon after ``seconds``
    chunk = max(1, steps // 10) if dev.type == "cuda" else 1
    while done < steps and time.perf_counter() - t0 < seconds:
        run(chunk)
        sync()
        done += chunk
    return done / (time.perf_counter() - t0), done


def _syncs_per_step(run, dev, steps: int = 20) -> float | None:
    """Synchronisations per step on CUDA, as ``torch.cuda.set_sync_debug_mode`` reports them,
    for ``run`` (built for ``dev``, warmed up)."""
    import torch

    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run(steps)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def time_loops(device, steps: int, device_seconds: float, cpu_seconds: float, log,
               deadline: float = float("inf")) -> list[dict]:
    """Each slice timed on ``device`` (and on the CPU, unless it is a variant); a slice that would
    start less than 20 s before ``deadline`` (a ``time.perf_counter()`` value) is skipped."""
    import torch

    rows: dict[str, dict] = {}
    cpu = torch.device("cpu")
    for key, sl in _slices(tiny=device.type == "cpu").items():
        if sl.cuda_only and device.type != "cuda":
            continue
        row = {"chapter": key, "loop": sl.what}
        if time.perf_counter() > deadline - 20:
            row["error"] = "skipped: the budget is spent"
            rows[key] = row
            continue
        try:
            # built once per device: a compiled variant compiles once, in the warm-up steps
            run = sl.build(device)
            row["device_steps_per_s"], row["device_steps"] = _timed(run, device, steps,
                                                                    device_seconds)
            row["syncs_per_step"] = _syncs_per_step(run, device)
            if sl.base is None:
                row["cpu_steps_per_s"], row["cpu_steps"] = _timed(sl.build(cpu), cpu, steps,
                                                                  cpu_seconds)
                row["speedup"] = row["device_steps_per_s"] / row["cpu_steps_per_s"]
            elif rows.get(sl.base, {}).get("device_steps_per_s"):
                row["vs"] = sl.base
                row["vs_base"] = row["device_steps_per_s"] / rows[sl.base]["device_steps_per_s"]
        except Exception as exc:  # one broken slice must not cost the others
            row["error"] = f"{type(exc).__name__}: {exc}"
        log(f"loop {key}: {row}")
        rows[key] = row
    return list(rows.values())


# --- the chapters, run and recorded -----------------------------------------------------------

def validate(entries: list[Entry], smoke: bool) -> list[str]:
    """Every entry's chapter exists, has a paper preset, and its parameters resolve."""
    from repro.machinery.chapters import find_chapter

    problems = []
    for e in entries:
        try:
            chapter = find_chapter(e.slug)
            if "paper" not in chapter.presets:
                problems.append(f"{e.slug}: no paper preset")
                continue
            chapter.resolve("paper", {**e.overrides, **(e.smoke if smoke else {})})
        except Exception as exc:
            problems.append(f"{e.slug}: {exc}")
    return problems


def run_chapter(e: Entry, out: Path, runs_dir: Path, smoke: bool, record: bool, timeout: float,
                log) -> dict:
    folder = runs_dir / e.slug
    shutil.rmtree(ROOT / folder, ignore_errors=True)
    params = {**e.overrides, **(e.smoke if smoke else {})}
    cmd = [*REPRO, "run", e.slug, "--preset", "paper", "--out", str(folder), "--no-progress"]
    for k, v in params.items():
        cmd += ["-p", f"{k}={v}"]
    row = {"chapter": e.number, "slug": e.slug, "overrides": params, "timeout_s": timeout}
    (out / "logs").mkdir(parents=True, exist_ok=True)
    logfile = out / "logs" / f"{e.slug}.log"
    t0 = time.perf_counter()
    with logfile.open("w") as fh:
        fh.write(" ".join(cmd) + "\n")
        fh.flush()
        # a session of its own, so that a run stopped at its limit takes its workers with it
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
            _stop(proc)
    row["wall_s"] = round(time.perf_counter() - t0, 1)
    if rc is None:
        row["status"] = f"stopped at its limit of {timeout:.0f} s"
        return row
    row["exit"] = rc
    run_dir = ROOT / folder
    if (run_dir / "provenance.json").is_file():
        keep = out / "runs" / e.slug
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "provenance.json", "verdicts.json"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, keep / name)
        prov = json.loads((run_dir / "provenance.json").read_text())
        row["device"] = (prov.get("environment") or {}).get("device")
        row["verdicts"] = prov.get("verdicts")
        row["run_wall_s"] = prov.get("wall_time_s")
    row["status"] = {0: "ok", 1: "ok, a claim failed", 2: "refused",
                     3: "failed"}.get(rc, f"exit {rc}")
    if rc in (0, 1):
        row["folder"] = str(folder)
        if not record:
            row["record"] = "not recorded: smoke run" if smoke else "not recorded (--no-record)"
    log(f"{e.slug}: {row['status']} in {row['wall_s']} s")
    return row


def _stop(proc: subprocess.Popen) -> None:
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def record_run(row: dict, out: Path, log) -> None:
    """`repro record` of a finished run, after every run has finished: a record written into
    data/records makes the tree dirty, and a run started after it could not be recorded."""
    done = subprocess.run([*REPRO, "record", row["folder"], "--replace"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode == 0:
        src = ROOT / "data" / "records" / row["slug"] / "paper"
        shutil.copytree(src, out / "records" / row["slug"] / "paper", dirs_exist_ok=True)
        row["record"] = "recorded"
    else:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["(no message)"]
        row["record"] = "not recorded: " + lines[-1]
    log(f"{row['slug']}: {row['record']}")


# --- the table --------------------------------------------------------------------------------

def _fmt(x, spec=".3g"):
    return "" if x is None else format(x, spec) if isinstance(x, float) else str(x)


def write_table(out: Path, table: Path, meta: dict, loops: list[dict], runs: list[dict]) -> None:
    lines = [f"# The paper presets on {meta['device_name']}", "",
             f"{meta['when']}; `benchmarks/gpu_paper.py {' '.join(meta['argv'])}` "
             f"({meta['mode']}), torch {meta['torch']}, {meta['cpus']} CPU threads, commit "
             f"{(meta['git']['commit'] or 'none')[:10]}"
             f"{' (uncommitted changes)' if meta['git']['dirty'] else ''}.", "",
             "## Training loops: steps per second", "",
             "A slice of each chapter's main loop at its paper shapes, synthetic data, the "
             "library's code; the same slice on both devices in the same process. Syncs per step: "
             "host synchronisations that `torch.cuda.set_sync_debug_mode` reports in 20 steps."
             + (" A smoke run times tiny versions of the slices (a few runs, small sizes): its "
                "numbers only show that the path works." if meta["device"] != "GPU" else ""), "",
             "A row that names another (bf16, compiled) is that loop run another way: it is "
             f"timed on the {meta['device']} only, and its speed-up is against that row there "
             "(the warm-up steps, not the rate, pay for a compilation).", "",
             f"| chapter | loop | {meta['device']} steps/s | CPU steps/s | speed-up | "
             "syncs/step |", "|---|---|---|---|---|---|"]
    for r in loops:
        if "error" in r:
            lines.append(f"| {r['chapter']} | {r['loop']} | error: {r['error']} | | | |")
            continue
        if "speedup" in r:
            cpu, speedup = _fmt(r["cpu_steps_per_s"]), _fmt(r["speedup"], ".2f")
        else:
            cpu = ""
            speedup = f"{_fmt(r['vs_base'], '.2f')} vs row {r['vs']}" if "vs_base" in r else ""
        lines.append(f"| {r['chapter']} | {r['loop']} | {_fmt(r['device_steps_per_s'])} | "
                     f"{cpu} | {speedup} | {_fmt(r['syncs_per_step'], '.2f') or 'n/a'} |")
    lines += ["", "## Paper presets", "",
              "| chapter | run | wall s | limit s | device | verdicts | record |",
              "|---|---|---|---|---|---|---|"]
    for r in runs:
        over = " ".join(f"-p {k}={v}" for k, v in r.get("overrides", {}).items())
        v = r.get("verdicts") or {}
        verdicts = f"{v.get('pass', 0)} pass, {v.get('fail', 0)} fail" if v else ""
        lines.append(f"| {r['chapter']} {r['slug']} {over} | {r['status']} | "
                     f"{_fmt(r.get('wall_s'))} | {_fmt(r.get('timeout_s'))} | "
                     f"{r.get('device') or ''} | {verdicts} | {r.get('record', '')} |")
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("\n".join(lines) + "\n")
    (out / "gpu_paper.json").write_text(json.dumps(
        {"meta": meta, "loops": loops, "runs": runs}, indent=1, default=str))


# --- the command ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="folder for the table, the runs' "
                   "files, the records and the logs (default: runs/gpu-paper)")
    p.add_argument("--runs", default=None, help="folder of the run folders (default: runs/gpu, "
                   "with --cpu runs/gpu-smoke)")
    p.add_argument("--table", default=None, help="where to write the Markdown table "
                   "(default: OUT/gpu_paper.md)")
    p.add_argument("--budget", type=float, default=540.0,
                   help="seconds for the whole command (default 540: a 10-minute slot)")
    p.add_argument("--jobs", type=int, default=None,
                   help="chapters run at once (default: 6 on a GPU, 1 on the CPU)")
    p.add_argument("--only", default="", help="comma-separated chapter numbers or slugs")
    p.add_argument("--cpu", action="store_true", help="the smoke test: tiny, on the CPU")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and check every preset's parameters; run nothing")
    p.add_argument("--no-record", action="store_true", help="run, but do not `repro record`")
    p.add_argument("--no-loops", action="store_true", help="skip the loop timings")
    p.add_argument("--no-runs", action="store_true", help="only the loop timings")
    p.add_argument("--loop-steps", type=int, default=None,
                   help="steps of each timed slice (default 200 on a GPU, 10 with --cpu)")
    p.add_argument("--loop-reserve", type=float, default=None,
                   help="seconds of the budget kept for the loop timings, which come last "
                   "(default 120 on a GPU, 40 with --cpu)")
    p.add_argument("--pack", default=None, metavar="FILE",
                   help="also write everything under --out into this .tgz, whatever happens")
    p.add_argument("--unpack", default=None, metavar="FILE",
                   help="take a packed run back: its records into data/records, its table into "
                   "benchmarks/gpu_paper.md (run nothing)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    for name in ("out", "table", "runs", "pack", "unpack"):   # the caller's paths, made absolute
        if getattr(args, name):
            setattr(args, name, str(Path(getattr(args, name)).resolve()))
    os.chdir(ROOT)
    if args.unpack:
        return unpack(Path(args.unpack))
    if not args.pack:
        return run_plan(args, argv, started)
    try:
        return run_plan(args, argv, started)
    finally:
        pack(Path(args.out or ROOT / "runs" / "gpu-paper"), Path(args.pack))


def pack(out: Path, archive: Path) -> None:
    """Everything under ``out``, as one archive (written whole: first to a temporary name)."""
    if not out.is_dir():
        return
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(out, arcname="gpu-paper")
    partial.replace(archive)
    print(f"packed {out} into {archive}", flush=True)


def unpack(archive: Path, root: Path = ROOT) -> int:
    """Put a packed GPU run's records into data/records and its table into benchmarks/ of the
    book at ``root``; the whole archive is kept, unpacked, under runs/gpu-paper-<its time>/."""
    if not archive.is_file():
        print(f"no such archive: {archive}", file=sys.stderr)
        return 2
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            if not names or any(n != "gpu-paper" and not n.startswith("gpu-paper/")
                                for n in names):
                print(f"{archive} is not an archive of gpu_paper.py --pack", file=sys.stderr)
                return 2
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(archive.stat().st_mtime))
            dest = root / "runs" / f"gpu-paper-{stamp}"
            dest.mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, filter="data")    # no absolute paths, links out or devices
    except (tarfile.TarError, OSError) as exc:
        print(f"{archive}: cannot be read as a packed run ({exc})", file=sys.stderr)
        return 2
    got = dest / "gpu-paper"
    taken = []
    for folder in sorted((got / "records").glob("*/paper")):
        slug = folder.parent.name
        if not (folder / "provenance.json").is_file():
            continue
        target = root / "data" / "records" / slug / "paper"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        taken.append(slug)
    table = got / "gpu_paper.md"
    if table.is_file():
        shutil.copy2(table, root / "benchmarks" / "gpu_paper.md")
    print(f"unpacked into {dest}: {len(taken)} records into data/records "
          f"({', '.join(taken) or 'none'}); table "
          f"{'into benchmarks/gpu_paper.md' if table.is_file() else 'missing'}")
    return 0


def run_plan(args, argv, started: float) -> int:
    import torch

    smoke = (args.cpu or not torch.cuda.is_available()) and not args.dry_run
    device = torch.device("cpu" if smoke else "cuda")
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    entries = [e for e in PLAN if not wanted or e.number in wanted or e.slug in wanted]
    if smoke and not wanted:
        entries = [next(e for e in PLAN if e.smoke)]
    if smoke:
        missing = [e.slug for e in entries if not e.smoke]
        if missing:
            print(f"no smoke overrides for {missing}: their paper presets would run at full size "
                  "on the CPU", file=sys.stderr)
            return 2
    problems = validate(entries, smoke)
    if args.dry_run:   # the GPU plan, and the smoke overrides of the entries that have them
        problems += validate([e for e in entries if e.smoke], smoke=True)
    mode = "smoke run on the CPU" if smoke else "GPU run" + (" (dry run)" if args.dry_run else "")
    print(f"{mode}: budget {args.budget:.0f} s, chapters in order of priority:")
    for e in entries:
        extra = " ".join(f"-p {k}={v}" for k, v in {**e.overrides,
                                                    **(e.smoke if smoke else {})}.items())
        print(f"  {e.number} {e.slug} (limit {e.timeout} s) {extra}  {e.note}".rstrip())
    for slug, why in {**EXCLUDED, **unplanned()}.items():
        print(f"  -- {slug}: not run ({why})")
    if problems:
        print("invalid plan:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.dry_run:
        print("every preset's parameters resolve; nothing run")
        return 0

    out = Path(args.out or ROOT / "runs" / "gpu-paper")
    out.mkdir(parents=True, exist_ok=True)
    table = Path(args.table) if args.table else out / "gpu_paper.md"
    logs = out / "logs"
    logs.mkdir(exist_ok=True)

    def log(line: str) -> None:
        stamp = f"[{time.perf_counter() - started:6.1f} s] "
        print(stamp + line, flush=True)
        with (logs / "gpu_paper.log").open("a") as fh:
            fh.write(stamp + line + "\n")

    meta = {"argv": sys.argv[1:] if argv is None else argv, "mode": mode,
            "device": "GPU" if not smoke else "CPU (smoke)",
            "device_name": torch.cuda.get_device_name() if not smoke else "the CPU (smoke run)",
            "torch": torch.__version__, "cpus": torch.get_num_threads(),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    meta["git"] = _git_state()
    if not smoke and not (meta["git"]["commit"] and meta["git"]["dirty"] is False):
        log(f"warning: the tree is not a clean git checkout ({meta['git']}): its runs cannot "
            "become records (`repro record` needs a commit)")
    runs: list[dict] = []
    loops: list[dict] = []
    reserve = 0.0 if args.no_loops else (args.loop_reserve if args.loop_reserve is not None
                                         else 40.0 if smoke else 120.0)

    def remaining() -> float:
        """Seconds left for the chapters: the budget less the time spent and the loops' share."""
        return args.budget - reserve - (time.perf_counter() - started)

    jobs = args.jobs or (1 if smoke else 6)
    env_threads = str(max(1, (os.cpu_count() or 2) // jobs))
    os.environ.setdefault("OMP_NUM_THREADS", env_threads)

    lock = threading.Lock()
    runs_dir = Path(args.runs or ("runs/gpu-smoke" if smoke else "runs/gpu"))

    def one(e: Entry) -> dict:
        left = remaining() - 45          # room for the records, the table and the copies
        if left < min(60, e.timeout):
            row = {"chapter": e.number, "slug": e.slug, "overrides": e.overrides,
                   "status": f"skipped: {max(0, left):.0f} s left of the budget"}
        else:
            log(f"{e.slug}: start (limit {min(e.timeout, left):.0f} s)")
            row = run_chapter(e, out, runs_dir, smoke, record=not (args.no_record or smoke),
                              timeout=min(e.timeout, left), log=log)
        with lock:
            runs.append(row)
            runs.sort(key=lambda r: [x.slug for x in entries].index(r["slug"]))
            write_table(out, table, meta, loops, runs)
        return row

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, [] if args.no_runs else entries))
    for row in runs:
        if row.get("folder") and "record" not in row:
            record_run(row, out, log)
            write_table(out, table, meta, loops, runs)
    for slug, why in {**EXCLUDED, **unplanned()}.items():
        runs.append({"chapter": "", "slug": slug, "status": f"not run: {why}"})
    write_table(out, table, meta, loops, runs)
    if not args.no_loops:     # last: the records matter more, and the GPU is free of runs now
        steps = args.loop_steps or (10 if smoke else 200)
        loops = time_loops(device, steps, device_seconds=2.0 if smoke else 10.0,
                           cpu_seconds=2.0 if smoke else 4.0, log=log,
                           deadline=started + args.budget)
        write_table(out, table, meta, loops, runs)
    log(f"table: {table}")
    return 0 if all(r["status"].startswith(("ok", "not run", "skipped")) for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
