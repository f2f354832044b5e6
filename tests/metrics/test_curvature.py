"""repro.metrics.curvature against exact answers: autograd's Hessian, its trace and
torch.linalg.eigvalsh."""

import math

import pytest
import torch

from repro import generator
from repro.metrics import hessian, hessian_trace, hutchinson_trace, hvp, top_eigenvalue


def spd(n, seed, top=None):
    """A random symmetric positive definite matrix (with its top eigenvalue set apart if asked)."""
    g = generator(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eig = torch.rand(n, generator=g, dtype=torch.float64) + 0.1
    if top is not None:
        eig[0] = top
    return Q @ torch.diag(eig) @ Q.T


def quartic(M):
    """0.5 w^T M w + 0.25 sum w^4: its Hessian M + diag(3 w^2) depends on w (batched over rows)."""
    return lambda w: 0.5 * torch.einsum("...i,ij,...j->...", w, M, w) + 0.25 * (w**4).sum(-1)


def exact(M, w):
    return M + torch.diag(3 * w**2)


def test_hvp_and_hessian_match_autograd():
    M = spd(6, 0)
    f = quartic(M)
    w = torch.randn(6, generator=generator(1), dtype=torch.float64)
    H = torch.autograd.functional.hessian(f, w)
    torch.testing.assert_close(H, exact(M, w))
    v = torch.randn(6, generator=generator(2), dtype=torch.float64)
    torch.testing.assert_close(hvp(f, w, v), H @ v)
    torch.testing.assert_close(hessian(f, w), H)
    torch.testing.assert_close(hessian_trace(f, w), torch.trace(H))


def test_several_parameter_tensors_are_flattened_in_order():
    a = torch.randn(2, generator=generator(0), dtype=torch.float64)
    b = torch.randn(3, generator=generator(1), dtype=torch.float64)

    def f(ps):
        x, y = ps
        return (x.sum() * y**2).sum()

    H = torch.autograd.functional.hessian(lambda w: f((w[:2], w[2:])), torch.cat([a, b]))
    torch.testing.assert_close(hessian(f, (a, b)), H)
    hx, hy = hvp(f, [a, b], [torch.ones(2, dtype=torch.float64),
                             torch.zeros(3, dtype=torch.float64)])
    torch.testing.assert_close(torch.cat([hx, hy]), H[:, :2].sum(1))


def batched_ensemble(S=3, n=5):
    """S independent quartics of different scale: per-model losses of shape (S,)."""
    Ms = torch.stack([spd(n, 10 + s) * (s + 1) for s in range(S)])
    W = torch.randn(S, n, generator=generator(3), dtype=torch.float64)

    def loss(w):
        return 0.5 * torch.einsum("si,sij,sj->s", w, Ms, w) + 0.25 * (w**4).sum(-1)

    blocks = torch.stack([exact(Ms[s], W[s]) for s in range(S)])
    return loss, W, blocks


def test_per_model_hessian_and_trace_on_a_batched_ensemble():
    loss, W, blocks = batched_ensemble()
    torch.testing.assert_close(hessian(loss, W), blocks)
    torch.testing.assert_close(hessian_trace(loss, W),
                               torch.diagonal(blocks, dim1=1, dim2=2).sum(1))
    # summing the losses first gives one (block diagonal) Hessian over all S*n coordinates
    H_all = hessian(lambda w: loss(w).sum(), W)
    torch.testing.assert_close(H_all, torch.block_diag(*blocks))


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    # z^T D z = sum_i D_ii z_i^2 = Tr D for every Rademacher z: no variance at all.
    d = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    est = hutchinson_trace(lambda w: 0.5 * (d * w**2).sum(), torch.zeros(3, dtype=torch.float64),
                           n_samples=3, generator=generator(0))
    torch.testing.assert_close(est, d.sum())


def test_hutchinson_converges_per_model_within_its_standard_error():
    loss, W, blocks = batched_ensemble(S=3, n=8)
    N = 400
    est = hutchinson_trace(loss, W, n_samples=N, generator=generator(0))
    assert est.shape == (3,)
    traces = torch.diagonal(blocks, dim1=1, dim2=2).sum(1)
    # one Rademacher probe has variance 2 sum_{i != j} H_ij^2; the mean of N has that over N
    off = (blocks**2).sum((1, 2)) - (torch.diagonal(blocks, dim1=1, dim2=2) ** 2).sum(1)
    stderr = (2 * off / N).sqrt()
    assert torch.all((est - traces).abs() < 4 * stderr), (est, traces, stderr)
    # the models are told apart: each estimate is far closer to its own trace than to the others
    assert torch.all(stderr < 0.1 * traces.diff().abs().min())
    # and one probe alone is visibly noisier (a test that the tolerance can fail)
    one = hutchinson_trace(loss, W, n_samples=1, generator=generator(1))
    assert not torch.allclose(one, traces, rtol=1e-3)


def test_top_eigenvalue_matches_eigvalsh():
    M = spd(10, 4, top=5.0)  # a clear spectral gap (others < 1.1) so the power iteration converges
    w = torch.zeros(10, dtype=torch.float64)
    lam = top_eigenvalue(quartic(M), w, iters=60, generator=generator(0))
    torch.testing.assert_close(lam, torch.linalg.eigvalsh(M)[-1], rtol=1e-8, atol=0)


def test_top_eigenvalue_per_model():
    loss, W, blocks = batched_ensemble(S=3, n=5)
    lam = top_eigenvalue(loss, W, iters=500, generator=generator(0))
    torch.testing.assert_close(lam, torch.linalg.eigvalsh(blocks)[:, -1], rtol=1e-6, atol=0)


def test_works_on_module_parameters():
    net = torch.nn.Linear(3, 1).double()
    x = torch.randn(10, 3, generator=generator(0), dtype=torch.float64)
    params = list(net.parameters())

    def loss(_):  # closes over the module; the metrics reuse its leaf parameters
        return 0.5 * (net(x) ** 2).mean()

    # for a linear model with squared loss the Hessian is the Gram matrix of (x, 1)
    X1 = torch.cat([x, torch.ones(10, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(hessian(loss, params), X1.T @ X1 / 10)
    assert net.weight.grad is None  # the module's own gradients are not touched


def test_argument_validation():
    w = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_samples"):
        hutchinson_trace(lambda w: (w**2).sum(), w, n_samples=0)
    with pytest.raises(ValueError, match="iters"):
        top_eigenvalue(lambda w: (w**2).sum(), w, iters=0)
    with pytest.raises(ValueError, match="per-model"):
        hessian(lambda w: (w**2).sum(), torch.zeros(3, 2), per_model=True)
    assert math.isfinite(float(hessian_trace(lambda w: (w**2).sum(), w)))
