"""The Nash bargaining weights: alpha > 0 with G G^T alpha = 1 / alpha (Navon et al., 2022, Eq. 4).

``nash_solve`` runs Newton's method on the strictly convex function
f(alpha) = 1/2 alpha^T M alpha - sum_i log alpha_i (M = G G^T), whose stationary points are exactly
the solutions of M alpha = 1 / alpha, with Chebyshev's third-order correction near the solution.
It either returns a solution with a relative residual below its tolerance or raises
``NashSolverError`` (``NashUnbounded`` when no solution exists); it never hands back an
unconverged alpha. ``nash_two_tasks`` is the closed form for K = 2, batched.

Used in: chapter 39 (Nash-MTL), by ``repro.mtl.NashMTL``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.linalg.lapack import (
    dposv as _dposv,  # Cholesky solve with little call overhead
)
from scipy.linalg.lapack import (
    dpotrs as _dpotrs,  # a further solve with that Cholesky factor
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


class NashSolverError(RuntimeError):
    """The Nash system M alpha = 1/alpha was not solved to tolerance; ``residual`` says how far."""

    def __init__(self, message: str, residual: float = math.nan, iterations: int = 0) -> None:
        super().__init__(message)
        self.residual = residual
        self.iterations = iterations


class NashUnbounded(NashSolverError):
    """No solution exists: a nonnegative combination of the gradients vanishes (a zero gradient,
    or 0 in the convex hull of the gradients, i.e. a Pareto-stationary point), so no direction
    improves every task and the bargaining problem is unbounded."""


@dataclass
class NashSolution:
    alpha: np.ndarray       # the weights, all > 0
    residual: float         # ||M alpha - 1/alpha|| / ||1/alpha||
    iterations: int         # Newton steps taken (with Chebyshev's correction near the solution)


def nash_residual(M: ArrayLike, alpha: ArrayLike) -> float:
    """The relative residual ||M alpha - 1/alpha|| / ||1/alpha|| of the Nash system."""
    M = np.asarray(M, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    inv = 1.0 / alpha
    return float(np.linalg.norm(M @ alpha - inv) / np.linalg.norm(inv))


def nash_solve(M: ArrayLike, tol: float = 1e-12, max_iter: int = 100,
               alpha0: ArrayLike | None = None) -> NashSolution:
    """Solve M alpha = 1/alpha, alpha > 0, for a PSD Gram matrix M (K x K), in float64.

    Newton's method on f(alpha) = 1/2 alpha^T M alpha - sum log alpha, whose stationary point is
    the solution. f is self-concordant (a convex quadratic plus -log terms), so the damped step
    t = 1/(1 + lambda) (lambda the Newton decrement) always keeps alpha > 0 and decreases f, and
    the full step is taken once lambda < 1/4. There each step also gets Chebyshev's correction
    for the third derivative of f, which is diagonal (that of -sum log alpha): one more solve with
    the same Cholesky factor makes the convergence cubic instead of quadratic, so a warm start
    1e-2 away needs two steps instead of three. No line search.
    The loss scales of the tasks do not matter: with s_i = 1/||g_i|| and alpha = s * beta the
    system becomes C beta = 1/beta, C the matrix of cosines, and the iteration is affine
    invariant, so it runs on M and the cosines only fix the cold start (beta = 1 times the best
    multiple). K = 1 and K = 2 have closed forms (beta_i = 1/sqrt(1 + C_12) for two tasks) and
    skip the iteration.

    ``alpha0`` (optional) starts the iteration, e.g. from the previous training step's weights;
    a warm start also skips the up-front checks of M, which then run only on a failure.

    The solution is returned only once the relative residual on M itself,
    ||M alpha - 1/alpha|| / ||1/alpha||, is below ``tol``; it is evaluated once the decrement of
    the last step says the new iterate should be at rounding level, so a typical solve
    evaluates it once.

    Raises NashUnbounded when a task's gradient is zero or the iterates run off to infinity (0 in
    the convex hull of the gradients), NashSolverError when the relative residual does not fall
    below ``tol`` (for instance when rounding in a nearly singular M puts the floor above ``tol``;
    the error carries the residual reached).
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be a square matrix, got shape {M.shape}")
    K = M.shape[0]
    warm = alpha0 is not None and K > 2
    if not warm:
        _check_gram(M)
    d = M.diagonal()
    if K == 1:
        alpha = 1.0 / np.sqrt(d)
        return NashSolution(alpha, nash_residual(M, alpha), 0)
    if K == 2:
        inv_s = np.sqrt(d)                  # ||g_i||
        s = 1.0 / inv_s
        gap = 1.0 + 0.5 * (M[0, 1] + M[1, 0]) * (s[0] * s[1])   # 1 + cos(g_1, g_2)
        if not gap > 8 * np.finfo(np.float64).eps:
            raise NashUnbounded("the two gradients are opposite (1 + cos is at rounding level): "
                                "0 lies in their convex hull and no direction improves both")
        alpha = s * (1.0 / math.sqrt(gap))
        r = nash_residual(M, alpha)
        if r < tol:
            return NashSolution(alpha, r, 0)
        raise NashSolverError(f"Nash solver: closed form for two tasks has relative residual "
                              f"{r:.3g} > tol {tol:g}: the gradients are too close to opposite "
                              "for this tolerance in float64", r, 0)
    # Newton's method is affine invariant: its iterates on f(alpha) = 1/2 alpha^T M alpha -
    # sum log alpha are those on the rescaled f(beta), alpha = s * beta, and Cholesky's accuracy
    # is essentially unaffected by a symmetric diagonal scaling of the matrix, so the iteration
    # runs on M itself (the tests cover norms over eight orders of magnitude); the rescaling only
    # fixes the cold start, beta = 1.
    # A warm start skips the up-front checks of M (NaN, zero gradients): they cost as much as a
    # Newton step, and a bad M cannot pass the residual test anyway; every failure below runs
    # them first, so the error raised is the same as from a cold start.
    # On arrays of a few entries the time goes to call overhead, not arithmetic: hence x.dot(y)
    # (a third of the cost of x @ y) and one Hessian buffer whose diagonal view is reused.
    if warm:
        alpha = np.array(alpha0, dtype=np.float64)
        if alpha.shape != (K,) or not alpha[alpha.argmin()] > 0:   # (argmin: 4x cheaper than min)
            raise ValueError("alpha0 must be positive, one weight per task")
    else:
        alpha = 1.0 / np.sqrt(d)                    # beta = 1: alpha_i = 1/||g_i||
    # best multiple of the start: f(c alpha) is minimised at c = sqrt(K / alpha^T M alpha)
    # (a warm start far from the solution, early in training say, can be off by a large factor)
    Ma = M.dot(alpha)
    q = alpha.dot(Ma)
    if q > 0:
        c = math.sqrt(K / q)
        alpha *= c
        Ma *= c
    H = np.empty_like(M)
    H_diag = H.reshape(-1)[::K + 1]
    tol2 = tol * tol
    check_level = tol ** (2.0 / 3.0)
    big = 1e8  # |beta| beyond this: unbounded at float64 precision (1 + cos ~ 1e-16)
    best_lam2, best_it, check = math.inf, 0, False
    for it in range(max_iter + 1):
        inv_a = np.reciprocal(alpha)
        grad = Ma - inv_a                           # the residual M alpha - 1/alpha itself
        if check:
            # the last step started from a decrement small enough that this iterate should be at
            # rounding level: test the relative residual (on M, in the original scale)
            r2 = grad.dot(grad) / inv_a.dot(inv_a)
            if r2 < tol2:
                return NashSolution(alpha, math.sqrt(r2), it)
        if it == max_iter:
            break
        H[...] = M
        H_diag += inv_a * inv_a                     # the Hessian M + diag(1/alpha^2)
        factor, step, info = _dposv(H, grad, overwrite_a=1)
        if info != 0:
            # H is positive definite in exact arithmetic; Cholesky fails only once 1/alpha^2
            # is lost next to M's rounding (weights running off to infinity), or on a bad M
            if warm:
                _check_gram(M)
            try:
                step = np.linalg.solve(M + np.diag(inv_a * inv_a), grad)
            except np.linalg.LinAlgError:
                raise NashUnbounded(
                    "the Newton system became singular in float64 as the Nash weights grew: "
                    "a nonnegative combination of the task gradients is (numerically) zero, so "
                    "0 lies in their convex hull (a Pareto-stationary point) and no direction "
                    "improves every task", nash_residual(M, alpha), it) from None
        lam2 = float(grad.dot(step))                # the squared Newton decrement
        if not math.isfinite(lam2):
            _check_gram(M)
            raise NashSolverError(f"Nash solver: non-finite Newton step after {it} steps",
                                  math.nan, it)
        if lam2 < 0.0625:                           # lambda < 1/4: full step, fast phase
            alpha -= step
            if info == 0:
                # Chebyshev's correction, half of H^-1 applied to the third derivative of f
                # along the step twice. That derivative is the one of -sum log alpha, diagonal
                # (-2 / alpha^3), so the correction is H^-1 (step^2 / alpha^3). Its H-norm is at
                # most lambda^2, so alpha stays positive: |step_i| / alpha_i <= lambda < 1/4 and
                # |corr_i| / alpha_i <= lambda^2.
                u = step * inv_a
                corr, _ = _dpotrs(factor, u * u * inv_a)
                alpha += corr
        else:
            alpha -= step / (1.0 + math.sqrt(lam2))
            if (alpha * np.sqrt(d)).max() > big:    # only a damped step can run off
                if warm:
                    _check_gram(M)
                raise NashUnbounded(
                    "the Nash weights grow without bound: a nonnegative combination of the task "
                    "gradients is (numerically) zero, so 0 lies in their convex hull (a "
                    "Pareto-stationary point) and no direction improves every task",
                    math.nan, it + 1)
        Ma = M.dot(alpha)
        # a corrected step from decrement lambda leaves one of about lambda^3, so the residual
        # is worth testing once lambda^2 <= tol^(2/3) (1e-8 for the default tol of 1e-12)
        check = lam2 <= check_level
        # the decrement shrinks at least quadratically in the fast phase; one that stops
        # shrinking has hit the rounding floor of this Gram matrix (about eps times its
        # condition number)
        if lam2 >= 0.0625 or lam2 < best_lam2 * 0.25:   # (damped phase: nothing to compare)
            best_lam2, best_it = (lam2 if lam2 < 0.0625 else math.inf), it
        elif it - best_it >= 6:
            if warm:
                _check_gram(M)
            r = nash_residual(M, alpha)
            raise NashSolverError(
                f"Nash solver stalled at relative residual {r:.3g} > tol {tol:g} after {it + 1} "
                "Newton steps: the Gram matrix is too ill-conditioned for this tolerance in "
                "float64", r, it + 1)
    if warm:
        # a zero gradient ends up here: its weight grows geometrically while its share of the
        # relative residual vanishes, and the decrement never drops below 1
        _check_gram(M)
    r = nash_residual(M, alpha)
    if r < tol:                # reachable only when the decrement stayed above the check level
        return NashSolution(alpha, r, max_iter)
    raise NashSolverError(f"Nash solver did not converge in {max_iter} Newton steps: relative "
                          f"residual {r:.3g} > tol {tol:g}", r, max_iter)


def _check_gram(M: np.ndarray) -> None:
    """Raise for a Gram matrix with no solution to find: NaN / inf entries, a zero gradient."""
    # one reduction instead of an elementwise test: a NaN or inf entry makes the sum non-finite
    # (the full test only runs then, to tell that apart from a sum that overflowed)
    if not math.isfinite(M.sum()) and not np.isfinite(M).all():
        raise NashSolverError("the Gram matrix holds NaN or inf")
    d = M.diagonal()
    if d.min() <= 0:
        bad = [int(i) for i in np.flatnonzero(d <= 0)]
        raise NashUnbounded(f"task(s) {bad} have a zero gradient: their utility is 0 in every "
                            "direction, so the bargaining problem has no solution")


def nash_two_tasks(G: torch.Tensor) -> torch.Tensor:
    """Closed-form Nash weights for K = 2, batched: alpha_i = 1 / (||g_i|| sqrt(1 + cos)).

    The direction sum_i alpha_i g_i is then the sum of the unit gradients divided by
    sqrt(1 + cos(g_1, g_2)). Returns NaN where no solution exists (cos = -1 or a zero gradient).
    """
    n = G.norm(dim=-1)                                    # (..., 2)
    cos = (G[..., 0, :] * G[..., 1, :]).sum(-1) / (n[..., 0] * n[..., 1])
    gap = 1 + cos
    # below a few ulps, 1 + cos is rounding noise: the gradients are opposite as far as float
    # arithmetic can tell, and no solution exists
    gap = torch.where(gap > 8 * torch.finfo(G.dtype).eps, gap, torch.nan)
    return torch.rsqrt(gap)[..., None] / n


__all__ = ['NashSolution', 'NashSolverError', 'NashUnbounded', 'nash_residual', 'nash_solve',
           'nash_two_tasks']
