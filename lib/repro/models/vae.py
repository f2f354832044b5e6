"""A small variational autoencoder (Kingma and Welling) with MLP encoder and decoder.

- :class:`VAE`        encoder ``x -> (mu, log var)``, decoder ``z -> pixel means in (0, 1)``;
  ``vae.decoder`` is a plain ``nn.Sequential``, so it can serve on its own as a generator
  ``G(z)`` (for example with ``torch.func.functional_call`` over per-image weight copies).

Its loss is ``repro.losses.vae_loss`` and its training loop ``repro.train.train_vae``.

Images are flat vectors of ``n_input`` pixels in [0, 1].

Used in: chapter 40 (the generator of generative compressed sensing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["VAE"]


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
    """MLP VAE: ``n_input -> hidden -> 2 * n_latent`` and
    ``n_latent -> reversed(hidden) -> n_input``.

    ``hidden=(500, 500), n_latent=20, n_input=784`` is the MNIST VAE of Bora et al. (2017) that the
    CS-BGM paper reuses; the defaults are a size for 8x8 digits.
    """

    def __init__(self, n_input: int = 64, n_latent: int = 8, hidden: Sequence[int] = (128,),
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n_input < 1 or n_latent < 1 or any(int(h) < 1 for h in hidden):
            raise ValueError(f"VAE sizes must be positive: n_input={n_input}, "
                             f"n_latent={n_latent}, hidden={tuple(hidden)}")
        self.n_input, self.n_latent, self.hidden = (int(n_input), int(n_latent),
                                                    tuple(map(int, hidden)))
        self.encoder = nn.Sequential(
            *_mlp([self.n_input, *self.hidden, 2 * self.n_latent], generator))
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

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction from one reparameterised sample, with the posterior's mean and
        log-variance."""
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
