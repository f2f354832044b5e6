"""repro.train.vae: train_vae lowers the loss, is reproducible, refuses bad input, detects
divergence."""

from __future__ import annotations

import pytest
import torch

import repro
from repro.models import VAE
from repro.train import train_vae

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_divergence_raises():
    vae = VAE(4, 2, (3,))
    with torch.no_grad():
        vae.encoder[0].weight.fill_(float("nan"))
    with pytest.raises(repro.Diverged, match="at step 0"):
        train_vae(vae, torch.rand(8, 4), epochs=1)
