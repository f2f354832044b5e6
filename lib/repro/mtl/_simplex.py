"""Minimisation over the probability simplex, shared by MGDA and CAGrad.

Used in: chapter 39 (Nash-MTL), by ``repro.mtl.MGDA`` and ``repro.mtl.CAGrad``.
"""

from __future__ import annotations

import math

import numpy as np


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
