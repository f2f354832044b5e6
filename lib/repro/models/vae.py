"""A small variational autoencoder (Kingma and Welling) with MLP encoder and decoder.

- :class:`VAE`        encoder ``x -> (mu, log var)``, decoder ``z -> pixel means in (0, 1)``;
  ``vae.decoder`` is a plain ``nn.Sequential``, so it can serve on its own as a generator
  ``G(z)`` (for example with ``torch.func.functional_call`` over per-image weight copies).
- :func:`vae_loss`    the negative ELBO per example: Bernoulli reconstruction (binary cross-entropy
  summed over pixels) plus the KL divergence of ``N(mu, diag var)`` from ``N(0, I)``.
- :func:`train_vae`   Adam on mini-batches drawn from a seeded generator.

Images are flat vectors of ``n_input`` pixels in [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from repro._common import check_finite

__all__ = ["VAE", "vae_loss", "gaussian_kl", "train_vae"]


def _mlp(sizes: Sequence[int], generator=None) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = nn.Linear(a, b)
        bound = 1.0 / a**0.5  # nn.Linear's default range, drawn from our generator
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(nn.Softplus())  # smooth, so the decoder's range is a smooth manifold
    return layers


class VAE(nn.Module):
    """MLP VAE: ``n_input -> hidden -> 2 * n_latent`` and ``n_latent -> reversed(hidden) -> n_input``.

    ``hidden=(500, 500), n_latent=20, n_input=784`` is the MNIST VAE of Bora et al. (2017) that the
    CS-BGM paper reuses; the defaults are a size for 8x8 digits.
    """

    def __init__(self, n_input: int = 64, n_latent: int = 8, hidden: Sequence[int] = (128,),
                 generator: torch.Generator | None = None):
        super().__init__()
        if n_input < 1 or n_latent < 1 or any(int(h) < 1 for h in hidden):
            raise ValueError(f"VAE sizes must be positive: n_input={n_input}, "
                             f"n_latent={n_latent}, hidden={tuple(hidden)}")
        self.n_input, self.n_latent, self.hidden = int(n_input), int(n_latent), tuple(map(int, hidden))
        self.encoder = nn.Sequential(*_mlp([self.n_input, *self.hidden, 2 * self.n_latent], generator))
        # The decoder ends in a sigmoid: outputs are Bernoulli means, i.e. pixel values in (0, 1).
        self.decoder = nn.Sequential(
            *_mlp([self.n_latent, *reversed(self.hidden), self.n_input], generator), nn.Sigmoid()
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator G(z): pixel means in (0, 1)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Reconstruction from one reparameterised sample, with the posterior's mean and log-variance."""
        mu, log_var = self.encode(x)
        eps = _randn(mu.shape, generator, mu)
        z = mu + torch.exp(0.5 * log_var) * eps
        return self.decoder[:-1](z), mu, log_var  # logits: the loss applies the sigmoid stably

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images G(z) with z drawn from the prior N(0, I)."""
        p = next(self.parameters())
        z = _randn((n, self.n_latent), generator, p)
        return self.decode(z)


def _randn(shape, generator, like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws from ``generator`` (on its own device), moved next to ``like``."""
    where = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=where, dtype=like.dtype).to(like.device)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag exp(log_var)) || N(0, I) ), one value per row."""
    return 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(-1)


def vae_loss(vae: VAE, x: torch.Tensor, generator: torch.Generator | None = None,
             beta: float = 1.0) -> torch.Tensor:
    """Negative ELBO per example (nats): summed pixel cross-entropy + beta * KL."""
    logits, mu, log_var = vae(x, generator)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    return reconstruction + beta * gaussian_kl(mu, log_var)


def train_vae(vae: VAE, x: torch.Tensor, epochs: int = 100, batch_size: int = 64,
              lr: float = 1e-3, generator: torch.Generator | None = None, beta: float = 1.0) -> list[float]:
    """Train ``vae`` on the rows of ``x`` (pixels in [0, 1]) with Adam; returns the mean loss per epoch.

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
