"""l_p linear regression on a given data set (Arora, Cohen and Hazan, 2018, Sec. 3 and 8).

Used in: chapter 3 (implicit acceleration by depth).
"""

from __future__ import annotations

import torch

from repro.checks import positive_int as _positive_int


class LpRegression:
    """L(w) = (1/(p n)) sum_i |<x_i, w> - y_i|^p on the n rows of ``X`` (n x d) and targets ``y``.

    ``p`` is an even integer >= 2 (p = 2 is least squares, p = 4 the loss on which depth
    accelerates gradient descent). ``w`` may carry any leading batch dimensions (seeds, step
    sizes): shape (..., d) gives one loss per batch element, so a sum trains the runs
    independently. ``bias=True`` appends a column of ones to ``X`` (an intercept as weight d).
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, p: int = 4, bias: bool = False) -> None:
        p = _positive_int("p", p)
        if p % 2:
            raise ValueError(f"p must be an even integer (2, 4, ...), got {p}")
        X = torch.as_tensor(X)
        y = torch.as_tensor(y, dtype=X.dtype, device=X.device)
        if X.ndim != 2 or y.shape != X.shape[:1]:
            raise ValueError(f"expected X of shape (n, d) and y of shape (n,), got "
                             f"{tuple(X.shape)} and {tuple(y.shape)}")
        if bias:
            X = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype, device=X.device)], dim=1)
        self.X, self.y, self.p = X, y, p
        self.n, self.d = X.shape

    def residual(self, w: torch.Tensor) -> torch.Tensor:
        """<x_i, w> - y_i for every example: shape (..., n)."""
        return w @ self.X.T - self.y

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        return (self.residual(w) ** self.p).sum(-1) / (self.p * self.n)

    def gradient(self, w: torch.Tensor) -> torch.Tensor:
        """(1/n) sum_i r_i^(p-1) x_i, without autograd (it is the hot loop of the experiments)."""
        return (self.residual(w) ** (self.p - 1)) @ self.X / self.n

    def hessian(self, w: torch.Tensor) -> torch.Tensor:
        """((p-1)/n) X^T diag(r^(p-2)) X: shape (..., d, d)."""
        weights = self.residual(w) ** (self.p - 2) * (self.p - 1) / self.n
        return torch.einsum("...i,ij,ik->...jk", weights, self.X, self.X)

    def minimize(self, steps: int = 100, tol: float = 1e-13) -> torch.Tensor:
        """The minimiser (d,) by damped Newton steps from the least-squares solution.

        The loss is convex, so Newton's method with a backtracking line search converges; for
        p = 2 the least-squares start is already the answer. Use float64 data for a sharp optimum.
        """
        w = torch.linalg.lstsq(self.X, self.y[:, None]).solution[:, 0]
        for _ in range(_positive_int("steps", steps)):
            g = self.gradient(w)
            if g.norm() <= tol:
                break
            step = torch.linalg.solve(self.hessian(w), g)
            t, current = 1.0, self.loss(w)
            while self.loss(w - t * step) > current and t > 1e-10:
                t /= 2
            w = w - t * step
        return w


__all__ = ["LpRegression"]
