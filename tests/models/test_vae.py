"""repro.models.vae: shapes, exact values of the loss's parts, seeded and trainable."""

from __future__ import annotations

import math

import pytest
import torch

import repro
from repro.models import VAE, train_vae, vae_loss
from repro.models.vae import gaussian_kl

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapes_and_pixel_range():
    vae = VAE(n_input=64, n_latent=5, hidden=(32, 16), generator=repro.generator(0))
    x = torch.rand(7, 64, generator=repro.generator(1))
    mu, log_var = vae.encode(x)
    assert mu.shape == (7, 5) and log_var.shape == (7, 5)
    img = vae.decode(torch.randn(7, 5, generator=repro.generator(2)) * 10)
    assert img.shape == (7, 64) and bool(((img > 0) & (img < 1)).all())
    assert vae.sample(3, repro.generator(3)).shape == (3, 64)
    # The decoder is a plain Sequential taking z alone: usable as a generator G(z).
    assert [type(m).__name__ for m in vae.decoder] == ["Linear", "Softplus", "Linear", "Softplus",
                                                      "Linear", "Sigmoid"]
    assert vae.decoder[0].in_features == 5 and vae.decoder[-2].out_features == 64


def test_same_seed_same_weights():
    a, b = (VAE(16, 3, (8,), generator=repro.generator(4)) for _ in range(2))
    c = VAE(16, 3, (8,), generator=repro.generator(5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


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
    # Zero weights: posterior N(0, I) (KL 0) and logits 0, i.e. p = 1/2 for every pixel, whatever x is.
    x = torch.rand(3, 10, generator=repro.generator(0))
    torch.testing.assert_close(vae_loss(vae, x, repro.generator(1)),
                               torch.full((3,), 10 * math.log(2.0)))


def test_training_lowers_the_loss_and_is_reproducible():
    x = (torch.rand(200, 16, generator=repro.generator(0)) > 0.5).float()
    histories, weights = [], []
    for _ in range(2):
        vae = VAE(16, 2, (16,), generator=repro.generator(1))
        histories.append(train_vae(vae, x, epochs=30, batch_size=50, lr=1e-2,
                                   generator=repro.generator(2)))
        weights.append([p.detach().clone() for p in vae.parameters()])
    assert histories[0] == histories[1]
    assert all(torch.equal(p, q) for p, q in zip(*weights))
    assert histories[0][-1] < histories[0][0] - 0.5


def test_training_refuses_bad_input():
    vae = VAE(4, 2, (3,))
    with pytest.raises(ValueError, match="pixels"):
        train_vae(vae, torch.full((5, 4), 2.0), epochs=1)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        train_vae(vae, torch.rand(5, 3), epochs=1)
    with pytest.raises(ValueError, match="positive"):
        VAE(4, 0)


def test_divergence_raises():
    vae = VAE(4, 2, (3,))
    with torch.no_grad():
        vae.encoder[0].weight.fill_(float("nan"))
    with pytest.raises(repro.Diverged):
        train_vae(vae, torch.rand(8, 4), epochs=1)
