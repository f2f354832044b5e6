"""Multi-task gradient aggregators: Nash-MTL and the baselines it is compared with.

An aggregator turns the task gradients of the shared parameters, a tensor ``G`` of shape
``(..., K, P)`` (K tasks, P parameters, any leading batch dimensions such as seeds), into one
update direction of shape ``(..., P)``. The training loop then uses that direction as the
gradient of the shared parameters (``set_grad``) and steps any torch optimizer.

- ``LinearScalarization``  the sum of the task gradients (the gradient of the summed losses)
- ``MGDA``                 the minimum-norm point of the convex hull of the gradients (Sener & Koltun)
- ``PCGrad``               project away conflicting components, pairwise in random order (Yu et al.)
- ``CAGrad``               the best worst-case improvement in a ball around the mean (Liu et al.)
- ``NashMTL``              the Nash bargaining solution (Navon et al., 2022): d = G^T alpha with
                           G G^T alpha = 1 / alpha, alpha > 0

Also here: ``task_gradients`` and ``set_grad`` for training loops, ``delta_m`` and ``mean_rank``
(the paper's metrics), and ``ToyTwoObjectives``, the paper's two-objective toy problem.

The Nash weights come from ``nash_solve``: Newton's method on the strictly convex function
f(alpha) = 1/2 alpha^T M alpha - sum_i log alpha_i (M = G G^T), whose stationary points are exactly
the solutions of M alpha = 1 / alpha. It either returns a solution with a relative residual below
its tolerance or raises ``NashSolverError``; it never hands back an unconverged alpha.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg.lapack import dposv as _dposv  # Cholesky solve with little call overhead
from scipy.linalg.lapack import dpotrs as _dpotrs  # a further solve with that Cholesky factor


# --- the Nash bargaining weights ------------------------------------------------------------------

class NashSolverError(RuntimeError):
    """The Nash system M alpha = 1/alpha was not solved to tolerance; ``residual`` says how far."""

    def __init__(self, message: str, residual: float = math.nan, iterations: int = 0):
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


def nash_residual(M, alpha) -> float:
    """The relative residual ||M alpha - 1/alpha|| / ||1/alpha|| of the Nash system."""
    M = np.asarray(M, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    inv = 1.0 / alpha
    return float(np.linalg.norm(M @ alpha - inv) / np.linalg.norm(inv))


def nash_solve(M, tol: float = 1e-12, max_iter: int = 100, alpha0=None) -> NashSolution:
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
            raise NashSolverError(f"Nash solver: non-finite Newton step after {it} steps", math.nan, it)
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


# --- aggregators ----------------------------------------------------------------------------------

def gram(G: torch.Tensor) -> torch.Tensor:
    """M = G G^T over the last two dimensions: (..., K, P) -> (..., K, K)."""
    return G @ G.transpose(-1, -2)


class Aggregator:
    """Maps task gradients G (..., K, P) to one direction (..., P); ``weights`` holds the last
    weights over tasks (..., K) where the method has them."""

    name = "aggregator"

    def __init__(self):
        self.weights = None

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class LinearScalarization(Aggregator):
    """The gradient of the summed losses: sum_i g_i (weights all 1)."""

    name = "ls"

    def __call__(self, G):
        self.weights = torch.ones(G.shape[:-1], dtype=G.dtype, device=G.device)
        return G.sum(-2)


def _simplex_qp(M: np.ndarray, linear: np.ndarray | None = None, root: float = 0.0) -> np.ndarray:
    """argmin over the simplex of w^T linear + root * sqrt(w^T M w) (root 0: of w^T M w).

    K = 2: a closed form (root 0) or golden section (the objective is convex in w_1); K > 2:
    SLSQP with analytic gradients, to about 1e-12 in the objective."""
    K = M.shape[0]
    lin = np.zeros(K) if linear is None else linear

    def obj(w):
        q = max(float(w @ M @ w), 0.0)
        return float(w @ lin) + (root * math.sqrt(q) if root > 0 else q)

    if K == 1:
        return np.ones(1)
    if K == 2 and root == 0.0:
        den = M[0, 0] + M[1, 1] - 2 * M[0, 1]
        w0 = 0.5 if den <= 0 else float(np.clip((M[1, 1] - M[0, 1]) / den, 0.0, 1.0))
        return np.array([w0, 1 - w0])
    if K == 2:
        # the objective is convex in w0: golden section on [0, 1]
        a, b = 0.0, 1.0
        g = (math.sqrt(5) - 1) / 2
        for _ in range(80):
            c, e = b - g * (b - a), a + g * (b - a)
            if obj(np.array([c, 1 - c])) < obj(np.array([e, 1 - e])):
                b = e
            else:
                a = c
        w0 = 0.5 * (a + b)
        return np.array([w0, 1 - w0])
    from scipy.optimize import minimize

    def obj_grad(w):
        Mw = M @ w
        q = max(float(w @ Mw), 0.0)
        if root > 0:
            sq = math.sqrt(q)
            grad = lin + (root / sq) * Mw if sq > 0 else lin.copy()
            return float(w @ lin) + root * sq, grad
        return float(w @ lin) + q, lin + 2 * Mw

    # analytic gradients: SLSQP would otherwise spend K + 1 evaluations per step on differences
    res = minimize(obj_grad, np.full(K, 1.0 / K), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * K,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                 "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": 1e-12, "maxiter": 200})
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def _batched(G: torch.Tensor):
    """Flatten the leading dimensions of G: returns (B, K, P) and a function to restore them."""
    lead = G.shape[:-2]
    return G.reshape(-1, *G.shape[-2:]), lambda x: x.reshape(*lead, *x.shape[1:])


class MGDA(Aggregator):
    """The minimum-norm element of the convex hull of the gradients: d = G^T w,
    w = argmin_{w in simplex} ||G^T w||^2 (Desideri's multiple-gradient descent)."""

    name = "mgda"

    def __call__(self, G):
        flat, back = _batched(G)
        if flat.shape[1] == 2:
            # closed form: the nearest point to 0 of the segment [g_2, g_1], batched
            M = gram(flat)
            den = M[:, 0, 0] + M[:, 1, 1] - 2 * M[:, 0, 1]
            w0 = ((M[:, 1, 1] - M[:, 0, 1]) / den).nan_to_num(0.5).clamp(0, 1)
            W = torch.stack([w0, 1 - w0], 1)
            self.weights = back(W)
            return back((W[:, :, None] * flat).sum(1))
        M = gram(flat).double().cpu().numpy()
        W = torch.tensor(np.stack([_simplex_qp(m) for m in M]), dtype=G.dtype, device=G.device)
        self.weights = back(W)
        return back((W[:, :, None] * flat).sum(1))


class PCGrad(Aggregator):
    """Gradient surgery: each g_i, in turn, loses its component along every g_j (random order)
    it conflicts with (g_i . g_j < 0); the projected gradients are summed. ``generator`` makes the
    order reproducible; with K = 2 the order does not matter."""

    name = "pcgrad"

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.generator = generator

    def __call__(self, G):
        K = G.shape[-2]
        out = G.clone()
        for i in range(K):
            gi = G[..., i, :].clone()
            others = [j for j in range(K) if j != i]
            order = torch.randperm(len(others), generator=self.generator).tolist() if K > 2 else [0]
            for o in order:
                gj = G[..., others[o], :]
                dot = (gi * gj).sum(-1, keepdim=True)
                coef = torch.where(dot < 0, dot / (gj * gj).sum(-1, keepdim=True), 0.0)
                gi = gi - coef * gj
            out[..., i, :] = gi
        self.weights = None
        return out.sum(-2)


class CAGrad(Aggregator):
    """Conflict-averse gradient descent: with g0 the mean gradient and phi = c^2 ||g0||^2,
    w = argmin_{w in simplex} g_w^T g0 + sqrt(phi) ||g_w||, g_w = G^T w, and
    d = (g0 + sqrt(phi) g_w / ||g_w||) / (1 + c^2). c = 0 gives the mean gradient."""

    name = "cagrad"

    def __init__(self, c: float = 0.4):
        super().__init__()
        if c < 0:
            raise ValueError("c must be >= 0")
        self.c = c

    def _two_tasks(self, flat):
        """K = 2, batched: h(w) = g_w.g0 + root ||g_w||, g_w = g_2 + w (g_1 - g_2), is convex on
        [0, 1]; its minimum is at an end or at a root of h'(w) = 0, a quadratic equation."""
        g1, g2 = flat[:, 0], flat[:, 1]
        g0 = 0.5 * (g1 + g2)
        root = self.c * g0.norm(dim=-1)
        e = g1 - g2
        A = (e * e).sum(-1)
        B = 2 * (e * g2).sum(-1)
        Cq = (g2 * g2).sum(-1)
        b = (e * g0).sum(-1)
        # h'(w) = b + root (2 A w + B) / (2 sqrt(A w^2 + B w + C)) = 0 squares to a quadratic whose
        # roots are w = -B/(2A) +- |b| sqrt(4AC - B^2) / (2A sqrt(A root^2 - b^2))
        k = A * root**2 - b**2
        disc = (4 * A * Cq - B**2).clamp_min(0)
        half = b.abs() * disc.sqrt() / (2 * A * k.clamp_min(1e-300).sqrt())
        centre = -B / (2 * A)
        cands = torch.stack([torch.zeros_like(A), torch.ones_like(A), centre - half, centre + half], 1)
        cands = cands.nan_to_num(0.0).clamp(0, 1)                          # (B, 4)
        gw = g2[:, None, :] + cands[..., None] * e[:, None, :]              # (B, 4, P)
        h = (gw * g0[:, None, :]).sum(-1) + root[:, None] * gw.norm(dim=-1)
        w0 = cands.gather(1, h.argmin(1, keepdim=True))[:, 0]
        gw = g2 + w0[:, None] * e
        nrm = gw.norm(dim=-1, keepdim=True)
        d = g0 + torch.where(nrm > 0, root[:, None] * gw / nrm, 0.0)
        return d / (1 + self.c**2)

    def __call__(self, G):
        flat, back = _batched(G)
        K = flat.shape[1]
        if K == 2:
            return back(self._two_tasks(flat))
        M = gram(flat).double().cpu().numpy()
        dirs = []
        for b, m in enumerate(M):
            g0_sq = float(m.sum()) / K**2          # ||g0||^2
            root = self.c * math.sqrt(max(g0_sq, 0.0))
            w = _simplex_qp(m, linear=m.mean(1), root=root)
            w_t = torch.tensor(w, dtype=G.dtype, device=G.device)
            gw = w_t @ flat[b]
            g0 = flat[b].mean(0)
            gw_norm = gw.norm()
            d = g0 + (root / gw_norm) * gw if gw_norm > 0 else g0
            dirs.append(d / (1 + self.c**2))
        return back(torch.stack(dirs))


class NashMTL(Aggregator):
    """Nash-MTL: d = G^T alpha with M alpha = 1/alpha (M = G G^T), solved by ``nash_solve``.

    ``on_failure`` decides what happens when the solve fails (NashSolverError, including the
    unbounded case): "raise" (default) re-raises; "previous" reuses the last weights of that batch
    element (as the paper's code does), warns, and counts the failure in ``failures``; with no
    previous weights it falls back to alpha_i = 1 / ||g_i||. K = 2 uses the exact closed form
    (``nash_two_tasks``) and the same residual test."""

    name = "nash"

    def __init__(self, tol: float = 1e-12, max_iter: int = 100, on_failure: str = "raise"):
        super().__init__()
        if on_failure not in ("raise", "previous"):
            raise ValueError(f"on_failure must be 'raise' or 'previous', got {on_failure!r}")
        self.tol, self.max_iter, self.on_failure = tol, max_iter, on_failure
        self.failures = 0
        self.last_error: NashSolverError | None = None
        self._previous = None

    def _fail(self, err: NashSolverError, b: int, G_b: torch.Tensor) -> np.ndarray:
        if self.on_failure == "raise":
            raise err
        self.failures += 1
        self.last_error = err
        warnings.warn(f"NashMTL: solve failed ({err}); reusing the previous weights", RuntimeWarning,
                      stacklevel=3)
        if self._previous is not None and b < len(self._previous):
            return self._previous[b]
        return (1.0 / G_b.double().norm(dim=-1).clamp_min(1e-300)).cpu().numpy()

    def __call__(self, G):
        flat, back = _batched(G)
        B, K, _ = flat.shape
        M = gram(flat.double())
        alphas = np.empty((B, K))
        if K == 2:
            a2 = nash_two_tasks(flat.double())
            inv = 1.0 / a2
            res = ((M @ a2[..., None])[..., 0] - inv).norm(dim=-1) / inv.norm(dim=-1)
            ok = (res < self.tol) & (a2 > 0).all(-1)          # NaN (no solution) compares False
            alphas[:] = a2.cpu().numpy()
            Mn = M.cpu().numpy()
            a2n = alphas.copy()
            for b in torch.nonzero(~ok).flatten().tolist():
                a = a2n[b]
                try:
                    if not np.all(np.isfinite(a)) or np.any(a <= 0):
                        raise NashUnbounded("the two gradients are opposite or one is zero: 0 lies "
                                            "in their convex hull and no direction improves both")
                    r = nash_residual(Mn[b], a)
                    if not r < self.tol:
                        raise NashSolverError(f"closed form residual {r:.3g} > tol {self.tol:g}", r)
                    alphas[b] = a
                except NashSolverError as err:
                    alphas[b] = self._fail(err, b, flat[b])
        else:
            Mn = M.cpu().numpy()
            for b in range(B):
                prev = self._previous
                start = prev[b] if prev is not None and prev.shape == alphas.shape else None
                try:   # warm start from the previous step's weights: fewer Newton steps
                    alphas[b] = nash_solve(Mn[b], self.tol, self.max_iter, alpha0=start).alpha
                except NashSolverError as err:
                    alphas[b] = self._fail(err, b, flat[b])
        self._previous = alphas.copy()
        W = torch.tensor(alphas, dtype=G.dtype, device=G.device)
        self.weights = back(W)
        return back((W[:, :, None] * flat).sum(1))


AGGREGATORS = {"ls": LinearScalarization, "mgda": MGDA, "pcgrad": PCGrad, "cagrad": CAGrad,
               "nash": NashMTL}


def make(name: str, **kwargs) -> Aggregator:
    """An aggregator by its short name: ls, mgda, pcgrad, cagrad, nash."""
    try:
        return AGGREGATORS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown aggregator {name!r}; choose from {sorted(AGGREGATORS)}") from None


# --- helpers for training loops -------------------------------------------------------------------

def task_gradients(losses, params) -> torch.Tensor:
    """The (K, P) matrix of the gradients of each of K scalar losses w.r.t. ``params``, flattened."""
    params = list(params)
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, params)]))
    return torch.stack(rows)


def set_grad(params, direction: torch.Tensor) -> None:
    """Write a flat direction (P,) into the ``.grad`` of ``params`` (in order)."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = direction[offset:offset + n].view_as(p).clone()
        offset += n


def delta_m(metrics, baseline, higher_is_better) -> float:
    """Delta_m% = 100/K sum_k (-1)^{delta_k} (M_k - B_k) / B_k (lower is better)."""
    m = np.asarray(metrics, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    sign = np.where(np.asarray(higher_is_better, dtype=bool), -1.0, 1.0)
    return float(100.0 * np.mean(sign * (m - b) / b))


def mean_rank(table) -> np.ndarray:
    """Mean rank (1 = best) of each row of a (methods x metrics) table, lower values best."""
    t = np.asarray(table, dtype=np.float64)
    ranks = t.argsort(0).argsort(0) + 1.0
    return ranks.mean(1)


# --- the paper's two-objective toy problem -----------------------------------------------------------

class ToyTwoObjectives:
    """The two-objective problem of Fig. 1 (Navon et al., 2022; introduced with CAGrad by Liu et
    al., 2021), batched over points x of shape (..., 2). Returns losses of shape (..., 2).

    For x_2 > 0 each loss is a log-distance to a curve, for x_2 < 0 a wide quadratic bowl; tanh
    gates blend the two. The first loss is multiplied by ``scale1`` (0.1 in the Nash-MTL paper),
    which gives the two tasks gradients of very different sizes."""

    floor = 5e-6          # the log terms are clamped below here, as in the original problem

    def __init__(self, scale1: float = 0.1):
        self.scale1 = scale1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[..., 0], x[..., 1]
        t = torch.tanh(-x2)
        log1 = (0.5 * (-x1 - 7) - t).abs().clamp_min(self.floor).log() + 6
        log2 = (0.5 * (-x1 + 3) + t + 2).abs().clamp_min(self.floor).log() + 6
        bowl1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
        bowl2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
        up = torch.tanh(x2 / 2).clamp_min(0)
        down = torch.tanh(-x2 / 2).clamp_min(0)
        f1 = self.scale1 * (log1 * up + bowl1 * down)
        f2 = log2 * up + bowl2 * down
        return torch.stack([f1, f2], -1)

    def gradients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Losses (..., 2) and the task gradients G (..., 2 tasks, 2 coordinates)."""
        x = x.detach().requires_grad_(True)
        f = self(x)
        # both gradients in one vectorised backward pass: grad_outputs e_k for k = 1, 2
        eye = torch.eye(2, dtype=f.dtype, device=f.device)
        outs = eye.reshape(2, *([1] * (f.dim() - 1)), 2).expand(2, *f.shape)
        (g,) = torch.autograd.grad(f, x, grad_outputs=outs, is_grads_batched=True)
        return f.detach(), g.movedim(0, -2)

    def pareto_front(self, n: int = 400, lim: float = 10.0) -> torch.Tensor:
        """The non-dominated losses among an n x n grid of [-lim, lim]^2 and the x_2 -> inf limit
        curve, sorted by the first loss: (m, 2)."""
        g = torch.linspace(-lim, lim, n, dtype=torch.float64)
        pts = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        far = torch.stack([torch.linspace(-5 + 1e-3, 5 - 1e-3, n, dtype=torch.float64),
                           torch.full((n,), 30.0, dtype=torch.float64)], -1)
        F = self(torch.cat([pts, far]))
        order = torch.argsort(F[:, 0])
        F = F[order]
        best = torch.cummin(F[:, 1], 0).values
        keep = F[:, 1] <= best          # nothing earlier (smaller f1) has a smaller f2
        keep[1:] &= F[1:, 1] < best[:-1]
        return F[keep]
