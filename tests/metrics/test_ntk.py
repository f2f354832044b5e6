"""repro.metrics.ntk: the empirical NTK against the closed form of a two-layer network and of a
linear model, the centred alignment by hand and at its extremes, kernel regression against a
direct solve and against the limit of linearised gradient descent."""

import pytest
import torch

from repro import generator
from repro.metrics import (
    centered_alignment,
    empirical_ntk,
    kernel_regression,
    kernel_regression_mse,
    run_batched_ntk,
)
from repro.models import TwoLayerNet

F64 = torch.float64


def test_linear_model_kernel_is_the_gram_matrix():
    x = torch.randn(5, 3, generator=generator(0), dtype=F64)
    theta = {"v": torch.randn(3, generator=generator(1), dtype=F64)}
    K = empirical_ntk(lambda p, x: x @ p["v"], theta, x)
    torch.testing.assert_close(K, x @ x.T)
    x2 = torch.randn(2, 3, generator=generator(2), dtype=F64)
    torch.testing.assert_close(empirical_ntk(lambda p, x: x @ p["v"], theta, x, x2), x @ x2.T)


def test_two_layer_kernel_is_the_closed_form_per_run():
    # f = alpha / N sum_j phi(w_j . x) with frozen readouts a_j:
    # K(x, x') = (alpha a / N)^2 sum_j a_j^2 phi'(w_j . x) phi'(w_j . x') x . x'
    eps = 0.4
    net = TwoLayerNet(3, 6, runs=2, scaling="mean_field", output_scale=1.5, activation="poly",
                      eps=eps, train_readout=False, generator=generator(3))
    x = torch.randn(4, 3, generator=generator(4), dtype=F64)
    x2 = torch.randn(5, 3, generator=generator(5), dtype=F64)
    K = run_batched_ntk(net, x, x2)
    assert K.shape == (2, 4, 5)
    for s in range(2):
        d1 = 1 + eps * x @ net.w[s].T           # phi'(z) = 1 + eps z, (m, N)
        d2 = 1 + eps * x2 @ net.w[s].T
        expected = (1.5 / 6) ** 2 * ((d1 * net.a[s]) @ (d2 * net.a[s]).T) * (x @ x2.T)
        torch.testing.assert_close(K[s], expected.detach())
    torch.testing.assert_close(run_batched_ntk(net, x)[1], run_batched_ntk(net, x, x)[1])


def test_per_run_inputs():
    net = TwoLayerNet(3, 4, runs=2, activation="tanh", generator=generator(6))
    x = torch.randn(2, 5, 3, generator=generator(7), dtype=F64)
    K = run_batched_ntk(net, x)
    for s in range(2):
        shared = run_batched_ntk(net, x[s])[s]
        torch.testing.assert_close(K[s], shared)


def test_alignment_by_hand_and_extremes():
    y = torch.tensor([1.0, 2.0, 6.0], dtype=F64)
    yc = y - 3.0
    one = torch.tensor(1.0, dtype=F64)
    torch.testing.assert_close(centered_alignment(torch.outer(y, y), y), one)
    K = torch.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]], dtype=F64)
    H = torch.eye(3, dtype=F64) - 1 / 3
    Kc = H @ K @ H
    expected = (yc @ Kc @ yc) / (torch.linalg.norm(Kc) * (yc @ yc))
    torch.testing.assert_close(centered_alignment(K, y), expected)
    # a kernel orthogonal to the labels after centring has alignment 0
    u = torch.tensor([1.0, -2.0, 1.0], dtype=F64)   # any vector; project out y_c, then centre it
    v = u - (u @ yc) / (yc @ yc) * yc
    v = v - v.mean()
    assert float(centered_alignment(torch.outer(v, v), y)) == pytest.approx(0.0, abs=1e-12)
    batch = centered_alignment(torch.stack([K, 2 * K]), torch.stack([y, y]))
    torch.testing.assert_close(batch, torch.stack([expected, expected]))


def test_kernel_regression_solves_and_interpolates():
    x = torch.randn(6, 2, generator=generator(8), dtype=F64)
    xt = torch.randn(3, 2, generator=generator(9), dtype=F64)
    y = torch.randn(6, generator=generator(10), dtype=F64)

    def k(a, b):
        return torch.exp(-torch.cdist(a, b) ** 2)

    pred = kernel_regression(k(x, x), y, k(xt, x))
    torch.testing.assert_close(pred, k(xt, x) @ torch.linalg.inv(k(x, x)) @ y)
    torch.testing.assert_close(kernel_regression(k(x, x), y, k(x, x)), y)   # interpolates
    yt = torch.randn(3, generator=generator(11), dtype=F64)
    torch.testing.assert_close(kernel_regression_mse(k(x, x), y, k(xt, x), yt),
                               ((pred - yt) ** 2).mean())
    ridge = kernel_regression(k(x, x), y, k(xt, x), ridge=0.5)
    torch.testing.assert_close(ridge, k(xt, x) @ torch.linalg.solve(k(x, x) + 0.5 * torch.eye(6,
                               dtype=F64), y))
