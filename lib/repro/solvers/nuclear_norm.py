"""Convex baselines solved with a well-kept solver library (cvxpy with SCS).

``min_nuclear_norm`` is the answer that gradient descent on a factorisation is conjectured to
approach from a small initialisation (Gunasekar et al., 2017): the matrix of least nuclear norm
that fits linear measurements exactly, optionally restricted to PSD matrices (where |X|_* = tr X).
``min_nuclear_norm_completion`` is the same program for matrix completion, stated entry-wise.

Used in: chapters 1 (Gunasekar et al.), 2 (Arora et al. 2019) and 4 (ratio penalty), as the
convex answer gradient descent is compared with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def min_nuclear_norm(A: torch.Tensor | ArrayLike, y: torch.Tensor | ArrayLike, psd: bool = False,
                     eps: float = 1e-7, max_iters: int = 50_000, solver: str = "SCS") -> dict:
    """argmin |X|_* subject to <A_i, X> = y_i (i = 1..m), and X PSD if ``psd``.

    ``A``: (m, rows, cols) array or tensor; ``y``: (m,). For matrix completion pass the indicator
    matrices of the observed entries. Returns {"X": float64 array, "nuclear_norm", "status",
    "residual": |A(X) - y|_2, "seconds"}; raises RuntimeError when the solver finds no solution.
    """
    import time

    import cvxpy as cp

    A = np.asarray(A.detach().cpu() if isinstance(A, torch.Tensor) else A, dtype=float)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=float).ravel()
    if A.ndim != 3 or A.shape[0] != y.shape[0]:
        raise ValueError(f"A must be (m, rows, cols) with m = len(y); got {A.shape} and {y.shape}")
    m, rows, cols = A.shape
    if psd and rows != cols:
        raise ValueError("psd=True needs square measurement matrices")
    started = time.perf_counter()
    X = cp.Variable((rows, cols), PSD=True) if psd else cp.Variable((rows, cols))
    # row-major flattening on both sides, so A.reshape(m, -1) @ vec(X) = <A_i, X>
    constraints = [A.reshape(m, -1) @ cp.vec(X, order="C") == y]
    objective = cp.trace(X) if psd else cp.normNuc(X)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    options = {"eps": eps, "max_iters": max_iters} if solver == "SCS" else {}
    problem.solve(solver=solver, **options)
    if X.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"{solver} found no solution (status {problem.status!r})")
    value = np.asarray(X.value, dtype=float)
    if psd:
        value = (value + value.T) / 2
    return {
        "X": value,
        "nuclear_norm": float(np.linalg.svd(value, compute_uv=False).sum()),
        "status": problem.status,
        "residual": float(np.linalg.norm(A.reshape(m, -1) @ value.ravel() - y)),
        "seconds": time.perf_counter() - started,
    }


def min_nuclear_norm_completion(M: torch.Tensor | ArrayLike, mask: torch.Tensor | ArrayLike,
                                eps: float = 1e-6, max_iters: int = 50_000,
                                solver: str = "SCS") -> dict:
    """argmin |X|_* subject to X_ij = M_ij where ``mask`` (rows x cols, 0/1) is 1.

    The program of ``min_nuclear_norm`` with the indicator matrices of ``completion_operator``,
    stated entry-wise instead (a sparse constraint): cvxpy compiles it in a second or so at
    100 x 100, where the dense operator form takes about 15 s. Same return value, with
    "residual" the norm of X - M on the observed entries.
    """
    import time

    import cvxpy as cp

    M = np.asarray(M.detach().cpu() if isinstance(M, torch.Tensor) else M, dtype=float)
    mask = np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask)
    if M.ndim != 2 or mask.shape != M.shape:
        raise ValueError(f"M and mask must be matrices of one shape; got {M.shape}, {mask.shape}")
    r, c = np.nonzero(mask)
    started = time.perf_counter()
    X = cp.Variable(M.shape)
    problem = cp.Problem(cp.Minimize(cp.normNuc(X)), [X[r, c] == M[r, c]])
    options = {"eps": eps, "max_iters": max_iters} if solver == "SCS" else {}
    problem.solve(solver=solver, **options)
    if X.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"{solver} found no solution (status {problem.status!r})")
    value = np.asarray(X.value, dtype=float)
    return {
        "X": value,
        "nuclear_norm": float(np.linalg.svd(value, compute_uv=False).sum()),
        "status": problem.status,
        "residual": float(np.linalg.norm(value[r, c] - M[r, c])),
        "seconds": time.perf_counter() - started,
    }


def completion_operator(mask: torch.Tensor | ArrayLike
                        ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The observed positions of a 0/1 mask (rows x cols) as indicator matrices (m, rows, cols),
    with the (row, col) index arrays, for ``min_nuclear_norm``."""
    mask = np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask)
    r, c = np.nonzero(mask)
    E = np.zeros((len(r), *mask.shape))
    E[np.arange(len(r)), r, c] = 1.0
    return E, (r, c)


__all__ = ['completion_operator', 'min_nuclear_norm', 'min_nuclear_norm_completion']
