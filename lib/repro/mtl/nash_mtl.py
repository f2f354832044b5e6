"""Nash-MTL (Navon et al., 2022): d = G^T alpha with G G^T alpha = 1 / alpha, alpha > 0.

The weights come from ``repro.mtl.nash_solver``; this module is the aggregator around it (batching,
warm starts, what to do when a solve fails).

Used in: chapter 39 (Nash-MTL).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from repro.mtl.base import Aggregator, _batched, gram
from repro.mtl.nash_solver import (
    NashSolverError,
    NashUnbounded,
    nash_residual,
    nash_solve,
    nash_two_tasks,
)


class NashMTL(Aggregator):
    """Nash-MTL: d = G^T alpha with M alpha = 1/alpha (M = G G^T), solved by ``nash_solve``.

    ``on_failure`` decides what happens when the solve fails (NashSolverError, including the
    unbounded case): "raise" (default) re-raises; "previous" reuses the last weights of that batch
    element (as the paper's code does), warns, and counts the failure in ``failures``; with no
    previous weights it falls back to alpha_i = 1 / ||g_i||. K = 2 uses the exact closed form
    (``nash_two_tasks``) and the same residual test."""

    name = "nash"

    def __init__(self, tol: float = 1e-12, max_iter: int = 100,
                 on_failure: str = "raise") -> None:
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
        warnings.warn(f"NashMTL: solve failed ({err}); reusing the previous weights",
                      RuntimeWarning, stacklevel=3)
        if self._previous is not None and b < len(self._previous):
            return self._previous[b]
        return (1.0 / G_b.double().norm(dim=-1).clamp_min(1e-300)).cpu().numpy()

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
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


__all__ = ['NashMTL']
