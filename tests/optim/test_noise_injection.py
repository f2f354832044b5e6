"""repro.optim: exact updates of GD, PGD and Anti-PGD on a tiny quadratic, and argument checks."""

import pytest
import torch

from repro import generator
from repro.optim import GD, PGD, AntiPGD, NoiseInjection, make

A = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
W0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
LR, SIGMA = 0.1, 0.3


def quadratic(w):
    return 0.5 * (A * w**2).sum()  # gradient A * w


def run(opt_cls, steps, w0=W0, **kwargs):
    w = w0.clone().requires_grad_(True)
    opt = opt_cls([w], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        quadratic(w).backward()
        opt.step()
    return w.detach(), opt


def draws(noise, n, shape=W0.shape, seed=7, sigma=SIGMA):
    """The n noise draws that a generator seeded with ``seed`` produces, by hand."""
    g = generator(seed)
    out = []
    for _ in range(n):
        if noise == "gaussian":
            out.append(sigma * torch.randn(shape, generator=g, dtype=torch.float64))
        else:
            out.append(sigma * (2.0 * torch.randint(0, 2, shape, generator=g) - 1).double())
    return out


def test_gd_one_exact_step():
    w, _ = run(GD, 1, lr=LR)
    torch.testing.assert_close(w, W0 - LR * A * W0, rtol=0, atol=1e-15)


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


def test_make_builds_each_method():
    w = torch.zeros(2, requires_grad=True)
    assert type(make("gd", [w], lr=0.1)) is GD
    assert type(make("pgd", [w], lr=0.1, sigma=0.1)) is PGD
    assert type(make("anti_pgd", [w], lr=0.1, sigma=0.1)) is AntiPGD
    with pytest.raises(ValueError, match="unknown method"):
        make("adam", [w], lr=0.1)


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


def tiny_classification(seed=0, n=64):
    g = generator(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return {"x": x, "y": y, "x_test": x[:16], "y_test": y[:16]}


def test_train_loop_on_a_batched_ensemble_with_noise_stop():
    from repro.models import EnsembleMLP
    from repro.train import train

    model = EnsembleMLP(3, [4, 8, 3], generator=generator(0))
    opt = AntiPGD(model.parameters(), lr=0.5, sigma=0.01, generator=generator(1))
    hist = train(model, opt, tiny_classification(), epochs=6, batch_size=16, noise_stop_epoch=2,
                 eval_every=3, generator=generator(2), progress=False)
    assert hist["epoch"] == [3, 6]
    assert all(len(v) == 3 for v in hist["train_loss"] + hist["test_accuracy"])
    assert opt.param_groups[0]["sigma"] == 0.0
    assert hist["train_loss"][-1] != hist["train_loss"][0]


def test_train_loop_raises_diverged():
    from repro import Diverged
    from repro.models import MLP
    from repro.train import train

    model = MLP([4, 8, 3], generator=generator(0))
    with pytest.raises(Diverged, match="step"):
        train(model, GD(model.parameters(), lr=1e30), tiny_classification(), epochs=5,
              progress=False)


def test_per_run_gd_is_gd_with_each_runs_own_step_size():
    from repro.optim import PerRunGD
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(3, 4, 2, generator=g)
    target = torch.randn(3, 4, 2, generator=g)
    lrs = torch.tensor([0.1, 0.01, 0.5])
    w = w0.clone().requires_grad_(True)
    opt = PerRunGD([w], lrs)
    for _ in range(5):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
    for s in range(3):                       # each run alone, with torch's own SGD
        v = w0[s].clone().requires_grad_(True)
        ref = torch.optim.SGD([v], lr=float(lrs[s]))
        for _ in range(5):
            ref.zero_grad()
            ((v - target[s]) ** 2).sum().backward()
            ref.step()
        torch.testing.assert_close(w[s].detach(), v.detach())
    with pytest.raises(ValueError):
        PerRunGD([torch.zeros(2, 3, requires_grad=True)], torch.tensor([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError):
        PerRunGD([torch.zeros(2, 3, requires_grad=True)], torch.tensor([0.1, -1.0]))
