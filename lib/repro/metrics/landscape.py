"""Loss landscapes: random directions with filter normalisation, and 1-D and 2-D slices of a loss
around a point of parameter space, evaluated batched (``torch.func.vmap`` over the grid points).

References: [Li et al, 2018](https://arxiv.org/abs/1712.09913), Visualizing the Loss Landscape
of Neural Nets (Sec. 4, "filter normalization").

A *slice* of a loss ``L`` around parameters ``θ`` along directions ``δ`` (and ``η``) is

    f(α) = L(θ + α δ)            (1-D)        f(α, β) = L(θ + α δ + β η)      (2-D).

A Gaussian direction is blind to the scale of the weights: a ReLU network whose first layer is
multiplied by ``c`` and whose next layer is divided by ``c`` computes the same function, yet the
same step ``α δ`` is a large change of a small layer and a small change of a large one. **Filter
normalisation** rescales the direction filter by filter to the size of the weights it perturbs:

    δ_{i,j} ← δ_{i,j} / ‖δ_{i,j}‖ · ‖θ_{i,j}‖,

where ``θ_{i,j}`` is filter ``j`` of layer ``i``: one output channel of a convolution, one row of
a fully connected weight (the weights that feed one neuron), that is, one slice along the first
dimension of a parameter with two or more dimensions. Parameters with one dimension (biases,
the scales and shifts of normalisation layers) get a zero direction by default
(``ignore="biasbn"``, as in the official code's ``--xignore biasbn``); ``ignore=None`` instead
treats each such vector as one filter. The slice is then invariant, point by point, to the
rescalings that leave the network's function unchanged (see ``chapters/18-*/derivation``).

Parameters are dictionaries ``name -> tensor`` (``dict(model.named_parameters())``), the format
of ``torch.func.functional_call``; ``functional_loss`` turns a module, a data batch and a loss into
the function of such a dictionary that the slices evaluate. Every slice evaluates its grid in one
``vmap`` (in chunks of ``chunk_size`` points when memory is short), not in a Python loop.

Used in: chapter 18 (visualizing the loss landscape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

__all__ = ["filter_normalize", "functional_loss", "interpolate", "random_direction", "slice_1d",
           "slice_2d", "slice_eigenvalue_ratio"]

Params = Mapping[str, torch.Tensor]
NORMS = ("filter", "layer", "none")
IGNORES = ("biasbn", None)


def _check_ignore(ignore):
    if ignore not in IGNORES:
        raise ValueError(f"ignore must be 'biasbn' or None, got {ignore!r}")


def filter_normalize(direction: Params, params: Params, ignore: str | None = "biasbn",
                     eps: float = 1e-10) -> dict[str, torch.Tensor]:
    """``direction`` rescaled filter by filter to the norms of ``params`` (a new dictionary).

    For a parameter with two or more dimensions, each slice ``d[j]`` along the first dimension is
    multiplied by ``‖p[j]‖ / (‖d[j]‖ + eps)``. A one-dimensional parameter gets zeros when
    ``ignore == "biasbn"``, or is rescaled as a single filter when ``ignore`` is None.
    """
    _check_ignore(ignore)
    if set(direction) != set(params):
        raise ValueError("direction and params must have the same names; differ in "
                         f"{sorted(set(direction) ^ set(params))}")
    out = {}
    for name, p in params.items():
        d = direction[name]
        if d.shape != p.shape:
            raise ValueError(f"direction[{name!r}] has shape {tuple(d.shape)}, the parameter "
                             f"{tuple(p.shape)}")
        if p.dim() <= 1:
            if ignore == "biasbn":
                out[name] = torch.zeros_like(d)
                continue
            d_rows, p_rows = d.reshape(1, -1), p.reshape(1, -1)
        else:
            d_rows, p_rows = d.reshape(d.shape[0], -1), p.reshape(p.shape[0], -1)
        scale = p_rows.norm(dim=1, keepdim=True) / (d_rows.norm(dim=1, keepdim=True) + eps)
        out[name] = (d_rows * scale).reshape(d.shape)
    return out


def random_direction(params: Params, generator: torch.Generator | None = None,
                     norm: str = "filter",
                     ignore: str | None = "biasbn") -> dict[str, torch.Tensor]:
    """A Gaussian direction with the shapes of ``params``, normalised by ``norm``:

    - ``"filter"``: ``filter_normalize`` (the paper's choice);
    - ``"layer"``: each parameter tensor rescaled as a whole to the norm of the parameter;
    - ``"none"``: the raw draw, entries N(0, 1) (what a plot without normalisation uses).

    One-dimensional parameters are zeroed under ``ignore="biasbn"`` for every ``norm``, so that
    the three differ only in how the weights are scaled. Draws come from ``generator`` (on the
    CPU, then moved to each parameter's device and dtype), in the order of ``params``.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    _check_ignore(ignore)
    raw = {name: torch.randn(p.shape, generator=generator, dtype=torch.float64)
           .to(device=p.device, dtype=p.dtype) for name, p in params.items()}
    if norm == "filter":
        return filter_normalize(raw, params, ignore)
    out = {}
    for name, p in params.items():
        d = raw[name]
        if ignore == "biasbn" and p.dim() <= 1:
            d = torch.zeros_like(d)
        elif norm == "layer":
            d = d * (p.norm() / (d.norm() + 1e-10))
        out[name] = d
    return out


def functional_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
                    ) -> Callable[[Params], torch.Tensor]:
    """``params -> loss(model(x; params), y)``, through ``torch.func.functional_call`` (the
    module's buffers are used as they are; put a model with batch norm in ``eval()`` first)."""
    buffers = dict(model.named_buffers())

    def fn(params: Params) -> torch.Tensor:
        return loss(functional_call(model, (dict(params), buffers), (x,)), y)

    return fn


def _as_points(values, params: Params) -> torch.Tensor:
    first = next(iter(params.values()))
    return torch.as_tensor(values, dtype=first.dtype, device=first.device)


def _grid_loss(loss_fn, params: Params, directions: Sequence[Params], coords: torch.Tensor,
               chunk_size: int | None) -> torch.Tensor:
    """``loss_fn(params + Σ_k coords[n, k] directions[k])`` for every row ``n``, in one vmap."""
    names = list(params)
    base = [params[n].detach() for n in names]
    dirs = [[d[n].detach() for n in names] for d in directions]

    def at(c: torch.Tensor) -> torch.Tensor:
        moved = {}
        for i, name in enumerate(names):
            value = base[i]
            for k, d in enumerate(dirs):
                value = value + c[k] * d[i]
            moved[name] = value
        return loss_fn(moved)

    with torch.no_grad():
        return vmap(at, chunk_size=chunk_size)(coords)


def slice_1d(loss_fn: Callable[[Params], torch.Tensor], params: Params, direction: Params,
             alphas, chunk_size: int | None = None) -> torch.Tensor:
    """``[loss_fn(params + α direction) for α in alphas]``, evaluated in one vmap; shape (n,)."""
    alphas = _as_points(alphas, params).reshape(-1)
    return _grid_loss(loss_fn, params, [direction], alphas[:, None], chunk_size)


def slice_2d(loss_fn: Callable[[Params], torch.Tensor], params: Params, dx: Params, dy: Params,
             alphas, betas, chunk_size: int | None = None) -> torch.Tensor:
    """``loss_fn(params + α dx + β dy)`` on the grid ``alphas x betas``; shape (len(alphas),
    len(betas)), entry ``[i, j]`` at ``(alphas[i], betas[j])``."""
    alphas = _as_points(alphas, params).reshape(-1)
    betas = _as_points(betas, params).reshape(-1)
    a, b = torch.meshgrid(alphas, betas, indexing="ij")
    coords = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    values = _grid_loss(loss_fn, params, [dx, dy], coords, chunk_size)
    return values.reshape(len(alphas), len(betas))


def interpolate(loss_fn: Callable[[Params], torch.Tensor], start: Params, end: Params, alphas,
                chunk_size: int | None = None) -> torch.Tensor:
    """The loss along the line ``(1 - α) start + α end`` (Goodfellow et al.'s 1-D linear
    interpolation between two solutions; α = 0 is ``start``, α = 1 is ``end``)."""
    direction = {name: end[name].detach() - start[name].detach() for name in start}
    return slice_1d(loss_fn, start, direction, alphas, chunk_size)


def slice_eigenvalue_ratio(surface: torch.Tensor, h_alpha: float, h_beta: float) -> torch.Tensor:
    """λ_min / λ_max of the 2 x 2 Hessian of a 2-D slice, by central differences, at every
    interior grid point (shape (n_a - 2, n_b - 2)).

    A proxy for the convexity map of the paper's Sec. 6, which uses the eigenvalues of the full
    Hessian: a ratio near 0 or above is locally convex within the plane, a clearly negative ratio
    is not. Central differences are exact for a quadratic surface.
    """
    f = surface
    if f.dim() != 2 or min(f.shape) < 3:
        raise ValueError(f"need a 2-D surface of at least 3 x 3 points, got {tuple(f.shape)}")
    faa = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / h_alpha**2
    fbb = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / h_beta**2
    fab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * h_alpha * h_beta)
    mean = (faa + fbb) / 2
    radius = torch.sqrt(((faa - fbb) / 2) ** 2 + fab**2)
    lam_max, lam_min = mean + radius, mean - radius
    return lam_min / lam_max.abs().clamp_min(torch.finfo(f.dtype).tiny)
