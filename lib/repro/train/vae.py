"""Training a variational autoencoder with Adam on mini-batches drawn from a seeded generator.

The loop does not wait for the device at each step: the epoch's loss is summed on the device, the
divergence check is read every ``check_every`` steps (``repro.checks.FiniteWatch``), and the
history is copied to the host once, at the end.

Used in: chapter 40 (generative compressed sensing).
"""

from __future__ import annotations

import torch

from repro.checks import FiniteWatch, positive_int
from repro.losses import vae_loss
from repro.models.vae import VAE


def train_vae(vae: VAE, x: torch.Tensor, epochs: int = 100, batch_size: int = 64,
              lr: float = 1e-3, generator: torch.Generator | None = None,
              beta: float = 1.0, check_every: int = 100) -> list[float]:
    """Train ``vae`` on the rows of ``x`` (pixels in [0, 1]) with Adam; returns the mean loss per
    epoch.

    Shuffling and the reparameterisation noise both come from ``generator``. A non-finite loss
    raises :class:`repro.Diverged` naming the step where it appeared, at most ``check_every``
    steps later.
    """
    positive_int("check_every", check_every)
    if x.ndim != 2 or x.shape[1] != vae.n_input:
        raise ValueError(f"train_vae: x must be (N, {vae.n_input}), got {tuple(x.shape)}")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("train_vae: pixels must lie in [0, 1] (the decoder is Bernoulli)")
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    totals = []                      # per epoch, on the device
    watch = FiniteWatch("VAE training loss", every=check_every)
    n, step = len(x), 0
    vae.train()
    for epoch in range(int(epochs)):
        order = torch.randperm(n, generator=generator).to(x.device)
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for start in range(0, n, batch_size):
            batch = x[order[start:start + batch_size]]
            loss = vae_loss(vae, batch, generator, beta).mean()
            watch.update(loss, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total = total + loss.detach().double() * len(batch)
            step += 1
        totals.append(total / n)
    watch.check()
    vae.eval()
    return torch.stack(totals).tolist() if totals else []


__all__ = ['train_vae']
