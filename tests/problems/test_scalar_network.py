"""ScalarNetwork: the closed forms against hand-computed values and autograd, and the conservation
law it is built around (gradient flow keeps the balances; one GD step scales them by the factor of
``gd_balance_factor``)."""

from __future__ import annotations

import pytest
import torch

from repro import generator
from repro.metrics import hessian
from repro.problems import PROBLEMS, ScalarNetwork

F64 = torch.float64


def test_registered():
    assert PROBLEMS["scalar_network"] is ScalarNetwork


def test_depth_two_by_hand():
    # f = 2 * 3 = 6, y = 1: residual 5; grad = 5 * (3, 2); H = 5 [[0, 1], [1, 0]] + (3, 2)(3, 2)^T
    net = ScalarNetwork(2, target=1.0)
    w = torch.tensor([2.0, 3.0], dtype=F64)
    assert net.loss(w).item() == pytest.approx(12.5)
    torch.testing.assert_close(net.gradient(w), torch.tensor([15.0, 10.0], dtype=F64))
    H = torch.tensor([[9.0, 6.0 + 5.0], [6.0 + 5.0, 4.0]], dtype=F64)
    torch.testing.assert_close(net.hessian(w), H)
    # eigenvalues of [[9, 11], [11, 4]]: (13 +- sqrt(25 + 484)) / 2
    assert net.sharpness(w).item() == pytest.approx((13 + 509**0.5) / 2)
    torch.testing.assert_close(net.balances(w), torch.tensor([4.0 - 9.0], dtype=F64))


def test_zero_weight_is_exact():
    # products without one or two weights, never by division: a zero weight is fine
    net = ScalarNetwork(3, target=2.0)
    w = torch.tensor([0.0, 1.5, -2.0], dtype=F64)
    torch.testing.assert_close(net.gradient(w), torch.tensor([2.0 * 3.0, 0.0, 0.0], dtype=F64))
    H = net.hessian(w)
    torch.testing.assert_close(H, hessian(net.loss, w))


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_closed_forms_match_autograd_batched(depth):
    net = ScalarNetwork(depth, target=-1.3)
    w = torch.randn(4, 3, depth, generator=generator(depth), dtype=F64)
    flat = w.reshape(-1, depth)
    grads = torch.func.vmap(torch.func.grad(net.loss))(flat)
    hess = torch.func.vmap(torch.func.hessian(net.loss))(flat)
    torch.testing.assert_close(net.gradient(w).reshape(-1, depth), grads, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(net.hessian(w).reshape(-1, depth, depth), hess, rtol=1e-12,
                               atol=1e-12)
    assert net.loss(w).shape == (4, 3)
    torch.testing.assert_close(net.sharpness(w).reshape(-1),
                               torch.linalg.eigvalsh(hess)[:, -1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("depth", [2, 4])
def test_one_gd_step_scales_balances_by_the_factor(depth):
    net = ScalarNetwork(depth, target=1.0)
    w = torch.randn(6, depth, generator=generator(10 + depth), dtype=F64)
    lr = torch.linspace(0.05, 0.4, 6, dtype=F64)
    after = w - lr[:, None] * net.gradient(w)
    before_pairs = w[..., :, None] ** 2 - w[..., None, :] ** 2
    after_pairs = after[..., :, None] ** 2 - after[..., None, :] ** 2
    torch.testing.assert_close(after_pairs, before_pairs * net.gd_balance_factor(w, lr),
                               rtol=1e-10, atol=1e-12)


def test_depth_two_factor_is_one_minus_lr_residual_squared():
    net = ScalarNetwork(2, target=1.0)
    w = torch.tensor([[1.5, 0.4]], dtype=F64)
    r = (w.prod(-1) - 1.0).item()
    assert net.gd_balance_factor(w, 0.3)[0, 0, 1].item() == pytest.approx(1 - 0.09 * r**2)


def test_bad_arguments():
    with pytest.raises(ValueError):
        ScalarNetwork(1)
    with pytest.raises(ValueError):
        ScalarNetwork(3, target=0.0)
    with pytest.raises(ValueError):
        ScalarNetwork(3).loss(torch.ones(2))
