"""repro.optim.noise_injection: exact updates of PGD and Anti-PGD on a tiny quadratic, stopping the
noise, and argument checks."""

import pytest
import torch

from repro import generator
from repro.optim import GD, PGD, AntiPGD, NoiseInjection, stop_noise

from ._quadratic import LR, SIGMA, W0, A, draws, quadratic, run


@pytest.mark.parametrize("noise", ["gaussian", "bernoulli"])
def test_pgd_one_exact_step(noise):
    w, _ = run(PGD, 1, lr=LR, sigma=SIGMA, noise=noise, generator=generator(7))
    (xi,) = draws(noise, 1)
    torch.testing.assert_close(w, W0 - LR * A * W0 + xi, rtol=0, atol=1e-15)


def test_bernoulli_noise_is_plus_minus_sigma_with_both_signs():
    xi = NoiseInjection(SIGMA, "bernoulli", generator=generator(0)).sample(torch.zeros(1000))
    assert torch.allclose(xi.abs(), torch.full_like(xi, SIGMA))
    assert 400 < int((xi > 0).sum()) < 600  # a fair coin: 500 +- 3.2 standard deviations


@pytest.mark.parametrize("noise", ["gaussian", "bernoulli"])
def test_anti_pgd_two_exact_steps(noise):
    w, _ = run(AntiPGD, 2, lr=LR, sigma=SIGMA, noise=noise, generator=generator(7))
    xi1, xi2 = draws(noise, 2)
    w1 = W0 - LR * A * W0 + xi1
    w2 = w1 - LR * A * w1 + (xi2 - xi1)
    torch.testing.assert_close(w, w2, rtol=0, atol=1e-14)


@pytest.mark.parametrize("noise", ["gaussian", "bernoulli"])
def test_anti_pgd_cumulative_noise_telescopes_to_last_draw(noise):
    # With lr = 0 the iterate moves by the injected noise alone: the sum of increments is xi_n.
    n = 25
    w, opt = run(AntiPGD, n, lr=0.0, sigma=SIGMA, noise=noise, generator=generator(7))
    xi_n = draws(noise, n)[-1]
    torch.testing.assert_close(w - W0, xi_n, rtol=0, atol=1e-13)
    # ... and the optimizer keeps exactly that xi_n in its per-parameter state (and state_dict).
    torch.testing.assert_close(next(iter(opt.state.values()))["xi"], xi_n, rtol=0, atol=0)
    assert "xi" in opt.state_dict()["state"][0]
    # PGD with the same draws accumulates all of them instead (a random walk).
    w_pgd, _ = run(PGD, n, lr=0.0, sigma=SIGMA, noise=noise, generator=generator(7))
    torch.testing.assert_close(w_pgd - W0, sum(draws(noise, n)), rtol=0, atol=1e-13)


def test_setting_sigma_to_zero_removes_anti_pgd_noise():
    w = W0.clone().requires_grad_(True)
    opt = AntiPGD([w], lr=0.0, sigma=SIGMA, generator=generator(1))
    for _ in range(10):
        opt.zero_grad()
        quadratic(w).backward()
        opt.step()
    assert not torch.allclose(w.detach(), W0)
    opt.param_groups[0]["sigma"] = 0.0
    for _ in range(3):  # the first step takes back xi_n; the later ones add nothing
        opt.zero_grad()
        quadratic(w).backward()
        opt.step()
        torch.testing.assert_close(w.detach(), W0, rtol=0, atol=1e-14)


def test_zero_sigma_is_gd_exactly():
    w_gd, _ = run(GD, 5, lr=LR, momentum=0.5)
    for cls in (PGD, AntiPGD):
        w, _ = run(cls, 5, lr=LR, sigma=0.0, momentum=0.5, generator=generator(0))
        torch.testing.assert_close(w, w_gd, rtol=0, atol=0)


def test_momentum_step_then_noise():
    # Two steps of heavy ball (buffer b1 = g0, b2 = 0.9 b1 + g1), each followed by PGD's noise.
    w, _ = run(PGD, 2, lr=LR, sigma=SIGMA, momentum=0.9, generator=generator(7))
    xi1, xi2 = draws("gaussian", 2)
    g0 = A * W0
    w1 = W0 - LR * g0 + xi1
    w2 = w1 - LR * (0.9 * g0 + A * w1) + xi2
    torch.testing.assert_close(w, w2, rtol=0, atol=1e-14)


def test_batched_seeds_get_independent_noise():
    w = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    opt = AntiPGD([w], lr=LR, sigma=1.0, generator=generator(0))
    (w**2).sum().backward()
    opt.step()
    rows = w.detach()
    assert all(not torch.equal(rows[i], rows[j]) for i in range(4) for j in range(i + 1, 4))


@pytest.mark.parametrize("cls", [PGD, AntiPGD])
def test_argument_validation(cls):
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="lr"):
        cls([w], lr=-0.1, sigma=0.1)
    with pytest.raises(ValueError, match="sigma"):
        cls([w], lr=0.1, sigma=-1.0)
    with pytest.raises(ValueError, match="distribution"):
        cls([w], lr=0.1, sigma=0.1, noise="uniform")
    with pytest.raises(ValueError, match="momentum"):
        cls([w], lr=0.1, sigma=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="sigma"):
        cls([{"params": [w], "sigma": -0.2}], lr=0.1, sigma=0.1)
    with pytest.raises(ValueError, match="lr"):
        GD([w], lr=float("nan"))
    with pytest.raises(ValueError, match="distribution"):
        NoiseInjection(0.1, "laplace")


def test_stop_noise_sets_every_noisy_group_to_zero_and_leaves_gd_alone():
    w, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = AntiPGD([{"params": [w]}, {"params": [b], "sigma": 0.5}], lr=0.1, sigma=0.2)
    stop_noise(opt)
    assert [group["sigma"] for group in opt.param_groups] == [0.0, 0.0]
    gd = GD([w], lr=0.1)
    stop_noise(gd)                      # no sigma to stop: nothing is added
    assert "sigma" not in gd.param_groups[0]


def test_stopped_noise_does_not_advance_the_generator():
    g = generator(3)
    before = g.get_state()
    w = W0.clone().requires_grad_(True)
    opt = PGD([w], lr=LR, sigma=0.0, generator=g)
    quadratic(w).backward()
    opt.step()
    assert torch.equal(g.get_state(), before)
