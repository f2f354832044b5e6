"""Curvature of a network's loss over a data set, from curvlinops-for-pytorch: the Hessian as a
linear operator, its top eigenvalues (Lanczos), its trace (Hutch++ or Hutchinson) and its spectral
density (stochastic Lanczos quadrature).

``data`` is one batch ``(X, y)`` or a list of them; the loss is the mean over all examples, as
``loss_fn`` (a torch loss module with ``reduction="mean"``) computes it on the whole set. The model
is used in whatever mode it is in: put a network with batch norm or dropout in ``eval()`` first,
since the operator must be the same function at every product.

For toy problems with a closed-form loss, and for ensembles batched over models, the exact tools in
``repro.metrics.curvature`` are the right ones; ``tests/metrics/test_network_curvature.py`` checks
that both agree on a small network.

Used in: chapters 13 (sharpness along a flow), 14 (SAM's top eigenvalue) and 18 (loss landscapes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from curvlinops import (
    HessianLinearOperator,
    hutchinson_trace,
    hutchpp_trace,
    lanczos_approximate_spectrum,
)
from scipy.sparse.linalg import eigsh

from repro.checks import positive_int

Batch = tuple[torch.Tensor, torch.Tensor]
TRACE_METHODS = ("hutch++", "hutchinson")


def _batches(data: Batch | Sequence[Batch]) -> list[Batch]:
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return [data]
    batches = list(data)
    if not batches or not all(len(b) == 2 for b in batches):
        raise ValueError("data must be one (X, y) batch or a non-empty list of them")
    return batches


def hessian_operator(model: torch.nn.Module, loss_fn: torch.nn.Module,
                     data: Batch | Sequence[Batch],
                     params: Sequence[torch.nn.Parameter] | None = None) -> HessianLinearOperator:
    """The Hessian of the mean loss over ``data`` with respect to ``params`` (default: every
    parameter that requires grad), as a curvlinops linear operator (``@`` a vector or matrix;
    ``.to_scipy()`` for scipy)."""
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    # The batches are fixed tensors, so curvlinops' determinism check (two extra passes over the
    # data) can only confirm what is true by construction.
    return HessianLinearOperator(model, loss_fn, list(params), _batches(data),
                                 check_deterministic=False)


def _seeded(operator: HessianLinearOperator, seed: int):
    devices = [operator.device] if operator.device.type == "cuda" else []
    state = torch.random.fork_rng(devices=devices)
    state.__enter__()
    torch.manual_seed(seed)
    return state


def hessian_top_eigenvalues(model: torch.nn.Module, loss_fn: torch.nn.Module,
                            data: Batch | Sequence[Batch], k: int = 1, *, tol: float = 1e-6,
                            seed: int = 0) -> torch.Tensor:
    """The ``k`` largest (algebraic) eigenvalues of the Hessian, descending, float64, by Lanczos
    (scipy's ``eigsh``) from a seeded start vector."""
    positive_int("k", k)
    operator = hessian_operator(model, loss_fn, data)
    n = operator.shape[0]
    if k >= n:
        raise ValueError(f"k = {k} must be below the number of parameters ({n})")
    start = np.random.default_rng(seed).standard_normal(n)
    values = eigsh(operator.to_scipy(), k=k, which="LA", v0=start, tol=tol,
                   return_eigenvectors=False)
    return torch.from_numpy(np.sort(values.astype(np.float64))[::-1].copy())


def hessian_trace_estimate(model: torch.nn.Module, loss_fn: torch.nn.Module,
                           data: Batch | Sequence[Batch], matvecs: int = 60,
                           method: str = "hutch++", seed: int = 0) -> float:
    """An unbiased estimate of the Hessian's trace from ``matvecs`` Hessian-vector products (fewer
    than the parameters): Hutch++ (the trace of a low-rank sketch plus Hutchinson on the rest, whose
    variance falls much faster with ``matvecs``) or plain Hutchinson with Rademacher probes."""
    positive_int("matvecs", matvecs)
    if method not in TRACE_METHODS:
        raise ValueError(f"unknown trace method {method!r}; "
                         f"choose one of {', '.join(TRACE_METHODS)}")
    if method == "hutch++" and matvecs < 3:
        raise ValueError("Hutch++ needs at least 3 matrix-vector products")
    operator = hessian_operator(model, loss_fn, data)
    if matvecs >= operator.shape[0]:
        raise ValueError(f"matvecs = {matvecs} must be below the number of parameters "
                         f"({operator.shape[0]}); with that many, form the Hessian exactly")
    estimate = hutchpp_trace if method == "hutch++" else hutchinson_trace
    state = _seeded(operator, seed)
    try:
        return float(estimate(operator, matvecs))
    finally:
        state.__exit__(None, None, None)


def hessian_spectral_density(model: torch.nn.Module, loss_fn: torch.nn.Module,
                             data: Batch | Sequence[Batch], *, lanczos_steps: int = 64,
                             points: int = 512, repeats: int = 1, kappa: float = 3.0,
                             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hessian's spectral density by stochastic Lanczos quadrature (Papyan 2019; Ghorbani et
    al. 2019): a grid of eigenvalues and the density on it (integrates to about 1), smoothed by
    Gaussians whose width ``kappa`` sets relative to the grid."""
    positive_int("lanczos_steps", lanczos_steps)
    operator = hessian_operator(model, loss_fn, data)
    steps = min(lanczos_steps, operator.shape[0] - 1)
    state = _seeded(operator, seed)
    try:
        grid, density = lanczos_approximate_spectrum(operator, steps, num_points=points,
                                                     num_repeats=repeats, kappa=kappa)
    finally:
        state.__exit__(None, None, None)
    return torch.as_tensor(grid), torch.as_tensor(density)
