"""Family tests over ``repro.optim.OPTIMIZERS`` (in the manner of optax's contrib/_common_test.py):
every registered optimizer is stepped on the same quadratic and must

(a) with sigma = 0 (the noise optimizers) equal GD step for step, exactly;
(b) survive a state_dict round trip: saved mid-run and loaded into a fresh optimizer, it
    continues exactly as the uninterrupted run;
(c) (the per-run optimizers) with S runs equal S separate single-run optimizers;
(d) (the per-run rules) follow their formula, written out by hand here (momentum, AdaGrad, Adam
    with bias correction), and agree with torch's own implementation of the same rule.

A registered optimizer without a case below fails ``test_every_optimizer_has_a_case``.
"""

from __future__ import annotations

import io
import math

import pytest
import torch

from repro import generator
from repro.optim import GD, OPTIMIZERS, PGD, SAM, AntiPGD, NoisyGD, PerRun, make

S, D = 3, 4
LRS = torch.tensor([0.1, 0.05, 0.2], dtype=torch.float64)   # one step size per run
# one curvature per run, so that mixing up runs cannot go unnoticed
CURV = torch.tensor([[1.0, 2.0, 3.0, 0.5], [0.3, 1.0, 4.0, 2.0], [2.0, 0.1, 1.0, 1.5]],
                    dtype=torch.float64)
W_START = torch.tensor([[0.5, -1.0, 2.0, 0.1], [1.5, 0.2, -0.7, 1.0], [-2.0, 0.4, 0.3, -1.2]],
                       dtype=torch.float64)
STEPS, CUT = 12, 5


def loss_fn(w, curv=CURV):
    """Independent quadratics, one per row: sum_s 1/2 sum_i curv_si w_si^2 (gradient curv * w)."""
    return 0.5 * (curv * w**2).sum()


# name -> keyword arguments of the constructor (without params); per-run ones take a tensor lr
CASES = {
    "gd": dict(lr=0.1, momentum=0.5),
    "pgd": dict(lr=0.1, sigma=0.05, momentum=0.5),
    "anti_pgd": dict(lr=0.1, sigma=0.05, momentum=0.5),
    "per_run_gd": dict(lr=LRS),
    "per_run_momentum": dict(lr=LRS, momentum=0.8),
    "per_run_adagrad": dict(lr=LRS, eps=1e-10),
    "per_run_adam": dict(lr=LRS, betas=(0.9, 0.99), eps=1e-8),
    "per_run_group_rmsprop": dict(lr=LRS, alpha=0.9, eps=1e-4),
    "subgradient": dict(lr=LRS, decay=0.8),
    "sam": dict(lr=0.1, rho=0.05, momentum=0.5),
    "asam": dict(lr=0.1, rho=0.5, momentum=0.5),
    "usam": dict(lr=0.1, rho=0.05, momentum=0.5),
}
NOISY = [name for name, cls in OPTIMIZERS.items() if issubclass(cls, NoisyGD)]
PER_RUN = [name for name, cls in OPTIMIZERS.items() if issubclass(cls, PerRun)]


def build(name, params, seed=0, **overrides):
    kwargs = {**CASES[name], **overrides}
    if issubclass(OPTIMIZERS[name], NoisyGD):
        kwargs.setdefault("generator", generator(seed))
    return make(name, params, **kwargs)


def step(opt, w, curv=CURV):
    if isinstance(opt, SAM):      # the SAM family re-evaluates the loss: a closure-based step
        opt.step(lambda: loss_fn(w, curv).backward())
        return
    opt.zero_grad()
    loss_fn(w, curv).backward()
    opt.step()


def trajectory(opt, w, steps, curv=CURV):
    out = []
    for _ in range(steps):
        step(opt, w, curv)
        out.append(w.detach().clone())
    return out


def saved(state_dict):
    """A state dict as it comes back from disk (torch.save, torch.load): no tensor is shared with
    the optimizer that wrote it (``load_state_dict`` keeps the tensors it is given)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)


def test_every_optimizer_has_a_case():
    assert set(CASES) == set(OPTIMIZERS)
    assert NOISY and PER_RUN


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_make_builds_the_registered_class(name):
    w = W_START.clone().requires_grad_(True)
    assert type(build(name, [w])) is OPTIMIZERS[name]


def test_make_builds_each_method():
    w = torch.zeros(2, requires_grad=True)
    assert type(make("gd", [w], lr=0.1)) is GD
    assert type(make("pgd", [w], lr=0.1, sigma=0.1)) is PGD
    assert type(make("anti_pgd", [w], lr=0.1, sigma=0.1)) is AntiPGD
    # GD ignores the noise arguments, so one call serves a loop over the methods
    assert type(make("gd", [w], lr=0.1, sigma=0.1, noise="bernoulli", generator=None)) is GD
    with pytest.raises(ValueError, match="unknown optimizer"):
        make("adam", [w], lr=0.1)


# (a) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NOISY)
@pytest.mark.parametrize("noise", ["gaussian", "bernoulli"])
def test_zero_noise_is_gd_step_for_step(name, noise):
    w_gd, w = (W_START.clone().requires_grad_(True) for _ in range(2))
    gd = GD([w_gd], lr=0.1, momentum=0.5)
    opt = build(name, [w], sigma=0.0, noise=noise)
    for t in range(STEPS):
        step(gd, w_gd)
        step(opt, w)
        torch.testing.assert_close(w.detach(), w_gd.detach(), rtol=0, atol=0, msg=f"step {t}")


@pytest.mark.parametrize("name", NOISY)
def test_noise_stopped_mid_run_continues_as_gd(name):
    # PGD stays where its noise left it; Anti-PGD takes back its last draw once, then both are GD
    w = W_START.clone().requires_grad_(True)
    opt = build(name, [w])
    trajectory(opt, w, CUT)
    opt.param_groups[0]["sigma"] = 0.0
    step(opt, w)
    w_gd = w.detach().clone().requires_grad_(True)
    gd = GD([w_gd], lr=0.1, momentum=0.5)
    gd.load_state_dict(saved(opt.state_dict()))      # the momentum buffer carries over
    gd.param_groups[0].pop("sigma")
    for _ in range(3):
        step(gd, w_gd)
        step(opt, w)
    torch.testing.assert_close(w.detach(), w_gd.detach(), rtol=0, atol=0)


# (b) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_the_run(name):
    w_ref = W_START.clone().requires_grad_(True)
    ref = trajectory(build(name, [w_ref], seed=3), w_ref, STEPS)

    w = W_START.clone().requires_grad_(True)
    opt = build(name, [w], seed=3)
    first = trajectory(opt, w, CUT)
    saved_w, state = w.detach().clone(), saved(opt.state_dict())
    # the generator is the caller's, not part of the optimizer's state: it is carried alongside
    noise_state = opt.noise.generator.get_state() if isinstance(opt, NoisyGD) else None
    del opt, w

    w2 = saved_w.clone().requires_grad_(True)
    fresh = build(name, [w2], seed=999)
    if noise_state is not None:
        fresh.noise.generator.set_state(noise_state)
    fresh.load_state_dict(state)
    rest = trajectory(fresh, w2, STEPS - CUT)
    for t, (a, b) in enumerate(zip(first + rest, ref)):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"step {t}")


@pytest.mark.parametrize("name", ["anti_pgd"])
def test_anti_pgd_needs_its_saved_xi(name):
    # the round trip above is not vacuous: without the loaded state (xi_n), Anti-PGD's next
    # increment would not take back xi_n and the run would differ
    w = W_START.clone().requires_grad_(True)
    opt = build(name, [w], seed=3)
    trajectory(opt, w, CUT)
    state = opt.noise.generator.get_state()
    w_ok, w_bad = (w.detach().clone().requires_grad_(True) for _ in range(2))
    ok, bad = build(name, [w_ok]), build(name, [w_bad])
    ok.noise.generator.set_state(state)
    bad.noise.generator.set_state(state)
    ok.load_state_dict(saved(opt.state_dict()))
    step(ok, w_ok)
    step(bad, w_bad)
    assert not torch.equal(w_ok, w_bad)


# (c) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PER_RUN)
def test_s_runs_equal_s_single_run_optimizers(name):
    w = W_START.clone().requires_grad_(True)
    batched = trajectory(build(name, [w]), w, STEPS)
    for s in range(S):
        v = W_START[s:s + 1].clone().requires_grad_(True)
        alone = trajectory(build(name, [v], lr=LRS[s:s + 1]), v, STEPS, CURV[s:s + 1])
        for t, (a, b) in enumerate(zip(batched, alone)):
            torch.testing.assert_close(a[s:s + 1], b, rtol=0, atol=0, msg=f"run {s}, step {t}")


# (d) -------------------------------------------------------------------------------------------

def reference_rule(name, w0, curv, lr, steps, **kw):
    """The update rule written out by hand for one run (plain tensors, no optimizer)."""
    w = w0.clone()
    m = torch.zeros_like(w)
    v = torch.zeros_like(w)
    out = []
    for t in range(1, steps + 1):
        g = curv * w
        if name == "per_run_gd":
            d = g
        elif name == "per_run_momentum":
            m = kw["momentum"] * m + g if t > 1 else g.clone()
            d = m
        elif name == "per_run_adagrad":
            v = v + g * g
            d = g / (v.sqrt() + kw["eps"])
        elif name == "per_run_adam":
            b1, b2 = kw["betas"]
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            d = m_hat / (v_hat.sqrt() + kw["eps"])
        elif name == "per_run_group_rmsprop":
            a = kw["alpha"]
            v = a * v + (1 - a) * (g * g).sum()          # one number: the run's squared norm
            d = g / ((v / (1 - a**t)).sqrt() + kw["eps"])
        elif name == "subgradient":
            d = kw["decay"] ** (t - 1) * g               # step lr * decay^(t-1)
        else:
            raise AssertionError(f"no reference for {name}")
        w = w - lr * d
        out.append(w.clone())
    return out


def torch_reference(name, params, lr, **kw):
    """torch's own optimizer for the same rule, for one run (None: torch has no such rule)."""
    if name in ("per_run_group_rmsprop", "subgradient"):
        return None
    if name == "per_run_gd":
        return torch.optim.SGD(params, lr=lr)
    if name == "per_run_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=kw["momentum"])
    if name == "per_run_adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=kw["eps"])
    return torch.optim.Adam(params, lr=lr, betas=kw["betas"], eps=kw["eps"])


@pytest.mark.parametrize("name", PER_RUN)
def test_per_run_rule_against_its_formula(name):
    kw = {k: v for k, v in CASES[name].items() if k != "lr"}
    w = W_START.clone().requires_grad_(True)
    got = trajectory(build(name, [w]), w, STEPS)
    for s in range(S):
        lr = float(LRS[s])
        by_hand = reference_rule(name, W_START[s], CURV[s], lr, STEPS, **kw)
        v = W_START[s].clone().requires_grad_(True)
        reference = torch_reference(name, [v], lr, **kw)
        by_torch = trajectory(reference, v, STEPS, CURV[s]) if reference else None
        for t in range(STEPS):
            torch.testing.assert_close(got[t][s], by_hand[t], rtol=1e-13, atol=1e-15,
                                       msg=f"{name}, run {s}, step {t + 1}: formula")
            if by_torch is not None:
                torch.testing.assert_close(got[t][s], by_torch[t], rtol=1e-12, atol=1e-14,
                                           msg=f"{name}, run {s}, step {t + 1}: torch.optim")


def test_adam_bias_correction_makes_the_first_step_lr_sized():
    # with bias correction the first Adam step is lr * g / (|g| + eps), i.e. lr * sign(g) for any
    # gradient scale; without it, it would be lr * (1 - b1) / sqrt(1 - b2) * sign(g), 1.58 lr here
    w = (1e3 * W_START).clone().requires_grad_(True)
    opt = build("per_run_adam", [w], betas=(0.5, 0.9))
    step(opt, w)
    moved = (1e3 * W_START - w.detach()).abs()
    torch.testing.assert_close(moved, LRS[:, None].expand(S, D).clone(), rtol=1e-9, atol=0)
    assert not math.isclose((1 - 0.5) / math.sqrt(1 - 0.9), 1.0, rel_tol=0.1)


def test_group_rmsprop_shares_one_second_moment_across_a_runs_parameters():
    """The official rule of Arora et al. (2019): both factors of a run are scaled by the norm of
    the run's whole gradient, so splitting a run's parameters in two changes nothing."""
    a, b = W_START[:, :2].clone().requires_grad_(True), W_START[:, 2:].clone().requires_grad_(True)
    split = build("per_run_group_rmsprop", [a, b])
    w = W_START.clone().requires_grad_(True)
    whole = build("per_run_group_rmsprop", [w])
    for _ in range(STEPS):
        split.zero_grad()
        loss_fn(torch.cat([a, b], 1)).backward()
        split.step()
        step(whole, w)
    torch.testing.assert_close(torch.cat([a, b], 1).detach(), w.detach(), rtol=1e-13, atol=1e-15)
