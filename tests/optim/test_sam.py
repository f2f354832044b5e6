"""repro.optim.sam: SAM, ASAM and USAM against their updates written out by hand on a quadratic,
per-run radii, m-sharpness, the batch-norm freeze and the argument checks."""

import io

import pytest
import torch

from repro.optim import ASAM, GD, OPTIMIZERS, SAM, USAM, frozen_batchnorm, make

from ._quadratic import LR, W0, A, quadratic

RHO = 0.05


def run(opt_cls, steps, w0=W0, **kwargs):
    w = w0.clone().requires_grad_(True)
    opt = opt_cls([w], **kwargs)

    def closure():
        loss = quadratic(w)
        loss.backward()
        return loss

    losses = [opt.step(closure) for _ in range(steps)]
    return w.detach(), opt, losses


def test_sam_two_steps_by_hand():
    # step 1: g = A w0 = (0.5, -2, 6), |g| = sqrt(0.25 + 4 + 36) = sqrt(40.25)
    g = A * W0
    eps = RHO * g / g.norm()
    w1 = W0 - LR * A * (W0 + eps)
    g = A * w1
    w2 = w1 - LR * A * (w1 + RHO * g / g.norm())
    got, _, losses = run(SAM, 2, lr=LR, rho=RHO)
    torch.testing.assert_close(got, w2, rtol=0, atol=1e-15)
    # the loss returned is the loss at w (first pass), here L(w1) on the second step
    torch.testing.assert_close(losses[1], quadratic(w1), rtol=0, atol=1e-15)
    # the first perturbation in numbers: eps = 0.05 (0.5, -2, 6) / 6.3443
    torch.testing.assert_close(eps, torch.tensor([0.0039405, -0.0157622, 0.0472866],
                                                 dtype=torch.float64), rtol=0, atol=1e-7)


def test_sam_with_momentum_by_hand():
    mu = 0.5
    w, v = W0.clone(), torch.zeros(3, dtype=torch.float64)
    for t in range(2):
        g = A * w
        g_sam = A * (w + RHO * g / g.norm())
        v = g_sam if t == 0 else mu * v + g_sam        # torch's heavy ball: v = mu v + g
        w = w - LR * v
    got, _, _ = run(SAM, 2, lr=LR, rho=RHO, momentum=mu)
    torch.testing.assert_close(got, w, rtol=0, atol=1e-15)


def test_asam_two_steps_by_hand():
    rho, eta = 0.5, 0.01
    w = W0.clone()
    for _ in range(2):
        g = A * w
        t = w.abs() + eta
        eps = rho * t * t * g / (t * g).norm()
        w = w - LR * A * (w + eps)
    got, _, _ = run(ASAM, 2, lr=LR, rho=rho, eta=eta)
    torch.testing.assert_close(got, w, rtol=0, atol=1e-15)


def test_usam_two_steps_by_hand():
    # eps = rho g, so each step is w - lr A (I + rho A) w
    w = W0.clone()
    for _ in range(2):
        w = w - LR * A * (w + RHO * A * w)
    got, _, _ = run(USAM, 2, lr=LR, rho=RHO)
    torch.testing.assert_close(got, w, rtol=0, atol=1e-15)


def test_rho_zero_is_the_base_optimizer_exactly():
    got, _, _ = run(SAM, 5, lr=LR, rho=0.0, momentum=0.9)
    w = W0.clone().requires_grad_(True)
    gd = GD([w], lr=LR, momentum=0.9)
    for _ in range(5):
        gd.zero_grad()
        quadratic(w).backward()
        gd.step()
    torch.testing.assert_close(got, w.detach(), rtol=0, atol=0)


def test_per_run_radii_are_independent_runs():
    curv = torch.tensor([[1.0, 2.0, 3.0], [0.5, 4.0, 1.0], [2.0, 1.0, 0.3]], dtype=torch.float64)
    w0 = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.2, -0.3], [-2.0, 0.5, 1.0]], dtype=torch.float64)
    rhos = torch.tensor([0.0, 0.05, 0.2], dtype=torch.float64)
    w = w0.clone().requires_grad_(True)
    opt = SAM([w], lr=LR, rho=rhos, per_run=True, momentum=0.5)
    for _ in range(3):
        opt.step(lambda: (0.5 * (curv * w**2).sum()).backward())
    for s in range(3):
        v = w0[s].clone().requires_grad_(True)
        alone = SAM([v], lr=LR, rho=float(rhos[s]), momentum=0.5)
        for _ in range(3):
            alone.step(lambda: (0.5 * (curv[s] * v**2).sum()).backward())
        torch.testing.assert_close(w.detach()[s], v.detach(), rtol=1e-14, atol=1e-15)


def test_m_sharpness_one_ascent_step_per_chunk_by_hand():
    # two examples, loss_i(w) = 1/2 sum a_i w^2; the batch loss is their mean
    a = torch.tensor([[1.0, 2.0, 3.0], [3.0, 0.5, 1.0]], dtype=torch.float64)
    w = W0.clone().requires_grad_(True)
    opt = SAM([w], lr=LR, rho=RHO, chunks=2)
    opt.step(lambda i: (0.5 * (a[i] * w**2).sum()).backward())
    update = torch.zeros(3, dtype=torch.float64)
    for i in range(2):
        g = a[i] * W0
        update += a[i] * (W0 + RHO * g / g.norm()) / 2
    torch.testing.assert_close(w.detach(), W0 - LR * update, rtol=0, atol=1e-15)
    # chunks = 1 on the same batch is a different step (one ascent direction for both)
    g = a.mean(0) * W0
    whole = W0 - LR * a.mean(0) * (W0 + RHO * g / g.norm())
    assert not torch.allclose(w.detach(), whole)


def bn_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(),
                               torch.nn.Linear(6, 3))


def test_batchnorm_keeps_the_statistics_of_the_first_pass():
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    net = bn_net()
    reference = bn_net()
    reference(x)                                   # one plain pass at the same weights
    opt = SAM(net.parameters(), lr=0.1, rho=0.5, model=net)
    opt.step(lambda: torch.nn.functional.cross_entropy(net(x), y).backward())
    bn, ref = net[1], reference[1]
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=0, atol=0)
    assert int(bn.num_batches_tracked) == 1 and bn.track_running_stats
    # without the model the perturbed pass updates them a second time
    naive = bn_net()
    opt = SAM(naive.parameters(), lr=0.1, rho=0.5)
    opt.step(lambda: torch.nn.functional.cross_entropy(naive(x), y).backward())
    assert int(naive[1].num_batches_tracked) == 2
    assert not torch.equal(naive[1].running_mean, ref.running_mean)


def test_frozen_batchnorm_still_normalises_with_batch_statistics():
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(2))
    net = bn_net()
    expected = net(x)                              # training mode: batch statistics
    after_one = net[1].running_mean.clone()
    assert not torch.equal(after_one, torch.zeros(6))     # the plain pass moved them
    with frozen_batchnorm(net):
        out = net(x)
        net(2 * x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(net[1].running_mean, after_one, rtol=0, atol=0)  # frozen: unmoved
    assert net[1].track_running_stats and int(net[1].num_batches_tracked) == 1
    with frozen_batchnorm(None):
        pass


def test_state_dict_round_trip_continues_the_run():
    ref, _, _ = run(SAM, 6, lr=LR, rho=RHO, momentum=0.5)
    w, opt, _ = run(SAM, 3, lr=LR, rho=RHO, momentum=0.5)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    got, _, _ = run(SAM, 0, w0=w, lr=LR, rho=RHO, momentum=0.5)
    v = w.clone().requires_grad_(True)
    fresh = SAM([v], lr=LR, rho=RHO, momentum=0.5)
    fresh.load_state_dict(torch.load(buffer))
    for _ in range(3):
        fresh.step(lambda: quadratic(v).backward())
    torch.testing.assert_close(v.detach(), ref, rtol=0, atol=0)


def test_registered_and_built_by_make():
    w = torch.zeros(2, requires_grad=True)
    for name, cls in (("sam", SAM), ("asam", ASAM), ("usam", USAM)):
        assert OPTIMIZERS[name] is cls
        opt = make(name, [w], lr=0.1, rho=0.05, momentum=0.9)
        assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.1
        assert opt.param_groups is opt.base.param_groups      # a schedule sees both
    opt = make("sam", [w], base=torch.optim.Adam, lr=0.01, rho=0.05)
    assert isinstance(opt.base, torch.optim.Adam)


def test_argument_checks():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="closure"):
        SAM([w], lr=0.1).step()
    with pytest.raises(ValueError, match="rho"):
        SAM([w], lr=0.1, rho=-0.1)
    with pytest.raises(ValueError, match="rho"):
        SAM([w], lr=0.1, rho=torch.tensor([0.1, 0.2]))          # a vector needs per_run=True
    with pytest.raises(ValueError, match="unknown base"):
        SAM([w], base="nope", lr=0.1)
    with pytest.raises(ValueError, match="base of SAM"):
        SAM([w], base=SAM, lr=0.1)
    with pytest.raises(ValueError, match="radii"):
        SAM([torch.zeros(3, 2, requires_grad=True)], lr=0.1, rho=torch.tensor([0.1, 0.2]),
            per_run=True)
    with pytest.raises(ValueError, match="chunks"):
        SAM([w], lr=0.1, chunks=0)
