"""GFS sharpness: the closed form for scalar networks against depth 2 by hand and against a
numerical rollout of the flow; the rollout's own contract (per-model stopping, tolerance)."""

from __future__ import annotations

import math

import pytest
import torch

from repro import generator
from repro.metrics import gradient_flow_solution, scalar_gfs_point, scalar_gfs_sharpness
from repro.problems import ScalarNetwork

F64 = torch.float64


def test_depth_two_by_hand():
    # Balance s = w1^2 - w2^2 is kept; on w1 w2 = y: (w1^2 + w2^2)^2 = s^2 + 4 y^2, and the
    # sharpness there is |grad f|^2 = w1^2 + w2^2 = sqrt(s^2 + 4 y^2).
    w = torch.tensor([[2.0, 0.5], [3.0, 1.0], [0.2, -0.1]], dtype=F64)
    y = 1.5
    s = w[:, 0] ** 2 - w[:, 1] ** 2
    torch.testing.assert_close(scalar_gfs_sharpness(w, y), (s**2 + 4 * y**2).sqrt())
    point = scalar_gfs_point(w, y)
    torch.testing.assert_close(point.prod(-1), torch.full((3,), y, dtype=F64))
    torch.testing.assert_close(point[:, 0] ** 2 - point[:, 1] ** 2, s)


def test_at_a_minimum_nothing_moves():
    w = torch.tensor([2.0, 0.25, 4.0], dtype=F64)            # product 2
    torch.testing.assert_close(scalar_gfs_point(w, 2.0), w)
    net = ScalarNetwork(3, target=2.0)
    assert scalar_gfs_sharpness(w, 2.0).item() == pytest.approx(net.sharpness(w).item())


def test_balanced_point_sharpness():
    # all balances zero: w_i = y^(1/D), phi = D y^(2 - 2/D)
    for D in (2, 3, 5):
        w = torch.full((D,), 0.7, dtype=F64)
        assert scalar_gfs_sharpness(w, 3.0).item() == pytest.approx(D * 3.0 ** (2 - 2 / D))


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_closed_form_equals_rollout(depth):
    net = ScalarNetwork(depth, target=1.2)
    w = torch.exp(0.4 * torch.randn(5, depth, generator=generator(depth), dtype=F64))
    w[0, 0] = -w[0, 0]                       # a negative product: the smallest weight flips sign
    flow = gradient_flow_solution(net.loss, w, step=2e-3, tol=1e-26, max_steps=50_000)
    assert bool(flow.converged.all())
    torch.testing.assert_close(flow.params, scalar_gfs_point(w, 1.2), rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(net.sharpness(flow.params), scalar_gfs_sharpness(w, 1.2),
                               rtol=1e-8, atol=1e-8)


def test_rollout_stops_each_model_on_its_own():
    # L_s(w) = a_s w^2 / 2: Euler multiplies w by (1 - h a_s); the steps to reach L < tol are known
    a = torch.tensor([1.0, 4.0], dtype=F64)
    w0 = torch.ones(2, 1, dtype=F64)
    h, tol = 0.05, 1e-6
    flow = gradient_flow_solution(lambda w: 0.5 * a * (w[:, 0] ** 2), w0, step=h, tol=tol,
                                  method="euler")
    for s in range(2):
        # smallest n with a/2 (1 - h a)^(2n) < tol
        n = math.ceil(math.log(2 * tol / a[s].item()) / (2 * math.log(1 - h * a[s].item())))
        assert flow.steps[s].item() in (n, n + 1) and flow.converged[s]
        assert flow.time[s].item() == pytest.approx(flow.steps[s].item() * h)
    torch.testing.assert_close(flow.params[:, 0], (1 - h * a) ** flow.steps.to(F64))


def test_rollout_on_a_list_of_parameters_and_not_converged():
    params = [torch.ones(3, dtype=F64), torch.ones(2, dtype=F64)]
    flow = gradient_flow_solution(lambda ps: sum((p**2).sum() for p in ps), params, step=0.01,
                                  tol=1e-30, max_steps=10, method="euler")
    assert isinstance(flow.params, list) and not bool(flow.converged)
    assert flow.steps.item() == 10
    torch.testing.assert_close(flow.params[0], torch.full((3,), 0.98**10, dtype=F64))
    assert params[0].eq(1).all()             # the input is not modified


def test_bad_arguments():
    with pytest.raises(ValueError):
        gradient_flow_solution(lambda w: (w**2).sum(), torch.ones(2), step=0.0, tol=1e-3)
    with pytest.raises(ValueError):
        gradient_flow_solution(lambda w: (w**2).sum(), torch.ones(2), step=0.1, tol=1e-3,
                               method="rk45")
    with pytest.raises(ValueError):
        scalar_gfs_sharpness(torch.ones(3), 0.0)
