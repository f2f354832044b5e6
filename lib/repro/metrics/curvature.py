"""Curvature of a loss: Hessian-vector products, the exact Hessian of a small problem, its trace
(exact or Hutchinson's estimate) and its top eigenvalue.

``loss_fn(params)`` takes ``params`` (a tensor, or a list/tuple of tensors) and returns either a
scalar or one loss per model of a batched ensemble, shape (S,), when every parameter tensor has the
same leading dimension S. In the batched case the Hessian of the summed loss is block diagonal,
one block per model, so one probe vector carries an independent probe for every model, and each
function returns one value per model.

Parameters that are leaves requiring grad (e.g. ``list(model.parameters())``) are used as they are,
so ``loss_fn`` may ignore its argument and close over a module; others are detached copies.

Used in: chapter 10 (Anti-PGD), and wherever a chapter measures sharpness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


class _Curvature:
    """The gradient of loss_fn at params, kept with its graph for repeated Hessian-vector
    products."""

    def __init__(self, loss_fn: Callable[..., torch.Tensor],
                 params: torch.Tensor | Sequence[torch.Tensor],
                 per_model: bool | None = None) -> None:
        self.single = isinstance(params, torch.Tensor)
        raw = [params] if self.single else list(params)
        self.params = [p if (p.is_leaf and p.requires_grad) else p.detach().requires_grad_(True)
                       for p in raw]
        loss = loss_fn(self.params[0] if self.single else self.params)
        if per_model is None:
            S = loss.shape[0] if loss.ndim == 1 else None
            per_model = S is not None and all(p.ndim >= 1 and p.shape[0] == S for p in self.params)
        if per_model and (loss.ndim != 1 or any(p.shape[0] != loss.shape[0] for p in self.params)):
            raise ValueError("per-model curvature needs loss_fn to return shape (S,) and every "
                             "parameter to have leading dimension S")
        self.per_model = per_model
        self.n_models = loss.shape[0] if per_model else None
        self.loss = loss.detach()
        self.grads = torch.autograd.grad(loss.sum(), self.params, create_graph=True)

    def hvp(self, vectors: list[torch.Tensor]) -> list[torch.Tensor]:
        hv = torch.autograd.grad(self.grads, self.params, grad_outputs=vectors,
                                 retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(hv, self.params)]

    def dot(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """<a, b> per model (shape (S,)) or in total (a scalar)."""
        if self.per_model:
            return sum((x * y).reshape(self.n_models, -1).sum(1) for x, y in zip(a, b))
        return sum((x * y).sum() for x, y in zip(a, b))

    def block_sizes(self) -> list[int]:
        """Number of entries of each parameter that belong to one model (or to the whole model)."""
        if self.per_model:
            return [p[0].numel() for p in self.params]
        return [p.numel() for p in self.params]

    def basis_vector(self, j: int) -> list[torch.Tensor]:
        """Coordinate j of the (per-model) flattened parameter, set to 1 in every model block."""
        out = []
        for p, size in zip(self.params, self.block_sizes()):
            e = torch.zeros_like(p)
            if 0 <= j < size:
                if self.per_model:
                    e.reshape(self.n_models, -1)[:, j] = 1.0
                else:
                    e.reshape(-1)[j] = 1.0
            j -= size
            out.append(e)
        return out

    def flatten(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        if self.per_model:
            return torch.cat([v.reshape(self.n_models, -1) for v in vectors], dim=1)
        return torch.cat([v.reshape(-1) for v in vectors])


def _unwrap(curv: _Curvature, vectors: list[torch.Tensor]):
    return vectors[0] if curv.single else vectors


def hvp(loss_fn: Callable[..., torch.Tensor], params: torch.Tensor | Sequence[torch.Tensor],
        vectors: torch.Tensor | Sequence[torch.Tensor],
        per_model: bool | None = None) -> torch.Tensor | list[torch.Tensor]:
    """The Hessian of loss_fn at params times ``vectors`` (same structure as params)."""
    curv = _Curvature(loss_fn, params, per_model)
    vs = [vectors] if curv.single else list(vectors)
    return _unwrap(curv, curv.hvp(vs))


def hessian(loss_fn: Callable[..., torch.Tensor], params: torch.Tensor | Sequence[torch.Tensor],
            per_model: bool | None = None) -> torch.Tensor:
    """The exact Hessian over the flattened parameters, (P, P); per model (S, P, P) when batched.

    One Hessian-vector product per parameter coordinate: for small problems only.
    """
    curv = _Curvature(loss_fn, params, per_model)
    P = sum(curv.block_sizes())
    columns = [curv.flatten(curv.hvp(curv.basis_vector(j))) for j in range(P)]
    return torch.stack(columns, dim=-1)  # column j is H e_j


def hessian_trace(loss_fn: Callable[..., torch.Tensor],
                  params: torch.Tensor | Sequence[torch.Tensor],
                  per_model: bool | None = None) -> torch.Tensor:
    """The exact trace (sum of the diagonal of ``hessian``): a scalar, or (S,) when batched."""
    return torch.diagonal(hessian(loss_fn, params, per_model), dim1=-2, dim2=-1).sum(-1)


def hutchinson_trace(loss_fn: Callable[..., torch.Tensor],
                     params: torch.Tensor | Sequence[torch.Tensor], n_samples: int = 100,
                     generator: torch.Generator | None = None,
                     per_model: bool | None = None) -> torch.Tensor:
    """Hutchinson's estimate (1/N) sum_k z_k^T H z_k with Rademacher probes z_k.

    Unbiased; with one probe its variance is 2 sum_{i != j} H_ij^2 (the off-diagonal mass of H).
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    curv = _Curvature(loss_fn, params, per_model)
    total = 0.0
    for _ in range(n_samples):
        z = [_rademacher(p, generator) for p in curv.params]
        total = total + curv.dot(z, curv.hvp(z))
    return total / n_samples


def top_eigenvalue(loss_fn: Callable[..., torch.Tensor],
                   params: torch.Tensor | Sequence[torch.Tensor],
                   iters: int = 100, generator: torch.Generator | None = None,
                   per_model: bool | None = None) -> torch.Tensor:
    """The Hessian's eigenvalue of largest magnitude, by power iteration on Hessian-vector products.

    Near a minimum the Hessian is (nearly) positive semi-definite, so this is its top eigenvalue.
    Returns the Rayleigh quotient v^T H v of the final unit vector v (per model when batched).
    """
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an integer >= 1, got {iters!r}")
    curv = _Curvature(loss_fn, params, per_model)
    v = _normalise(curv, [_gaussian(p, generator) for p in curv.params])
    for _ in range(iters):
        v = _normalise(curv, curv.hvp(v))
    return curv.dot(v, curv.hvp(v))


def _normalise(curv: _Curvature, vectors: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = curv.dot(vectors, vectors).sqrt().clamp_min(torch.finfo(vectors[0].dtype).tiny)
    if curv.per_model:
        return [v / norm.reshape(-1, *([1] * (v.ndim - 1))) for v in vectors]
    return [v / norm for v in vectors]


def _draw_on(p: torch.Tensor, generator: torch.Generator | None):
    return generator.device if generator is not None else p.device


def _rademacher(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    bits = torch.randint(0, 2, p.shape, generator=generator, device=_draw_on(p, generator))
    return (2 * bits - 1).to(dtype=p.dtype, device=p.device)


def _gaussian(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    z = torch.randn(p.shape, generator=generator, device=_draw_on(p, generator), dtype=p.dtype)
    return z.to(p.device)


__all__ = ['hessian', 'hessian_trace', 'hutchinson_trace', 'hvp', 'top_eigenvalue']
