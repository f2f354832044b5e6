"""Family tests over ``repro.mtl.AGGREGATORS`` (in the manner of optax's contrib/_common_test.py):
every aggregator's direction (and weights, where it has them) against an independent reference on
small random task gradients G (K = 2 and 3 tasks), and batched == looped.

References, each computed here without the library's code:

- LS      the sum of the gradients, weights all 1;
- MGDA    the minimum-norm point of the convex hull: its optimality conditions (weights on the
          simplex, g_i . d >= |d|^2 for every task), a brute-force grid over the simplex, and cvxpy;
- PCGrad  K = 2: the two-task projection formula; K = 3: the algorithm of Yu et al. written out,
          with the same random order;
- CAGrad  its definition max_{|d - g0| <= c |g0|} min_i g_i . d: the returned direction (times
          1 + c^2, the authors' code's scaling) is feasible, no random point of the ball does
          better, its value is never above the dual objective h(w) = g_w . g0 + c |g0| |g_w| at
          random points of the simplex (weak duality) and close to their minimum; and, to a conic
          solver's precision (cvxpy), it is the primal's maximiser and its value the dual's
          minimum;
- Nash    G G^T alpha = 1 / alpha with alpha > 0, and d = G^T alpha.

A registered aggregator without a reference fails ``test_every_aggregator_has_a_reference``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from repro import generator
from repro.mtl import AGGREGATORS, NashMTL, make

C = 0.4                     # CAGrad's radius in these tests
P = 5                       # coordinates
SEEDS = range(4)


def build(name):
    """A fresh aggregator (PCGrad with a fresh seeded generator: the same random order)."""
    kwargs = {"ls": {}, "mgda": {}, "pcgrad": {"generator": generator(0)}, "cagrad": {"c": C},
              "nash": {}}[name]
    return make(name, **kwargs)


def random_G(K, seed, batch=()):
    g = generator(100 + seed)
    G = torch.randn(*batch, K, P, generator=g, dtype=torch.float64)
    # norms over two orders of magnitude, and a conflict: the cases where the methods differ
    scale = 10.0 ** (2 * torch.rand(*batch, K, 1, generator=g, dtype=torch.float64) - 1)
    G = G * scale
    G[..., 0, :] -= 0.5 * G[..., 1, :]
    return G


def simplex_grid(K, n):
    """Every point of the simplex with coordinates in multiples of 1/n: (N, K)."""
    if K == 2:
        w = torch.linspace(0, 1, n + 1, dtype=torch.float64)
        return torch.stack([w, 1 - w], 1)
    pts = [(i / n, j / n, (n - i - j) / n) for i in range(n + 1) for j in range(n + 1 - i)]
    return torch.tensor(pts, dtype=torch.float64)


def random_simplex(K, n, seed):
    """n random points of the simplex (Dirichlet(1)), the vertices and the centre."""
    g = generator(seed)
    e = -torch.rand(n, K, generator=g, dtype=torch.float64).log()
    return torch.cat([e / e.sum(1, keepdim=True), torch.eye(K, dtype=torch.float64),
                      torch.full((1, K), 1.0 / K, dtype=torch.float64)])


# the references -------------------------------------------------------------------------------

def check_ls(G, d, weights):
    torch.testing.assert_close(d, G.sum(0), rtol=1e-14, atol=0)
    torch.testing.assert_close(weights, torch.ones(G.shape[0], dtype=G.dtype))


def cvxpy_min_norm(G):
    cp = pytest.importorskip("cvxpy")
    w = cp.Variable(G.shape[0], nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(G.numpy().T @ w)), [cp.sum(w) == 1])
    problem.solve(solver="CLARABEL")
    return torch.tensor(G.numpy().T @ w.value)


def check_mgda(G, d, weights):
    K = G.shape[0]
    # a convex combination ...
    assert bool((weights >= 0).all()) and float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(d, weights @ G, rtol=1e-12, atol=1e-12)
    # ... at the minimum norm: the optimality condition g_i . d >= |d|^2 for every i
    scale = float((G**2).sum(1).max())
    assert bool((G @ d >= d @ d - 1e-9 * scale).all()), (G @ d, d @ d)
    # a brute-force grid over the simplex never does better; for the min-norm point d* of a
    # convex set, |x - d*|^2 <= |x|^2 - |d*|^2 for every x in the set, so the best grid point is
    # close to d in the measure of its own suboptimality
    W = simplex_grid(K, 100_000 if K == 2 else 300)
    norms = ((W @ G) ** 2).sum(1)
    best = W[norms.argmin()] @ G
    assert float(d @ d) <= float(norms.min()) + 1e-12 * scale
    assert float(((best - d) ** 2).sum()) <= float(norms.min() - d @ d) + 1e-10 * scale
    torch.testing.assert_close(d, cvxpy_min_norm(G), rtol=0, atol=1e-6 * scale**0.5)


def check_pcgrad(G, d, weights):
    K = G.shape[0]
    if K == 2:
        g1, g2 = G
        dot = g1 @ g2
        if dot < 0:
            expected = (g1 - dot / (g2 @ g2) * g2) + (g2 - dot / (g1 @ g1) * g1)
        else:
            expected = g1 + g2
    else:
        # Yu et al. (2020), Algorithm 1, with the order the aggregator's generator draws
        g = generator(0)
        projected = []
        for i in range(K):
            others = [j for j in range(K) if j != i]
            gi = G[i].clone()
            for o in torch.randperm(K - 1, generator=g).tolist():
                gj = G[others[o]]
                if gi @ gj < 0:
                    gi = gi - (gi @ gj) / (gj @ gj) * gj
            projected.append(gi)
        expected = sum(projected)
    torch.testing.assert_close(d, expected, rtol=1e-12, atol=1e-12)
    assert weights is None


def worst_improvement(G, d):
    """CAGrad's primal objective: min_i g_i . d (over the last dimension of d)."""
    return (d @ G.T).min(-1).values


def cvxpy_cagrad(G, radius):
    """CAGrad's primal max_{|d - g0| <= radius} min_i g_i . d and its dual
    min_{w in simplex} g_w . g0 + radius |g_w|, each solved as a second-order cone program."""
    cp = pytest.importorskip("cvxpy")
    Gn, g0 = G.numpy(), G.mean(0).numpy()
    d, t = cp.Variable(Gn.shape[1]), cp.Variable()
    cp.Problem(cp.Maximize(t), [Gn @ d >= t, cp.norm(d - g0) <= radius]).solve(solver="CLARABEL")
    w = cp.Variable(Gn.shape[0], nonneg=True)
    dual = cp.Problem(cp.Minimize(g0 @ (Gn.T @ w) + radius * cp.norm(Gn.T @ w)), [cp.sum(w) == 1])
    dual.solve(solver="CLARABEL")
    return torch.tensor(d.value), float(dual.value)


def check_cagrad(G, d, weights):
    K = G.shape[0]
    g0 = G.mean(0)
    radius = C * float(g0.norm())
    d_star = d * (1 + C**2)                           # undo the authors' code's scaling
    scale = float(G.norm(dim=1).max()) ** 2
    # feasible: inside the ball around the mean gradient
    assert float((d_star - g0).norm()) <= radius * (1 + 1e-9)
    value = float(worst_improvement(G, d_star))
    # no random point of the ball (on its surface or inside) does better
    g = generator(7)
    u = torch.randn(20_000, P, generator=g, dtype=torch.float64)
    r = torch.rand(20_000, 1, generator=g, dtype=torch.float64) ** 0.2   # radii, uniform in volume
    u = u / u.norm(dim=1, keepdim=True) * r
    assert float(worst_improvement(G, g0 + radius * u).max()) <= value + 1e-9 * scale
    # the dual: h(w) = g_w . g0 + radius |g_w| over the simplex; weak duality puts the primal
    # value below every h(w), and at the optimum the two meet
    W = torch.cat([random_simplex(K, 50_000, seed=8), simplex_grid(K, 20_000 if K == 2 else 200)])
    gw = W @ G
    h = gw @ g0 + radius * gw.norm(dim=1)
    assert value <= float(h.min()) + 1e-9 * scale
    assert float(h.min()) - value <= 1e-3 * scale, (float(h.min()), value)
    # and against a conic solver: the value is the dual's optimum (strong duality), the direction
    # the primal's maximiser. The maximiser is unique (it lies on the sphere) but the objective
    # is flat along the ties g_i . d = g_j . d, so a solver's 1e-8 in value is ~1e-4 in d; and
    # the library's K > 2 path solves the dual weights to ~1e-6, which costs ~1e-6 in value
    d_ref, dual_value = cvxpy_cagrad(G, radius)
    assert abs(value - dual_value) <= 1e-6 * scale, (value, dual_value)
    torch.testing.assert_close(d_star, d_ref, rtol=0, atol=1e-3 * scale**0.5)
    assert weights is None


def check_nash(G, d, weights):
    alpha = weights
    assert bool((alpha > 0).all())
    M = G @ G.T
    residual = (M @ alpha - 1 / alpha).norm() / (1 / alpha).norm()
    assert float(residual) < 1e-10
    torch.testing.assert_close(d, alpha @ G, rtol=1e-12, atol=0)
    # the directional derivatives are 1 / alpha: every task improves, the smaller one more
    torch.testing.assert_close(G @ d, 1 / alpha, rtol=1e-9, atol=0)


REFERENCES = {"ls": check_ls, "mgda": check_mgda, "pcgrad": check_pcgrad, "cagrad": check_cagrad,
              "nash": check_nash}


def test_every_aggregator_has_a_reference():
    assert set(REFERENCES) == set(AGGREGATORS)
    for name, cls in AGGREGATORS.items():
        assert cls.name == name, (cls, name)


def test_make_by_name():
    assert isinstance(make("nash"), NashMTL)
    with pytest.raises(ValueError, match="unknown aggregator"):
        make("nope")


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_make_builds_the_registered_class(name):
    assert type(build(name)) is AGGREGATORS[name]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_direction_against_reference(name, K, seed):
    G = random_G(K, seed)
    agg = build(name)
    d = agg(G)
    assert d.shape == (P,) and d.dtype == G.dtype
    REFERENCES[name](G, d, agg.weights)


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_batched_equals_looped(name, K):
    G = random_G(K, seed=11, batch=(2, 3))
    agg = build(name)
    d = agg(G)
    assert d.shape == (2, 3, P)
    weights = agg.weights
    for a, b in itertools.product(range(2), range(3)):
        alone = build(name)
        torch.testing.assert_close(d[a, b], alone(G[a, b]), rtol=1e-10, atol=1e-12)
        if weights is None:
            assert alone.weights is None
        else:
            assert weights.shape == (2, 3, K)
            torch.testing.assert_close(weights[a, b], alone.weights, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_identical_gradients_give_a_positive_multiple_of_the_gradient(name):
    # one gradient for every task: no conflict, every method moves along it
    g = torch.tensor([3.0, -1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    d = build(name)(g.expand(3, P).clone())
    cos = float(d @ g / (d.norm() * g.norm()))
    assert cos == pytest.approx(1.0, abs=1e-9)
    assert np.isfinite(d.numpy()).all()
