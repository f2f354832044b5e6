"""Per-example Hessians and their coherence measure (Dexter et al., 2024).

At a minimum w* where every example fits (each per-example gradient vanishes), SGD linearised
around w* multiplies the deviation by I - (eta/B) sum_{i in batch} H_i, with H_i the Hessian of
example i's loss. Whether the H_i point the same way decides how much the minibatch noise can
amplify a deviation. Dexter et al. measure this with the coherence matrix

    S_ij = || H_i^{1/2} H_j^{1/2} ||_F = sqrt(tr(H_i H_j))        (PSD H_i, H_j)

and the coherence measure sigma = lambda_1(S) / max_i lambda_1(H_i). For rank-one H_i = x_i x_i^T,
S_ij = |x_i^T x_j|: sigma = 1 when the x_i are orthogonal and sigma = n when they are all equal.
Their Theorem 1 (as restated by Chang & Khanna, 2025, Sec. 3; the statement under Bernoulli
sampling, each example in the batch with probability B/n): linearised SGD diverges in mean square
when

    lambda_1(H) >= (sigma / eta) (n/B - 1)^(-1/2),
    i.e.   eta >= sigma / (lambda_1(H) sqrt(n/B - 1)).

``theorem1_step_size`` returns that right-hand side, the smallest step size at which the
theorem predicts instability (infinite at B = n: the theorem says nothing about full-batch GD).

References: [Dexter et al., 2024](https://arxiv.org/abs/2401.12332), Definition 1 and Theorem 1.

Used in: chapter 12 (SGD stability and loss-surface geometry).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call, hessian, vmap

__all__ = ["coherence_matrix", "coherence_measure", "per_example_hessians", "predicts_instability",
           "theorem1_step_size"]


def per_example_hessians(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                         torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Hessian of each example's loss with respect to all of ``model``'s parameters.

    ``loss_fn(prediction, target)`` returns the scalar loss of one example (its prediction has the
    model's output shape for a batch of one). Returns a tensor of shape (n, P, P), P the number of
    parameters, flattened in the order of ``model.named_parameters()``.
    """
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])

    def one(theta: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        parts = torch.split(theta, sizes)
        params = {k: v.reshape(s) for k, v, s in zip(names, parts, shapes)}
        out = functional_call(model, params, (x[None],))
        return loss_fn(out, t[None])

    return vmap(hessian(one), in_dims=(None, 0, 0))(flat, X, y)


def coherence_matrix(hessians: torch.Tensor) -> torch.Tensor:
    """S_ij = ||H_i^{1/2} H_j^{1/2}||_F = sqrt(tr(H_i H_j)) for PSD H_i.

    Shape (..., n, d, d) -> (..., n, n)."""
    gram = torch.einsum("...iab,...jba->...ij", hessians, hessians)
    return gram.clamp_min(0).sqrt()


def coherence_measure(hessians: torch.Tensor) -> torch.Tensor:
    """The coherence measure sigma = lambda_1(S) / max_i lambda_1(H_i): (..., n, d, d) -> (...)."""
    top_S = torch.linalg.eigvalsh(coherence_matrix(hessians))[..., -1]
    top_H = torch.linalg.eigvalsh(hessians)[..., -1].amax(-1)
    return top_S / top_H


def theorem1_step_size(hessians: torch.Tensor, batch_size) -> torch.Tensor:
    """The step size above which Theorem 1 predicts mean-square divergence, by batch size.

    eta_1 = sigma / (lambda_1(H) sqrt(n/B - 1)), H the mean Hessian; ``batch_size`` is a number or
    a tensor that broadcasts against the problems' leading dimensions; inf where B >= n.
    """
    n = hessians.shape[-3]
    sigma = coherence_measure(hessians)
    lam = torch.linalg.eigvalsh(hessians.mean(-3))[..., -1]
    B = torch.as_tensor(batch_size, dtype=hessians.dtype, device=hessians.device)
    ratio = (n / B - 1).clamp_min(0)
    return torch.where(ratio > 0, sigma / (lam * ratio.sqrt()), torch.full_like(ratio, torch.inf))


def predicts_instability(hessians: torch.Tensor, lr, batch_size) -> torch.Tensor:
    """Theorem 1's test, lambda_1(H) >= (sigma/eta)(n/B - 1)^(-1/2), as booleans (broadcast)."""
    lr = torch.as_tensor(lr, dtype=hessians.dtype, device=hessians.device)
    return lr >= theorem1_step_size(hessians, batch_size)
