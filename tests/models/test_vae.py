"""repro.models.vae: shapes, the decoder as a generator, seeded weights."""

from __future__ import annotations

import pytest
import torch

import repro
from repro.models import VAE

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


def test_constructor_refuses_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        VAE(4, 0)
