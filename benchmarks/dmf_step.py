"""Time one optimisation step of depth-3 matrix completion (100 x 100, rank 5) for a sweep of
configurations run batched (one DeepLinear with a leading run dimension, trained by
repro.train.fit_matrix) against the same configurations run one after another.

    python benchmarks/dmf_step.py                     # prints a markdown report
    python benchmarks/dmf_step.py --threads 2 --out /tmp/dmf.md
    python benchmarks/dmf_step.py --device cuda

The sweep is seeds x initialisation scales, as in the experiments of the deep-matrix-factorization
chapter: every configuration has its own problem draw (rank-5 truth with |W*|_F = n and its own
observed entries) and its own initialisation. Both ways train with plain gradient descent at the
chapter's step size for the same number of steps from the same initial factors, so their final
losses agree to float round-off; the report gives the largest difference as a check. Only
measures and reports: nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from run import cpu_model  # noqa: E402  (benchmarks/run.py, beside this script)

import repro  # noqa: E402
from repro.models import DeepLinear  # noqa: E402
from repro.optim import PerRunGD  # noqa: E402
from repro.problems import MatrixCompletion  # noqa: E402
from repro.train import fit_matrix  # noqa: E402


def initial_factors(n: int, depth: int, inits: list[float], seed: int, dtype, device):
    """The factors of every configuration, (S, n, n) each: std scale^(1/N)/sqrt(n) per factor."""
    model = DeepLinear(n, n, depth, n_seeds=len(inits), scale=1.0, dtype=dtype,
                       generator=repro.generator(seed), device=device)
    per = torch.tensor([a ** (1 / depth) / math.sqrt(n) for a in inits], dtype=dtype, device=device)
    return [f.detach() * per.reshape(-1, 1, 1) for f in model.factors]


def run(problem, factors, lr, steps):
    """fit_matrix on the given factors (all runs at once); returns (seconds, final loss)."""
    model = DeepLinear.from_factors(factors)
    hist = fit_matrix(model, problem.loss, PerRunGD(model.parameters(), lr), steps,
                      check_every=max(steps, 1))
    return hist["seconds"], hist["loss"][-1]


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rank", type=int, default=5)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--count", type=int, default=2000, help="observed entries per problem")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--inits", default="1e-3,1e-4,1e-5", help="init scales, comma-separated")
    ap.add_argument("--steps", type=int, default=100, help="steps per timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: repro.device())")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--out", default=None, help="also write the report here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else repro.device()
    dtype = getattr(torch, args.dtype)
    inits = [float(v) for v in args.inits.split(",")]
    configs = [(s, a) for s in range(args.seeds) for a in inits]      # seeds x init scales
    S = len(configs)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    # one problem draw per configuration, all held in one batched problem
    problem = MatrixCompletion(args.n, args.n, args.rank, n_observed=args.count, n_instances=S,
                               seed=0, fro_norm=float(args.n), dtype=dtype, device=device)
    factors = initial_factors(args.n, args.depth, [a for _, a in configs], 1, dtype, device)
    s_typ = args.n / math.sqrt(args.rank)
    unit = 2.0 / (args.depth * s_typ ** (2 - 2 / args.depth))
    lr_all = torch.full((S,), unit * args.count, dtype=dtype, device=device)

    singles = [problem.select(k) for k in range(S)]   # same truth and mask as run k
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    run(problem, [f.clone() for f in factors], lr_all, 5)             # warm-up
    batched, sequential = [], []
    loss_b = loss_s = None
    for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        _, loss_b = run(problem, [f.clone() for f in factors], lr_all, args.steps)
        sync()
        batched.append((time.perf_counter() - t0) / args.steps)
        sync()
        t0 = time.perf_counter()
        losses = []
        for k in range(S):
            _, lk = run(singles[k], [f[k:k + 1].clone() for f in factors], lr_all[k:k + 1],
                        args.steps)
            losses.append(lk)
        sync()
        sequential.append((time.perf_counter() - t0) / args.steps)
        loss_s = torch.cat(losses)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    check = float(((loss_b - loss_s).abs() / loss_s.abs()).max())

    mb, ms = statistics.median(batched), statistics.median(sequential)
    lines = [
        f"# Depth-{args.depth} completion: one optimisation step, batched vs one after another",
        "",
        f"Environment: {cpu_model()}, {os.cpu_count()} CPUs, device {device}, torch "
        f"{torch.__version__}, threads set {args.threads} / reported {torch.get_num_threads()}, "
        f"Python {platform.python_version()}, {args.dtype}; load average {load_start:.2f} at the "
        f"start, {load_end:.2f} at the end.",
        "",
        f"Sweep: {args.seeds} seeds x {len(inits)} init scales ({args.inits}) = {S} "
        f"configurations, "
        f"{args.n}x{args.n}, rank {args.rank}, {args.count} observed entries each, depth "
        f"{args.depth}; {args.steps} steps per timed run, median of {args.repeats} repeats.",
        "",
        "| way | time per sweep step (ms) | per configuration (ms) | min / max (ms) |",
        "|---|---|---|---|",
        f"| batched (one DeepLinear, {S} runs) | {1e3 * mb:.2f} | {1e3 * mb / S:.3f} | "
        f"{1e3 * min(batched):.2f} / {1e3 * max(batched):.2f} |",
        f"| one after another ({S} DeepLinear) | {1e3 * ms:.2f} | {1e3 * ms / S:.3f} | "
        f"{1e3 * min(sequential):.2f} / {1e3 * max(sequential):.2f} |",
        "",
        f"Speed-up of batching (one after another / batched): **{ms / mb:.2f}x**. Check: largest "
        f"relative difference of the final losses between the two ways {check:.1e}.",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return report


if __name__ == "__main__":
    main()
