"""repro.models.linearized: f_lin is the first-order Taylor expansion, exact for a linear model,
equal to the network at theta_0, differentiable; trained by GD it converges to kernel regression
with K_0."""

import torch

from repro import generator
from repro.metrics import kernel_regression, run_batched_ntk
from repro.models import TwoLayerNet, linearize, linearize_module

F64 = torch.float64


def net(eps=0.5):
    return TwoLayerNet(3, 5, runs=2, scaling="mean_field", activation="poly", eps=eps,
                       train_readout=False, generator=generator(0))


def test_equals_the_network_at_theta0_and_is_a_taylor_expansion():
    model = net()
    x = torch.randn(4, 3, generator=generator(1), dtype=F64)
    f_lin, params = linearize_module(model)
    torch.testing.assert_close(f_lin(params, x), model(x))
    # phi(z) = z + eps z^2 / 2: the expansion misses exactly (eps / 2) (dw . x)^2 per neuron
    dw = 1e-2 * torch.randn(2, 5, 3, generator=generator(2), dtype=F64)
    moved = {"w": params["w"].detach() + dw}
    with torch.no_grad():
        model.w.add_(dw)
        exact = model(x)
    gap = exact - f_lin(moved, x)
    expected = 0.5 / 5 * (0.5 * torch.einsum("snd,md->smn", dw, x) ** 2 * model.a[:, None]).sum(-1)
    torch.testing.assert_close(gap, expected)


def test_exact_for_a_linear_model_and_differentiable():
    x = torch.randn(4, 3, generator=generator(3), dtype=F64)

    def f(p, x):
        return x @ p["v"] + 1.0

    f_lin = linearize(f, {"v": torch.zeros(3, dtype=F64)})
    v = torch.randn(3, generator=generator(4), dtype=F64, requires_grad=True)
    out = f_lin({"v": v}, x)
    torch.testing.assert_close(out, f({"v": v}, x))
    (g,) = torch.autograd.grad(out.sum(), v)
    torch.testing.assert_close(g, x.sum(0))


def test_a_gradient_step_moves_the_outputs_by_the_k0_kernel():
    # for a linear model in theta, one GD step on L = |f - y|^2 / 2 moves the outputs by exactly
    # -lr K_0 (f - y), at the training and at the test points: kernel gradient descent, whose
    # limit is kernel regression with K_0
    model = net(eps=1.0)
    x = torch.randn(6, 3, generator=generator(5), dtype=F64)
    xt = torch.randn(4, 3, generator=generator(6), dtype=F64)
    y = torch.randn(6, generator=generator(7), dtype=F64)
    K0, K0t = run_batched_ntk(model, x), run_batched_ntk(model, xt, x)
    f_lin, params = linearize_module(model)
    with torch.no_grad():
        params["w"].add_(0.1 * torch.randn(2, 5, 3, generator=generator(8), dtype=F64))
    lr = 0.3
    for _ in range(3):
        f, ft = f_lin(params, x), f_lin(params, xt)
        r = (f - y).detach()
        (g,) = torch.autograd.grad(((f - y) ** 2).sum() / 2, params["w"])
        with torch.no_grad():
            params["w"] -= lr * g
            torch.testing.assert_close(f_lin(params, x) - f, -lr * (K0 @ r[..., None])[..., 0])
            torch.testing.assert_close(f_lin(params, xt) - ft, -lr * (K0t @ r[..., None])[..., 0])
    # and the fixed point of kernel gradient descent interpolates: kernel regression
    torch.testing.assert_close(kernel_regression(K0, y, K0), y.expand(2, 6))
