"""Losses with one value per run of a batched model, so that their sum trains the runs
independently.

- ``per_model_cross_entropy``  mean cross-entropy of each of S models: logits (S, N, C) -> (S,)
- ``per_model_loss``           the same, or plain cross-entropy for logits (N, C)
- ``vae_loss``, ``gaussian_kl`` the negative ELBO of a VAE per example, and its KL term

Used in: chapters 10 (classification ensembles) and 40 (the VAE generator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from repro.models.vae import VAE


def per_model_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each model: ``logits`` ``(S, N, C)``, ``y`` ``(N,)`` or ``(S, N)``
    -> ``(S,)``. Sum it (not mean it) before ``backward`` so each model gets its own plain
    gradient."""
    S, N, C = logits.shape
    y = y.expand(S, N) if y.dim() == 1 else y
    losses = F.cross_entropy(logits.reshape(S * N, C), y.reshape(S * N), reduction="none")
    return losses.view(S, N).mean(dim=1)


def per_model_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy: a scalar for logits (N, C), one per model (S,) for logits (S, N, C)."""
    if logits.ndim == 2:
        return F.cross_entropy(logits, y)
    return per_model_cross_entropy(logits, y)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag exp(log_var)) || N(0, I) ), one value per row."""
    return 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(-1)


def vae_loss(vae: VAE, x: torch.Tensor, generator: torch.Generator | None = None,
             beta: float = 1.0) -> torch.Tensor:
    """Negative ELBO per example (nats): summed pixel cross-entropy + beta * KL."""
    logits, mu, log_var = vae(x, generator)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    return reconstruction + beta * gaussian_kl(mu, log_var)


__all__ = ['gaussian_kl', 'per_model_cross_entropy', 'per_model_loss', 'vae_loss']
