"""The empirical neural tangent kernel, its alignment with a target, and kernel regression with it.

For a model f(theta, x) the empirical NTK at theta is

    K(x, x') = sum_p  d f(theta, x) / d theta_p  *  d f(theta, x') / d theta_p  =  J(x) J(x')^T,

computed here from per-example Jacobians (``torch.func.jacrev`` under ``vmap`` over the inputs, so
the cost grows linearly with the number of inputs; ``empirical_ntk``), or for a module whose
parameters and buffers all lead with S runs (``repro.models.TwoLayerNet``, batched seeds) one
kernel per run under ``torch.func.vmap`` (``run_batched_ntk``).

The centered kernel-target alignment of Cortes, Mohri and Rostamizadeh (2012) measures how much of
a kernel's weight lies along the labels y: with H = I - 11^T / n, K_c = H K H and y_c = H y,

    A(K, y) = y_c^T K_c y_c / (|K_c|_F |y_c|^2)   in [-1, 1],

equal to 1 exactly when K_c is proportional to y_c y_c^T. (Kumar et al.'s notebook centres the rows
of K only; the numerator is the same, the Frobenius norm slightly larger.)

Kernel regression with a kernel K fits the training labels exactly (ridge 0),
f(x) = K(x, X) K(X, X)^{-1} y; gradient descent on a model linearised at theta_0 from f - f_0 = 0
converges to this predictor with K = K_0, which is why its test error is the floor that a lazy
network reaches first (``kernel_regression_mse``).

Used in: chapter 8 (grokking as the transition from lazy to rich training).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

__all__ = ["centered_alignment", "empirical_ntk", "kernel_regression", "kernel_regression_mse",
           "run_batched_ntk"]


def empirical_ntk(f: Callable, params: Mapping[str, torch.Tensor], x1: torch.Tensor,
                  x2: torch.Tensor | None = None) -> torch.Tensor:
    """K = J(x1) J(x2)^T for a scalar-output model ``f(params, x) -> (m,)`` that maps a batch of
    inputs to one output each (it is called on batches of one): (m1, m2)."""
    params = {k: v.detach() for k, v in params.items()}

    def one(p, x):   # the output at a single input, for a per-example Jacobian
        return f(p, x.unsqueeze(0))[0]

    jac = vmap(jacrev(one), in_dims=(None, 0))   # (m, *shape) per parameter, one pass per example
    j1 = jac(params, x1)
    j2 = j1 if x2 is None else jac(params, x2)
    return sum(j1[k].flatten(1) @ j2[k].flatten(1).T for k in j1)


def run_batched_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """One empirical NTK per run of a module whose parameters and buffers lead with S runs and
    whose forward maps inputs (m, d) (shared) or (S, m, d) to outputs (S, m): (S, m1, m2)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def one(p, b, a, c):
        def f(q, x):
            state = {k: v.unsqueeze(0) for k, v in {**q, **b}.items()}
            return functional_call(model, state, (x,))[0]
        return empirical_ntk(f, p, a, None if c is None else c)

    dims = (0, 0, 0 if x1.ndim == 3 else None)
    if x2 is None:
        return vmap(lambda p, b, a: one(p, b, a, None), in_dims=dims)(params, buffers, x1)
    return vmap(one, in_dims=dims + (0 if x2.ndim == 3 else None,))(params, buffers, x1, x2)


def centered_alignment(K: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y_c^T K_c y_c / (|K_c|_F |y_c|^2) for kernels (..., n, n) and labels (..., n): (...)."""
    Kc = K - K.mean(-1, keepdim=True)
    Kc = Kc - Kc.mean(-2, keepdim=True)
    yc = y - y.mean(-1, keepdim=True)
    top = torch.einsum("...i,...ij,...j->...", yc, Kc, yc)
    return top / (torch.linalg.matrix_norm(Kc) * (yc * yc).sum(-1))


def kernel_regression(K_train: torch.Tensor, y_train: torch.Tensor, K_test_train: torch.Tensor,
                      ridge: float = 0.0) -> torch.Tensor:
    """Predictions K(x, X) (K(X, X) + ridge I)^{-1} y at the test points: (..., m)."""
    n = K_train.shape[-1]
    eye = torch.eye(n, dtype=K_train.dtype, device=K_train.device)
    coef = torch.linalg.solve(K_train + ridge * eye, y_train.unsqueeze(-1))
    return (K_test_train @ coef).squeeze(-1)


def kernel_regression_mse(K_train: torch.Tensor, y_train: torch.Tensor,
                          K_test_train: torch.Tensor, y_test: torch.Tensor,
                          ridge: float = 0.0) -> torch.Tensor:
    """Mean squared test error of kernel regression: (...)."""
    pred = kernel_regression(K_train, y_train, K_test_train, ridge)
    return ((pred - y_test) ** 2).mean(-1)
