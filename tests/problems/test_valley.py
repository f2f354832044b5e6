"""repro.problems.valley: the widening valley's closed forms against autograd, Theorem 3.1's
constants."""

import pytest
import torch

from repro import generator
from repro.problems import WideningValley


def autograd_hessian(f, w):
    return torch.autograd.functional.hessian(f, w)


def test_valley_trace_and_gradient_match_autograd():
    valley = WideningValley(d=5)
    w = torch.randn(6, generator=generator(0), dtype=torch.float64)
    H = autograd_hessian(valley.loss_w, w)
    torch.testing.assert_close(valley.hessian_trace_w(w), torch.trace(H))
    wg = w.clone().requires_grad_(True)
    valley.loss_w(wg).backward()
    gu, gv = valley.gradient(*valley.split(w))
    torch.testing.assert_close(torch.cat([gu, gv[None]]), wg.grad)


def test_valley_batched_and_start():
    valley = WideningValley(d=8)
    w = valley.start(D=2.0, n_seeds=3)
    u, v = valley.split(w)
    assert w.shape == (3, 9)
    torch.testing.assert_close((u**2).sum(-1), torch.full((3,), 2.0, dtype=torch.float64))
    assert torch.all(v == 0) and torch.all(valley.loss_w(w) == 0)
    # on the valley floor the trace is |u|^2 = D; off it, each seed gets its own value
    torch.testing.assert_close(valley.hessian_trace_w(w),
                               torch.full((3,), 2.0, dtype=torch.float64))
    w[:, -1] = torch.tensor([0.0, 1.0, 2.0])
    torch.testing.assert_close(valley.hessian_trace_w(w), 2.0 + 8 * torch.tensor([0.0, 1.0, 4.0],
                               dtype=torch.float64))
    with pytest.raises(ValueError, match="d \\+ 1"):
        valley.split(torch.zeros(3, 8))


def test_theorem_3_1_constants():
    t = WideningValley(d=32).theorem_3_1(alpha=0.25, D=1.0)
    assert t["lr"] == 0.125
    assert t["sigma2_max_pgd"] == min(0.25**3 / 2, 1 / 2)
    assert t["sigma2_max_anti_pgd"] == t["sigma2"] == 0.25 / 64
    assert t["d_min"] == 32 and t["d_ok"]
    assert (t["pgd_u2_lower"], t["anti_pgd_u2_upper"]) == (4.0, 0.25)
    assert (t["pgd_trace_lower"], t["anti_pgd_trace_upper"]) == (4.0, 4.0)
    assert not WideningValley(d=31).theorem_3_1(0.25, 1.0)["d_ok"]
    # large alpha: D/(8 alpha) is the binding noise limit
    assert WideningValley(d=1).theorem_3_1(2.0, 1.0)["sigma2_max_pgd"] == 1 / 16
    with pytest.raises(ValueError, match="alpha"):
        WideningValley(d=4).theorem_3_1(0.0, 1.0)
    with pytest.raises(ValueError, match="d must be"):
        WideningValley(d=0)
