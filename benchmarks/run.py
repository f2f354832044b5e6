"""Measure what the book's execution costs and what batching seeds buys.

    python benchmarks/run.py [--out benchmarks/results.md] [--threads N] [--skip ...]

Three groups of numbers (benchmarks/README.md says what each means):

(a) overhead   papermill executing a notebook with one trivial cell, and one that only imports
               repro and torch: the fixed cost every executed notebook pays.
(b) chapters   wall time of each chapter notebook (chapters/*/*.ipynb) at the quick preset,
               executed with papermill from the chapter's folder.
(c) batching   the same work run for many seeds at once (a leading seed dimension) and one seed
               at a time in a Python loop: both times and their ratio.

Nothing here asserts a timing: the script measures and reports. It writes a markdown report to
--out and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# ---------------------------------------------------------------------------------------------
# environment


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(threads: int, device: str) -> list[tuple[str, str]]:
    import torch

    return [
        ("date (UTC)", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("CPU", cpu_model()),
        ("CPU count (os.cpu_count)", str(os.cpu_count())),
        ("torch threads (set / get_num_threads)", f"{threads} / {torch.get_num_threads()}"),
        ("torch interop threads", str(torch.get_num_interop_threads())),
        ("OMP_NUM_THREADS (inherited by kernels)", os.environ.get("OMP_NUM_THREADS", "unset")),
        ("load average (1/5/15 min) at start", "%.2f / %.2f / %.2f" % os.getloadavg()),
        ("torch", torch.__version__),
        ("device used for (c)", device),
        ("python", platform.python_version()),
        ("platform", platform.platform()),
    ]


# ---------------------------------------------------------------------------------------------
# (a) and (b): executing notebooks with papermill


def _notebook(cells: list[str]):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    return nb


def _execute(path: Path, out_dir: Path, cwd: Path, parameters: dict | None = None) -> float:
    import papermill

    start = time.perf_counter()
    papermill.execute_notebook(
        str(path),
        str(out_dir / path.name),
        parameters=parameters or {},
        cwd=str(cwd),
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
    )
    return time.perf_counter() - start


def bench_overhead(repeats: int) -> list[dict]:
    import nbformat

    cases = [
        ("one trivial cell (`1 + 1`)", ["1 + 1"]),
        ("imports repro and torch", ["import torch\nimport repro"]),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "out").mkdir()
        for name, cells in cases:
            path = tmp / f"bench-{len(rows)}.ipynb"
            nbformat.write(_notebook(cells), path)
            times = [_execute(path, tmp / "out", tmp) for _ in range(repeats)]
            rows.append({
                "case": name, "median": statistics.median(times), "min": min(times), "n": repeats
            })
    return rows


def _chapter_parameters(path: Path, metrics_path: Path) -> dict:
    """The runner's standard parameters, passed only where the notebook declares them."""
    import papermill

    declared = papermill.inspect_notebook(str(path))
    wanted = {"preset": "quick", "metrics_path": str(metrics_path)}
    return {name: value for name, value in wanted.items() if name in declared}


def bench_chapters() -> list[dict]:
    notebooks = sorted((REPO / "chapters").glob("*/*.ipynb"))
    rows = []
    for path in notebooks:
        if ".ipynb_checkpoints" in path.parts:
            continue
        name = f"{path.parent.name}/{path.name}"
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            try:
                parameters = _chapter_parameters(path, tmp / "metrics.json")
                seconds = _execute(path, tmp, cwd=path.parent, parameters=parameters)
                rows.append({"notebook": name, "seconds": seconds, "status": "ok"})
            except Exception as error:  # report and go on: a benchmark, not a test
                reason = getattr(error, "ename", type(error).__name__)
                rows.append({"notebook": name, "seconds": None, "status": f"failed ({reason})"})
    return rows


# ---------------------------------------------------------------------------------------------
# (c) batched seeds versus a Python loop over seeds


def _timed(fn, device) -> tuple[float, object]:
    import torch

    start = time.perf_counter()
    result = fn()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def bench_mlp(n_seeds: int, steps: int, hidden: int, lr: float, device: str) -> list[dict]:
    """Full-batch GD on mnist1d for S seeds: EnsembleMLP, torch.func.vmap, and a loop of MLPs.

    All three start from the same S initialisations, so their final losses must agree; the
    largest difference is reported as a check that the work is the same.
    """
    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap

    from repro.data import mnist1d
    from repro.losses import per_model_cross_entropy
    from repro.models import EnsembleMLP

    d = mnist1d(seed=0, device=device)
    x, y = d["x"], d["y"]
    sizes = [x.shape[1], hidden, hidden, 10]
    init = EnsembleMLP(n_seeds, sizes, generator=torch.Generator().manual_seed(0)).to(device)

    def batched(n_steps=steps):
        model = EnsembleMLP(n_seeds, sizes).to(device)
        model.load_state_dict(init.state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(n_steps):
            opt.zero_grad(set_to_none=True)
            per_model_cross_entropy(model(x), y).sum().backward()
            opt.step()
        with torch.no_grad():
            return per_model_cross_entropy(model(x), y)

    def looped(n_steps=steps, n_models=n_seeds):
        finals = []
        for i in range(n_models):
            mlp = init.member(i)
            opt = torch.optim.SGD(mlp.parameters(), lr=lr)
            for _ in range(n_steps):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(mlp(x), y).backward()
                opt.step()
            with torch.no_grad():
                finals.append(torch.nn.functional.cross_entropy(mlp(x), y))
        return torch.stack(finals)

    def vmapped(n_steps=steps):
        members = [init.member(i) for i in range(n_seeds)]
        params, _ = stack_module_state(members)
        params = {k: v.detach().clone() for k, v in params.items()}
        base = members[0]

        def loss(p, inputs, targets):
            return torch.nn.functional.cross_entropy(functional_call(base, p, (inputs,)), targets)

        step_grad = vmap(grad(loss), in_dims=(0, None, None))
        for _ in range(n_steps):
            grads = step_grad(params, x, y)
            params = {k: params[k] - lr * grads[k] for k in params}
        return vmap(loss, in_dims=(0, None, None))(params, x, y)

    # warm up each path (first-call allocations, vmap setup) on a couple of steps
    batched(2), looped(2, 1), vmapped(2)

    t_batched, loss_batched = _timed(batched, device)
    t_vmap, loss_vmap = _timed(vmapped, device)
    t_looped, loss_looped = _timed(looped, device)
    work = (
        f"S={n_seeds} MLPs {sizes}, full-batch GD (lr {lr}) on mnist1d "
        f"({x.shape[0]} examples), {steps} steps"
    )
    return [
        {
            "benchmark": "MLP on mnist1d: EnsembleMLP (batched tensors)",
            "work": work,
            "batched": t_batched,
            "looped": t_looped,
            "check": "max final-loss diff vs loop "
            f"{float((loss_batched - loss_looped).abs().max()):.1e}",
        },
        {
            "benchmark": "MLP on mnist1d: torch.func.vmap over seeds",
            "work": work,
            "batched": t_vmap,
            "looped": t_looped,
            "check": "max final-loss diff vs loop "
            f"{float((loss_vmap - loss_looped).abs().max()):.1e}",
        },
    ]


def bench_quadratic(
    n_seeds: int, steps: int, dim: int, lr: float, sigma: float, device: str
) -> list[dict]:
    """Perturbed GD w <- w - lr * A w + sigma * xi on a fixed quadratic 0.5 w^T A w, S seeds."""
    import torch

    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    A = (q @ torch.diag(torch.linspace(0.1, 1.0, dim)) @ q.T).to(device)  # eigenvalues in [0.1, 1]
    w0 = torch.randn(n_seeds, dim, generator=g).to(device)

    def batched():
        noise = torch.Generator(device=device).manual_seed(1)
        w = w0.clone()
        for _ in range(steps):
            w = w - lr * (w @ A) + sigma * torch.randn(w.shape, generator=noise, device=device)
        return 0.5 * ((w @ A) * w).sum(dim=1)

    def looped():
        finals = []
        for i in range(n_seeds):
            noise = torch.Generator(device=device).manual_seed(1 + i)
            w = w0[i].clone()
            for _ in range(steps):
                w = w - lr * (A @ w) + sigma * torch.randn(w.shape, generator=noise, device=device)
            finals.append(0.5 * w @ A @ w)
        return torch.stack(finals)

    batched()  # warm-up (first-call allocations)
    t_batched, loss_batched = _timed(batched, device)
    t_looped, loss_looped = _timed(looped, device)
    # different noise streams, same law: the mean final losses agree statistically
    check = f"mean final loss {float(loss_batched.mean()):.3f} vs {float(loss_looped.mean()):.3f}"
    return [
        {
            "benchmark": "noisy GD on a quadratic (vector problem)",
            "work": f"S={n_seeds} seeds, d={dim}, {steps} steps, lr {lr}, sigma {sigma}",
            "batched": t_batched,
            "looped": t_looped,
            "check": check,
        }
    ]


# ---------------------------------------------------------------------------------------------
# report


def _s(seconds) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def render(env, overhead, chapters, batching, notes) -> str:
    lines = [
        "# Benchmarks", "", "Measured by `python benchmarks/run.py`; see benchmarks/README.md.", ""
    ]
    lines += ["## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in env]
    lines += ["", "## (a) Per-notebook overhead of papermill execution", ""]
    if overhead is None:
        lines.append("Skipped (--skip overhead).")
    else:
        lines += ["| notebook | median (s) | min (s) | runs |", "|---|---|---|---|"]
        lines += [
            f"| {r['case']} | {_s(r['median'])} | {_s(r['min'])} | {r['n']} |" for r in overhead
        ]
    lines += ["", "## (b) Chapter notebooks at the quick preset", ""]
    if chapters is None:
        lines.append("Skipped (--skip chapters).")
    elif not chapters:
        lines.append("No chapter notebooks exist yet (chapters/*/*.ipynb): nothing to time.")
    else:
        lines += ["| notebook | wall time (s) | status |", "|---|---|---|"]
        lines += [f"| {r['notebook']} | {_s(r['seconds'])} | {r['status']} |" for r in chapters]
        ok = [r["seconds"] for r in chapters if r["seconds"] is not None]
        if ok:
            lines += ["", f"Total of the notebooks that ran: {sum(ok):.1f} s."]
    lines += ["", "## (c) Batched seeds versus a Python loop over seeds", ""]
    if batching is None:
        lines.append("Skipped (--skip batching).")
    else:
        lines += [
            "| benchmark | work | batched (s) | looped (s) | looped / batched | check |",
            "|---|---|---|---|---|---|",
        ]
        for r in batching:
            ratio = r["looped"] / r["batched"] if r["batched"] else float("nan")
            lines.append(
                f"| {r['benchmark']} | {r['work']} | {_s(r['batched'])} | {_s(r['looped'])} "
                f"| {ratio:.1f}x | {r['check']} |"
            )
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE / "results.md", help="markdown report to write"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads for (c)"
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=["overhead", "chapters", "batching"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per overhead notebook")
    parser.add_argument("--device", default="cpu", help="device for (c): cpu (default), cuda, ...")
    parser.add_argument("--mlp-seeds", type=int, default=32)
    parser.add_argument("--mlp-steps", type=int, default=200)
    parser.add_argument("--mlp-hidden", type=int, default=32)
    parser.add_argument("--quad-seeds", type=int, default=256)
    parser.add_argument("--quad-steps", type=int, default=500)
    parser.add_argument("--quad-dim", type=int, default=50)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    notes = []
    env = environment(args.threads, args.device)

    def attempt(what, fn):
        try:
            return fn()
        except Exception:
            notes.append(f"{what} failed: " + traceback.format_exc().strip().splitlines()[-1])
            return None

    overhead = (
        None if "overhead" in args.skip
        else attempt("(a) overhead", lambda: bench_overhead(args.repeats))
    )
    chapters = None if "chapters" in args.skip else attempt("(b) chapters", bench_chapters)
    batching = None
    if "batching" not in args.skip:
        batching = attempt(
            "(c) batching",
            lambda: bench_mlp(args.mlp_seeds, args.mlp_steps, args.mlp_hidden, 0.1, args.device)
            + bench_quadratic(
                args.quad_seeds, args.quad_steps, args.quad_dim, 0.1, 0.1, args.device
            ),
        )
    env.append(("load average (1/5/15 min) at end", "%.2f / %.2f / %.2f" % os.getloadavg()))
    if max(os.getloadavg()[:2]) > (os.cpu_count() or 1):
        notes.append(
            "The machine was busy (load average above the CPU count): other processes shared "
            "the cores, so these times are pessimistic and noisy."
        )
    report = render(env, overhead, chapters, batching, notes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
