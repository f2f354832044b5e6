"""repro.solvers.generative: CSGM and CS-BGM (MAP) against closed forms, batching and restarts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import repro
from repro.problems import CompressedSensing
from repro.solvers import cs_bgm, csgm, map_estimate

pytestmark = pytest.mark.usefixtures("one_thread")


def _linear_decoder(k, n, seed):
    dec = nn.Sequential(nn.Linear(k, n)).double()
    g = repro.generator(seed)
    with torch.no_grad():
        dec[0].weight.copy_(torch.randn(n, k, generator=g, dtype=torch.float64))
        dec[0].bias.copy_(0.1 * torch.randn(n, generator=g, dtype=torch.float64))
    return dec


def test_csgm_on_a_linear_generator_matches_ridge_regression():
    n, k, m, lam = 12, 3, 6, 0.05
    dec = _linear_decoder(k, n, 0)
    W, b = dec[0].weight.detach(), dec[0].bias.detach()
    cs = CompressedSensing(n, m, noise_std=0.1, seed=1, batch=(2,), dtype=torch.float64)
    y = cs.measure(torch.rand(2, n, generator=repro.generator(2), dtype=torch.float64))
    out = csgm(dec, cs.A, y, lam_z=lam, steps=3000, restarts=2, lr=0.02,
               generator=repro.generator(3))
    for i in range(2):
        AW = cs.A[i] @ W  # the objective (1/m)|y - A(Wz + b)|^2 + lam |z|^2 is a ridge in z
        z = torch.linalg.solve(AW.T @ AW / m + lam * torch.eye(k), AW.T @ (y[i] - cs.A[i] @ b) / m)
        torch.testing.assert_close(out.z[i], z, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.x[i], W @ z + b, atol=1e-5, rtol=0)
    assert float(out.theta_shift.abs().max()) == 0.0


def test_theta_step_on_a_linear_layer_is_a_ridge_correction():
    # With z fixed, min over (W, b) of (1/m)|y - A(Wz + b)|^2 + lam(|W - W0|^2 + |b - b0|^2) moves
    # x = Wz + b by u = (A^T A + (m lam / (|z|^2 + 1)) I)^{-1} A^T (y - A x0): the chapter's
    # formula.
    n, k, m, lam = 10, 2, 4, 0.3
    dec = _linear_decoder(k, n, 7)
    cs = CompressedSensing(n, m, noise_std=0.0, seed=8, dtype=torch.float64)
    y = cs.measure(torch.rand(1, n, generator=repro.generator(9), dtype=torch.float64))
    z0 = torch.randn(1, 1, k, generator=repro.generator(10), dtype=torch.float64)
    out = cs_bgm(dec, cs.A, y, lam_z=0.0, lam_theta=lam, steps_z=0, steps_theta=1500,
                 lr_theta=0.01, z_init=z0)
    with torch.no_grad():
        x0 = dec(z0[0, 0])
    A = cs.A
    ridge = m * lam / (float((z0**2).sum()) + 1.0)
    u = torch.linalg.solve(A.T @ A + ridge * torch.eye(n), A.T @ (y[0] - A @ x0))
    torch.testing.assert_close(out.x[0], x0 + u, atol=5e-3, rtol=0)
    torch.testing.assert_close(out.z, z0[:, 0])  # z stays where it started
    # The shift needed is exactly |u|^2 / (|z|^2 + 1).
    assert abs(out.theta_shift.item() - float((u**2).sum()) / (float((z0**2).sum()) + 1)) < 2e-3


def test_infinite_lam_theta_is_csgm_and_batching_changes_nothing():
    dec = _linear_decoder(3, 9, 11)
    nn.init.zeros_(dec[0].bias)
    dec = nn.Sequential(dec[0], nn.Sigmoid())
    cs = CompressedSensing(9, 4, noise_std=0.1, seed=12, batch=(3,), dtype=torch.float64)
    y = cs.measure(torch.rand(3, 9, generator=repro.generator(13), dtype=torch.float64))
    z0 = torch.randn(3, 2, 3, generator=repro.generator(14), dtype=torch.float64)
    a = csgm(dec, cs.A, y, lam_z=0.1, steps=50, z_init=z0)
    b = cs_bgm(dec, cs.A, y, lam_z=0.1, lam_theta=math.inf, steps_z=50, steps_theta=30, z_init=z0)
    torch.testing.assert_close(a.x, b.x)
    full = cs_bgm(dec, cs.A, y, lam_z=0.1, lam_theta=torch.tensor([0.1, 1.0, 10.0]), steps_z=50,
                  steps_theta=30, lr_theta=0.01, z_init=z0)
    for i, lam in enumerate((0.1, 1.0, 10.0)):
        alone = cs_bgm(dec, cs.A[i:i + 1], y[i:i + 1], lam_z=0.1, lam_theta=lam, steps_z=50,
                       steps_theta=30, lr_theta=0.01, z_init=z0[i:i + 1])
        torch.testing.assert_close(full.x[i:i + 1], alone.x)
    chunked = cs_bgm(dec, cs.A, y, lam_z=0.1, lam_theta=torch.tensor([0.1, 1.0, 10.0]), steps_z=50,
                     steps_theta=30, lr_theta=0.01, z_init=z0, chunk=2)
    torch.testing.assert_close(chunked.x, full.x)
    # A larger penalty keeps theta closer to theta0.
    assert full.theta_shift[0] > full.theta_shift[1] > full.theta_shift[2] > 0


def test_best_restart_is_kept():
    dec = nn.Sequential(_linear_decoder(2, 6, 15)[0], nn.Tanh())
    cs = CompressedSensing(6, 3, noise_std=0.0, seed=16, batch=(1,), dtype=torch.float64)
    y = cs.measure(torch.rand(1, 6, generator=repro.generator(17), dtype=torch.float64))
    z0 = 3 * torch.randn(1, 4, 2, generator=repro.generator(18), dtype=torch.float64)
    both = csgm(dec, cs.A, y, lam_z=0.01, steps=20, z_init=z0)
    single = [csgm(dec, cs.A, y, lam_z=0.01, steps=20, z_init=z0[:, r:r + 1]).objective
              for r in range(4)]
    torch.testing.assert_close(both.objective, torch.stack(single).min(0).values)


def test_map_estimate_refuses_bad_input():
    dec = _linear_decoder(2, 5, 0)
    A, y = torch.zeros(2, 3, 5, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="disagree"):
        map_estimate(dec, A, y, lam_z=0.1)
    with pytest.raises(ValueError, match="penalty"):
        map_estimate(dec, A[:, :, :], torch.zeros(2, 3, dtype=torch.float64), lam_z=0.1,
                     steps_theta=1, lam_theta=1.0, penalty="l1")
    with pytest.raises(ValueError, match=">= 0"):
        map_estimate(dec, A, torch.zeros(2, 3, dtype=torch.float64), lam_z=-1.0)


def test_divergence_raises():
    dec = _linear_decoder(2, 5, 0)
    A = torch.full((1, 3, 5), float("nan"), dtype=torch.float64)
    with pytest.raises(repro.Diverged, match=r"z steps\) became non-finite at step 0"):
        csgm(dec, A, torch.zeros(1, 3, dtype=torch.float64), lam_z=0.1, steps=2,
             generator=repro.generator(0))


def test_cs_bgm_continues_from_csgm_restarts():
    # The paper's pipeline per restart: z steps, then theta steps. Running CSGM first and handing
    # its z_all to cs_bgm with steps_z=0 is the same computation.
    dec = nn.Sequential(_linear_decoder(2, 6, 19)[0], nn.Sigmoid())
    cs = CompressedSensing(6, 4, noise_std=0.1, seed=20, batch=(2,), dtype=torch.float64)
    y = cs.measure(torch.rand(2, 6, generator=repro.generator(21), dtype=torch.float64))
    z0 = torch.randn(2, 3, 2, generator=repro.generator(22), dtype=torch.float64)
    kw = dict(lam_z=0.05, lam_theta=0.5, steps_theta=20, lr_theta=0.01)
    direct = cs_bgm(dec, cs.A, y, steps_z=40, z_init=z0, **kw)
    first = csgm(dec, cs.A, y, lam_z=0.05, steps=40, z_init=z0)
    assert first.z_all.shape == (2, 3, 2)
    assert bool((first.z_all == first.z[:, None]).all(-1).any(-1).all())  # z is one of them
    then = cs_bgm(dec, cs.A, y, steps_z=0, z_init=first.z_all, **kw)
    torch.testing.assert_close(then.x, direct.x)
    torch.testing.assert_close(then.z_all, first.z_all)
