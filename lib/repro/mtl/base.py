"""The aggregator interface and what every multi-task training loop needs around it.

An aggregator turns the task gradients of the shared parameters, a tensor ``G`` of shape
``(..., K, P)`` (K tasks, P parameters, any leading batch dimensions such as seeds), into one
update direction of shape ``(..., P)``. The training loop then writes that direction into the
shared parameters' gradients (``set_grad``) and steps any torch optimizer.

Used in: chapter 39 (Nash-MTL), by every aggregator of ``repro.mtl``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def gram(G: torch.Tensor) -> torch.Tensor:
    """M = G G^T over the last two dimensions: (..., K, P) -> (..., K, K)."""
    return G @ G.transpose(-1, -2)


class Aggregator:
    """Maps task gradients G (..., K, P) to one direction (..., P); ``weights`` holds the last
    weights over tasks (..., K) where the method has them."""

    name = "aggregator"

    def __init__(self) -> None:
        self.weights = None

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _batched(G: torch.Tensor):
    """Flatten the leading dimensions of G: returns (B, K, P) and a function to restore them."""
    lead = G.shape[:-2]
    return G.reshape(-1, *G.shape[-2:]), lambda x: x.reshape(*lead, *x.shape[1:])


def task_gradients(losses: Iterable[torch.Tensor], params: Iterable[torch.Tensor]) -> torch.Tensor:
    """The (K, P) matrix of the gradients of each of K scalar losses w.r.t. ``params``,
    flattened."""
    params = list(params)
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, params)]))
    return torch.stack(rows)


def set_grad(params: Iterable[torch.Tensor], direction: torch.Tensor) -> None:
    """Write a flat direction (P,) into the ``.grad`` of ``params`` (in order)."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = direction[offset:offset + n].view_as(p).clone()
        offset += n


def set_grad_batched(params: Iterable[torch.Tensor], direction: torch.Tensor) -> None:
    """Write per-run directions (S, P) into the ``.grad`` of parameters that lead with S runs."""
    offset = 0
    for p in params:
        n = p[0].numel()
        p.grad = direction[:, offset:offset + n].reshape(p.shape).clone()
        offset += n


__all__ = ['Aggregator', 'gram', 'set_grad', 'set_grad_batched', 'task_gradients']
