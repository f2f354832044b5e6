"""Time the Nash-MTL weight solver (repro.mtl.nash_solve) against a cvxpy
sequence-of-convex-programs solver of the kind the paper's code uses, on the same Gram sequences.

    python benchmarks/nash_solver.py                 # prints a markdown table
    python benchmarks/nash_solver.py --steps 20 --out /tmp/nash.md

Both solvers run in this one process on one thread (the BLAS thread variables are set before
numpy is imported). Each Gram sequence imitates training: the task gradients drift a little from
one step to the next, so the cvxpy solver can start from its previous weights as the paper's does.

The cvxpy solver (our own code, following the paper's Sec. 3.2 and its published settings): the
Gram matrix is divided by its Frobenius norm; the first program minimises sum_i beta_i subject to
log alpha_i + log beta_i >= 0 (beta = M alpha); each further program adds the linearisation of
phi(alpha) = sum_i log alpha_i + log beta_i at the previous alpha (a convex-concave step); at most
20 programs, stopping when ||M alpha - 1/alpha|| < 1e-3 (the paper code's stopping test). A failed
program keeps the previous alpha, as the paper's code does; we count those. The conic solver is
ECOS with max_iters=100 as in the paper's code when ECOS is installed, else CLARABEL (--solver).
The problem is compiled once per K with parameters (DPP), so the compile cost is not counted per
solve.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from repro.mtl import NashSolverError, nash_residual, nash_solve  # noqa: E402


def gram_sequence(kind: str, K: int, steps: int, seed: int, P: int = 200) -> list[np.ndarray]:
    """`steps` Gram matrices of K drifting gradients in R^P."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((K, P))
    scale = np.ones((K, 1))
    if kind == "spread":                       # norms over eight orders of magnitude
        scale = 10.0 ** rng.uniform(-4, 4, (K, 1))
    if kind == "conflict":                     # two camps pulling in nearly opposite directions
        base = rng.standard_normal(P)
        signs = np.where(np.arange(K) % 2 == 0, 1.0, -1.0)
        G = signs[:, None] * base[None, :] + 0.15 * G
    if kind == "parallel":                     # all gradients inside a narrow cone
        G = rng.standard_normal(P)[None, :] + 0.02 * G
    out = []
    for _ in range(steps):
        G = G + (
            0.02 * rng.standard_normal(G.shape)
            * np.linalg.norm(G, axis=1, keepdims=True) / np.sqrt(P)
        )
        Gs = G * scale
        out.append(Gs @ Gs.T)
    return out


class CvxpySCP:
    """The sequence-of-convex-programs solver, compiled once for K tasks."""

    def __init__(
        self, K: int, max_programs: int = 20, stop: float = 1e-3, solver: str = "CLARABEL"
    ):
        import cvxpy as cp

        self.cp, self.K, self.max_programs = cp, K, max_programs
        self.stop, self.solver = stop, solver
        self.M = cp.Parameter((K, K))
        self.c = cp.Parameter(K)
        self.alpha = cp.Variable(K, nonneg=True)
        beta = self.M @ self.alpha
        cons = [cp.log(self.alpha[i]) + cp.log(beta[i]) >= 0 for i in range(K)]
        self.problem = cp.Problem(cp.Minimize(cp.sum(beta) + self.c @ self.alpha), cons)
        self.prev = None
        self.failed_programs = 0

    def __call__(self, M: np.ndarray) -> tuple[np.ndarray, int]:
        F = float(np.linalg.norm(M))
        Mn = M / F
        self.M.value = Mn
        a = self.prev if self.prev is not None else np.ones(self.K) / np.sqrt(self.K)
        programs = 0
        for j in range(self.max_programs):
            if j == 0:
                self.c.value = np.zeros(self.K)
            else:                                 # gradient of phi at the current alpha
                b = Mn @ a
                self.c.value = 1.0 / a + Mn @ (1.0 / b)
            programs += 1
            try:
                opts = {"max_iters": 100} if self.solver == "ECOS" else {}
                self.problem.solve(solver=self.solver, warm_start=True, **opts)
                ok = self.problem.status == "optimal" and self.alpha.value is not None
            except self.cp.error.SolverError:
                ok = False
            if ok and np.all(self.alpha.value > 0):
                a = np.array(self.alpha.value)
            else:
                self.failed_programs += 1         # keep the previous alpha, as the paper does
            if np.linalg.norm(Mn @ a - 1.0 / a) < self.stop:
                break
        self.prev = a
        return a / np.sqrt(F), programs


def _time_ours(M, alpha0, repeats):
    """Shortest wall time of `repeats` identical solves (the solver is a pure function of M and
    alpha0), and the last solution or error."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            out = nash_solve(M, alpha0=alpha0)
        except NashSolverError as err:
            out = err
        times.append(time.perf_counter() - t0)
    return min(times), out


def _time_cvxpy(scp, M, repeats):
    """Shortest wall time of `repeats` solves of the cvxpy solver from the same state (its
    previous alpha), and the result of the last one; its state then moves on once."""
    prev, failed = scp.prev, scp.failed_programs
    times = []
    for _ in range(repeats):
        scp.prev, scp.failed_programs = prev, failed
        t0 = time.perf_counter()
        a, n = scp(M)
        times.append(time.perf_counter() - t0)
    return min(times), a, n


def run(kinds, Ks, steps, seed, solver, repeats=5, cvx_repeats=3):
    """Per Gram matrix of a sequence, in this order: ours warm-started from our previous alpha,
    ours from a cold start, the cvxpy solver warm-started from its previous alpha. Interleaving
    them step by step means a change of machine load hits all three alike, and each is timed as
    the best of a few identical solves: on a shared machine a millisecond-long cvxpy solve is far
    more likely to be preempted than a solve of tens of microseconds, so a single timing would
    flatter our solver."""
    rows = []
    for kind in kinds:
        for K in Ks:
            seq = gram_sequence(kind, K, steps, seed=seed + K)
            scp = CvxpySCP(K, solver=solver)
            scp(seq[0])                         # compile once, then forget that solve
            scp.prev, scp.failed_programs = None, 0
            nash_solve(seq[0])                  # warm our code path once
            t_ours, t_cold, res_ours, fails_ours, iters = [], [], [], 0, []
            t_cvx, res_cvx, programs = [], [], []
            prev = None         # like the cvxpy solver, start from the previous step's weights
            for M in seq:
                t, out = _time_ours(M, prev, repeats)
                t_ours.append(t)
                if isinstance(out, NashSolverError):
                    fails_ours, prev = fails_ours + 1, None
                    res_ours.append(out.residual)
                else:
                    prev = out.alpha
                    res_ours.append(out.residual)
                    iters.append(out.iterations)
                t_cold.append(_time_ours(M, None, repeats)[0])
                t, a, n = _time_cvxpy(scp, M, cvx_repeats)
                t_cvx.append(t)
                res_cvx.append(nash_residual(M, a))
                programs.append(n)
            rows.append({
                "kind": kind, "K": K, "n": len(seq),
                "ours_ms": 1e3 * float(np.median(t_ours)),
                "cold_ms": 1e3 * float(np.median(t_cold)),
                "ours_iters": float(np.mean(iters)) if iters else float("nan"),
                "ours_res_max": float(np.nanmax(res_ours)), "ours_fail": fails_ours,
                "cvx_ms": 1e3 * float(np.median(t_cvx)), "cvx_programs": float(np.mean(programs)),
                "cvx_res_med": float(np.median(res_cvx)), "cvx_res_max": float(np.max(res_cvx)),
                "cvx_failed_programs": scp.failed_programs,
                "ratio": float(np.median(t_cvx) / np.median(t_ours)),
            })
            r = rows[-1]
            print(f"{kind:9s} K={K:2d}: ours {r['ours_ms']:.3f} ms "
                  f"({r['ours_iters']:.1f} Newton steps, "
                  f"max residual {r['ours_res_max']:.1e}, {fails_ours} raised; cold "
                  f"{r['cold_ms']:.3f} ms) | cvxpy {r['cvx_ms']:.1f} ms ({r['cvx_programs']:.1f} "
                  f"programs, residual median {r['cvx_res_med']:.1e}) | x{r['ratio']:.0f}",
                  file=sys.stderr)
    return rows


def report(rows, args) -> str:
    import cvxpy

    lines = [
        "| Gram sequence | K | ours: ms/solve | Newton steps | ours: max rel. residual "
        "| ours: raised "
        "| ours, cold start: ms/solve | cvxpy SCP: ms/solve | programs "
        "| cvxpy: median / max rel. residual | failed programs | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['K']} | {r['ours_ms']:.3f} | {r['ours_iters']:.1f} "
            f"| {r['ours_res_max']:.1e} "
            f"| {r['ours_fail']}/{r['n']} | {r['cold_ms']:.3f} | {r['cvx_ms']:.1f} "
            f"| {r['cvx_programs']:.1f} "
            f"| {r['cvx_res_med']:.1e} / {r['cvx_res_max']:.1e} | {r['cvx_failed_programs']} "
            f"| {r['ratio']:.0f}x |")
    ratios = [r["ratio"] for r in rows]
    hard = [r["ratio"] for r in rows if r["K"] >= 3 and r["cvx_programs"] <= 1.5]
    head = (f"Environment: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"one BLAS thread, Python {platform.python_version()}, numpy {np.__version__}, "
            f"cvxpy {cvxpy.__version__} ({args.solver}); load average {os.getloadavg()[0]:.2f}; "
            f"{args.steps} Gram matrices per sequence, seed {args.seed}.\n\n"
            f"Times are the best of {args.repeats} (ours) and {args.cvx_repeats} (cvxpy) identical "
            f"solves per Gram matrix, then the median over the sequence.\n\n"
            f"Median over all sequences of the speed-up (median cvxpy time / median ours): "
            f"**{np.median(ratios):.0f}x** (smallest {min(ratios):.0f}x, "
            f"largest {max(ratios):.0f}x). "
            f"On the sequences with K >= 3 where cvxpy needs one program per solve: median "
            f"{np.median(hard) if hard else float('nan'):.0f}x, smallest "
            f"{min(hard) if hard else float('nan'):.0f}x, "
            f"{sum(h >= 50 for h in hard)} of {len(hard)} "
            f"at 50x or more.\n")
    return head + "\n" + "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="Gram matrices per sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--K", default="2,3,5,10,20")
    p.add_argument("--kinds", default="random,spread,parallel,conflict")
    p.add_argument("--solver", default="", help="conic solver for cvxpy: ECOS (the paper's) when "
                   "installed, else CLARABEL")
    p.add_argument("--repeats", type=int, default=5, help="identical solves timed per Gram matrix "
                   "for ours (the shortest counts)")
    p.add_argument("--cvx-repeats", type=int, default=3, help="the same for the cvxpy solver")
    p.add_argument("--out", default="", help="also write the table to this file")
    args = p.parse_args(argv)
    if not args.solver:
        import cvxpy

        args.solver = "ECOS" if "ECOS" in cvxpy.installed_solvers() else "CLARABEL"
    rows = run(args.kinds.split(","), [int(k) for k in args.K.split(",")], args.steps, args.seed,
               args.solver, args.repeats, args.cvx_repeats)
    text = report(rows, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
