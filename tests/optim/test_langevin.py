"""repro.optim.langevin: the rule by hand (drift, weight decay, noise of variance 2 lr T), zero
temperature is GD with weight decay, per-run temperatures, and the Gibbs law of a quadratic."""

import pytest
import torch

from repro import generator
from repro.optim import PerRunGD, PerRunLangevin

F64 = torch.float64
LRS = torch.tensor([0.1, 0.05], dtype=F64)
CURV = torch.tensor([[1.0, 2.0, 3.0], [0.5, 1.0, 4.0]], dtype=F64)
W0 = torch.tensor([[1.0, -1.0, 0.5], [2.0, 0.3, -0.7]], dtype=F64)


def loss(w):
    return 0.5 * (CURV * w**2).sum()


def run(opt, w, steps):
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        opt.step()
        out.append(w.detach().clone())
    return out


def test_the_rule_by_hand():
    w = W0.clone().requires_grad_(True)
    temps = torch.tensor([0.01, 0.2], dtype=F64)
    got = run(PerRunLangevin([w], lr=LRS, temperature=temps, weight_decay=0.3,
                             generator=generator(7)), w, 4)
    g = generator(7)
    v = W0.clone()
    for t in range(4):
        xi = torch.randn(v.shape, generator=g, dtype=F64)
        v = v - LRS[:, None] * (CURV * v + 0.3 * v) + torch.sqrt(2 * LRS * temps)[:, None] * xi
        torch.testing.assert_close(got[t], v, rtol=0, atol=1e-15)


def test_zero_temperature_is_gd_with_weight_decay():
    w, v = (W0.clone().requires_grad_(True) for _ in range(2))
    lang = run(PerRunLangevin([w], lr=LRS, temperature=0.0, weight_decay=0.0), w, 6)
    gd = run(PerRunGD([v], lr=LRS), v, 6)
    for a, b in zip(lang, gd):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # weight decay lambda adds lambda * w to the gradient: the curvature becomes CURV + lambda
    w = W0.clone().requires_grad_(True)
    last = run(PerRunLangevin([w], lr=LRS, weight_decay=0.5), w, 3)[-1]
    torch.testing.assert_close(last, W0 * (1 - LRS[:, None] * (CURV + 0.5)) ** 3)


def test_gibbs_law_of_a_quadratic():
    # stationary variance of w' = w - lr (c + lambda) w + sqrt(2 lr T) xi is
    # 2 lr T / (1 - (1 - lr k)^2) = T / (k (1 - lr k / 2)), k = c + lambda: about T / k
    runs, c, lam, temp, lr = 4000, 2.0, 1.0, 0.05, 0.02
    w = torch.zeros(runs, 1, dtype=F64, requires_grad=True)
    opt = PerRunLangevin([w], lr=torch.full((runs,), lr, dtype=F64), temperature=temp,
                         weight_decay=lam, generator=generator(3))
    for _ in range(400):
        opt.zero_grad()
        (0.5 * c * w**2).sum().backward()
        opt.step()
    k = c + lam
    exact = temp / (k * (1 - lr * k / 2))
    var = float(w.detach().var())
    assert abs(var - exact) < 4 * exact * (2 / runs) ** 0.5   # 4 standard errors of a variance


def test_validation():
    w = W0.clone().requires_grad_(True)
    with pytest.raises(ValueError, match="temperature"):
        PerRunLangevin([w], lr=LRS, temperature=-1.0)
    with pytest.raises(ValueError, match="runs"):
        PerRunLangevin([w], lr=LRS, temperature=torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="weight_decay"):
        PerRunLangevin([w], lr=LRS, weight_decay=-0.1)
