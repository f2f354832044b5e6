"""repro.losses: per-model cross-entropy, the VAE's negative ELBO and its KL term, exactly."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import repro
from repro.losses import gaussian_kl, per_model_cross_entropy, per_model_loss, vae_loss
from repro.models import VAE


def test_per_model_cross_entropy_matches_per_model_losses():
    logits = torch.randn(3, 10, 4)
    y = torch.randint(0, 4, (10,))
    expected = torch.stack([F.cross_entropy(logits[i], y) for i in range(3)])
    torch.testing.assert_close(per_model_cross_entropy(logits, y), expected)
    ys = torch.randint(0, 4, (3, 10))
    expected = torch.stack([F.cross_entropy(logits[i], ys[i]) for i in range(3)])
    torch.testing.assert_close(per_model_cross_entropy(logits, ys), expected)


def test_gaussian_kl_exact():
    mu = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    log_var = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    expected = 0.5 * (1 + 4 + 1 + 4 - 2 - math.log(4.0))
    torch.testing.assert_close(gaussian_kl(mu, log_var), torch.tensor([expected, 0.0]))


def test_loss_of_a_zero_network_is_n_log_2():
    vae = VAE(10, 2, (4,))
    with torch.no_grad():
        for p in vae.parameters():
            p.zero_()
    # Zero weights: posterior N(0, I) (KL 0) and logits 0, i.e. p = 1/2 for every pixel, whatever
    # x is.
    x = torch.rand(3, 10, generator=repro.generator(0))
    torch.testing.assert_close(vae_loss(vae, x, repro.generator(1)),
                               torch.full((3,), 10 * math.log(2.0)))


def test_per_model_loss_is_plain_cross_entropy_for_one_model():
    logits, y = torch.randn(10, 4), torch.randint(0, 4, (10,))
    torch.testing.assert_close(per_model_loss(logits, y), F.cross_entropy(logits, y))
    torch.testing.assert_close(per_model_loss(logits[None].expand(2, 10, 4), y),
                               F.cross_entropy(logits, y).expand(2))
