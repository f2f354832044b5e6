"""Training a variational autoencoder with Adam on mini-batches drawn from a seeded generator.

Used in: chapter 40 (generative compressed sensing).
"""

from __future__ import annotations

import torch

from repro.checks import check_finite
from repro.losses import vae_loss
from repro.models.vae import VAE


def train_vae(vae: VAE, x: torch.Tensor, epochs: int = 100, batch_size: int = 64,
              lr: float = 1e-3, generator: torch.Generator | None = None,
              beta: float = 1.0) -> list[float]:
    """Train ``vae`` on the rows of ``x`` (pixels in [0, 1]) with Adam; returns the mean loss per
    epoch.

    Shuffling and the reparameterisation noise both come from ``generator``. A non-finite loss
    raises :class:`repro.Diverged`.
    """
    if x.ndim != 2 or x.shape[1] != vae.n_input:
        raise ValueError(f"train_vae: x must be (N, {vae.n_input}), got {tuple(x.shape)}")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("train_vae: pixels must lie in [0, 1] (the decoder is Bernoulli)")
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    history = []
    n = len(x)
    vae.train()
    for epoch in range(int(epochs)):
        order = torch.randperm(n, generator=generator).to(x.device)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = x[order[start:start + batch_size]]
            loss = vae_loss(vae, batch, generator, beta).mean()
            check_finite(loss, "VAE training loss", epoch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        history.append(total / n)
    vae.eval()
    return history


__all__ = ['train_vae']
