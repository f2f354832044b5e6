"""Tests of repro.mtl: the Nash solver against cvxpy and the paper's identities, on easy and hard
Gram matrices; the failure policy; the baseline aggregators on hand-checkable cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from repro.mtl import (CAGrad, LinearScalarization, MGDA, NashMTL, NashSolverError, NashUnbounded,
                       PCGrad, delta_m, make, mean_rank, nash_residual, nash_solve, nash_two_tasks)

TOL = 1e-12


def random_gradients(rng, K, P=40, spread=0.0, conflict=0.0):
    """K gradients in R^P: a shared component (negative `conflict` pulls them apart), norms
    spread over 10^{-spread..spread}."""
    G = rng.standard_normal((K, P))
    if conflict:
        base = rng.standard_normal(P)
        signs = np.where(np.arange(K) % 2 == 0, 1.0, -1.0)
        G = 0.05 * G + conflict * signs[:, None] * base[None, :]
    return G * 10.0 ** rng.uniform(-spread, spread, (K, 1))


def hard_cases():
    rng = np.random.default_rng(1234)
    cases = []
    for K in (2, 3, 5, 10, 20):
        cases.append((f"random-K{K}", random_gradients(rng, K)))
        cases.append((f"spread-K{K}", random_gradients(rng, K, spread=4.0)))
    # nearly parallel: all gradients within a narrow cone
    for K in (3, 10, 20):
        base = rng.standard_normal(60)
        cases.append((f"parallel-K{K}", base + 1e-3 * rng.standard_normal((K, 60))))
    # strongly conflicting: two opposite camps (0 is near but not in the hull: P > K)
    for K in (2, 3, 6):
        cases.append((f"conflict-K{K}", random_gradients(rng, K, conflict=1.0)))
    cases.append(("conflict-spread-K20", random_gradients(rng, 20, spread=3.0, conflict=1.0)))
    return cases


CASES = hard_cases()


def cvxpy_alpha(M):
    """Reference: minimise 1/2 a^T M a - sum log a with a general conic solver."""
    cp = pytest.importorskip("cvxpy")
    s = 1 / np.sqrt(np.diag(M))
    C = M * s[:, None] * s[None, :]
    L = np.linalg.cholesky(C + 1e-14 * np.eye(len(C)))
    a = cp.Variable(len(M), pos=True)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(L.T @ a) - cp.sum(cp.log(a))))
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    return s * a.value


@pytest.mark.parametrize("name,G", CASES, ids=[c[0] for c in CASES])
def test_solver_reaches_tolerance_and_identities(name, G):
    M = G @ G.T
    sol = nash_solve(M, tol=TOL)
    a = sol.alpha
    assert np.all(a > 0)
    assert sol.residual < TOL and nash_residual(M, a) < TOL
    d = G.T @ a
    u = G @ d                               # directional derivatives g_i^T d
    assert np.all(u > 0)
    np.testing.assert_allclose(u, 1 / a, rtol=1e-9)
    assert d @ d == pytest.approx(len(a), rel=1e-9)      # ||d||^2 = K


@pytest.mark.parametrize("name,G", CASES, ids=[c[0] for c in CASES])
def test_solver_agrees_with_cvxpy(name, G):
    M = G @ G.T
    ours = nash_solve(M).alpha
    ref = cvxpy_alpha(M)
    # the conic solver is accurate to about 1e-7; ours is the more accurate of the two
    np.testing.assert_allclose(ref, ours, rtol=2e-5)
    assert nash_residual(M, ours) <= nash_residual(M, ref)


def test_scale_invariance():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((4, 30))
    c = np.array([1.0, 1e3, 1e-2, 7.0])
    a = nash_solve(G @ G.T).alpha
    Gc = G * c[:, None]
    ac = nash_solve(Gc @ Gc.T).alpha
    np.testing.assert_allclose(ac, a / c, rtol=1e-10)
    np.testing.assert_allclose(Gc.T @ ac, G.T @ a, rtol=1e-10, atol=1e-12)


def test_orthogonal_gradients():
    norms = np.array([0.5, 2.0, 30.0, 1e-3])
    G = np.diag(norms)
    a = nash_solve(G @ G.T).alpha
    np.testing.assert_allclose(a, 1 / norms, rtol=1e-12)


def test_two_tasks_closed_form():
    rng = np.random.default_rng(3)
    for _ in range(20):
        G = rng.standard_normal((2, 5)) * rng.uniform(0.01, 100, (2, 1))
        a = nash_solve(G @ G.T).alpha
        closed = nash_two_tasks(torch.tensor(G)).numpy()
        np.testing.assert_allclose(closed, a, rtol=1e-10)
        n = np.linalg.norm(G, axis=1)
        cos = G[0] @ G[1] / n.prod()
        d = (G[0] / n[0] + G[1] / n[1]) / math.sqrt(1 + cos)
        np.testing.assert_allclose(G.T @ a, d, rtol=1e-10)


def test_unbounded_cases_raise():
    # 0 in the convex hull of three gradients in the plane
    G = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    with pytest.raises(NashUnbounded, match="convex hull"):
        nash_solve(G @ G.T)
    # a zero gradient
    G = np.array([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(NashUnbounded, match="zero gradient"):
        nash_solve(G @ G.T)
    # eight gradients in a 3-dimensional subspace (0 in their hull, M of rank 3): the iterates
    # run off until Cholesky fails in float64; that must still be NashUnbounded, not a LinAlgError
    rng = np.random.default_rng(0)
    G = rng.standard_normal((8, 3)) @ rng.standard_normal((3, 50))
    for a0 in (None, np.ones(8)):
        with pytest.raises(NashUnbounded, match="convex hull"):
            nash_solve(G @ G.T, alpha0=a0)


def test_too_ill_conditioned_raises_with_residual():
    c = -1 + 1e-9                         # a rounding floor far above 1e-12
    M = np.array([[1.0, c], [c, 1.0]])
    with pytest.raises(NashSolverError) as info:
        nash_solve(M)
    assert info.value.residual > 1e-12
    # with a tolerance above the floor it converges to the closed form
    sol = nash_solve(M, tol=1e-6)
    np.testing.assert_allclose(sol.alpha, 1 / math.sqrt(1 + c), rtol=1e-5)


def test_warm_start_same_answer_and_same_errors():
    # a warm start skips the up-front checks of M; every failure must still raise the error a
    # cold start raises, and a success must be the same solution in fewer Newton steps
    rng = np.random.default_rng(11)
    G = rng.standard_normal((6, 25)) * 10.0 ** rng.uniform(-2, 2, (6, 1))
    M = G @ G.T
    cold = nash_solve(M)
    G2 = G + 0.02 * rng.standard_normal(G.shape) * np.linalg.norm(G, axis=1, keepdims=True) / 5
    warm = nash_solve(G2 @ G2.T, alpha0=cold.alpha)
    np.testing.assert_allclose(warm.alpha, nash_solve(G2 @ G2.T).alpha, rtol=1e-10)
    assert warm.residual < TOL and warm.iterations <= nash_solve(G2 @ G2.T).iterations
    assert warm.iterations <= 2     # cubic convergence (Chebyshev's correction) from a 2% drift
    # a warm start far off in scale and direction, on a rank-deficient M (11 gradients spanning
    # 8 dimensions), as early in training: the damped phase must still get there
    G = rng.standard_normal((11, 8)) * 10.0 ** rng.uniform(-1.5, 0.5, (11, 1))
    far = nash_solve(G @ G.T, alpha0=100 * rng.uniform(0.05, 1.5, 11))
    assert far.residual < TOL
    np.testing.assert_allclose(far.alpha, nash_solve(G @ G.T).alpha, rtol=1e-9)
    start = np.ones(3)
    hull = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    with pytest.raises(NashUnbounded, match="convex hull"):
        nash_solve(hull @ hull.T, alpha0=start)
    zero = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(NashUnbounded, match="zero gradient"):
        nash_solve(zero, alpha0=start)
    nan = np.eye(3)
    nan[0, 1] = nan[1, 0] = np.nan
    for a0 in (None, start):
        with pytest.raises(NashSolverError, match="NaN or inf"):
            nash_solve(nan, alpha0=a0)
    with pytest.raises(ValueError, match="positive"):
        nash_solve(np.eye(3), alpha0=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        nash_solve(np.eye(3), alpha0=[1.0, 1.0])
    one = nash_solve(np.array([[4.0]]))
    assert one.alpha.tolist() == [0.5] and one.residual == 0.0    # K = 1: alpha = 1/||g||


def test_aggregator_failure_policy():
    bad = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    good = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(NashUnbounded):
        NashMTL()(bad)
    agg = NashMTL(on_failure="previous")
    d_good = agg(good)
    w_good = agg.weights.clone()
    with pytest.warns(RuntimeWarning, match="reusing the previous weights"):
        d_bad = agg(bad)
    assert agg.failures == 1
    torch.testing.assert_close(agg.weights, w_good)
    torch.testing.assert_close(d_bad, (w_good[:, None] * bad).sum(0))
    assert isinstance(agg.last_error, NashUnbounded)
    # two tasks with exactly opposite gradients: the closed form fails the same way
    with pytest.raises(NashUnbounded):
        NashMTL()(torch.tensor([[1.0, 2.0], [-1.0, -2.0]]))
    with pytest.raises(ValueError):
        NashMTL(on_failure="ignore")
    del d_good


def test_nash_aggregator_batched_matches_solver():
    rng = np.random.default_rng(5)
    G = torch.tensor(rng.standard_normal((3, 4, 7)))
    d = NashMTL()(G)
    for b in range(3):
        a = nash_solve((G[b] @ G[b].T).numpy()).alpha
        np.testing.assert_allclose(d[b].numpy(), G[b].numpy().T @ a, rtol=1e-10)


def test_linear_scalarization():
    G = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    torch.testing.assert_close(LinearScalarization()(G), torch.tensor([4.0, 1.0]))


def test_mgda_hand_cases():
    # orthogonal unit gradients: the midpoint
    torch.testing.assert_close(MGDA()(torch.eye(2)), torch.tensor([0.5, 0.5]))
    # one gradient inside the other's half-line: the shorter one
    G = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    torch.testing.assert_close(MGDA()(G), torch.tensor([1.0, 0.0]))
    # (2, 0) and (0, 1): the min-norm point of the segment is (0.4, 0.8)
    G = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(MGDA()(G), torch.tensor([0.4, 0.8], dtype=torch.float64))
    # K = 3 orthonormal: the centroid; a Pareto-stationary set gives zero
    torch.testing.assert_close(MGDA()(torch.eye(3, dtype=torch.float64)),
                               torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-6, rtol=0)
    G = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert MGDA()(G).norm() < 1e-6


def test_pcgrad_hand_cases():
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    # g1 loses its part along g2: (1,0) + 1/2 (-1,1) = (0.5, 0.5); g2 loses its part along g1: (0, 1)
    torch.testing.assert_close(PCGrad()(G), torch.tensor([0.5, 1.5]))
    # no conflict: the plain sum
    G = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    torch.testing.assert_close(PCGrad()(G), torch.tensor([3.0, 1.0]))
    # the result never conflicts with a projected pair: each projected g_i is orthogonal to g_j
    G = torch.tensor([[2.0, 1.0], [-3.0, 0.5]])
    out = PCGrad()(G)
    expected = G[0] - (G[0] @ G[1]) / (G[1] @ G[1]) * G[1] + G[1] - (G[0] @ G[1]) / (G[0] @ G[0]) * G[0]
    torch.testing.assert_close(out, expected)


def test_cagrad_hand_cases():
    G = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(CAGrad(c=0.0)(G), G.mean(0))          # c = 0: the mean
    g = torch.tensor([[3.0, 4.0], [3.0, 4.0]], dtype=torch.float64)
    c = 0.5                                                           # identical gradients
    torch.testing.assert_close(CAGrad(c=c)(g), g[0] * (1 + c) / (1 + c**2))
    # orthonormal pair: by symmetry w = (1/2, 1/2), g_w = g0, d = g0 (1 + c) / (1 + c^2)
    out = CAGrad(c=0.4)(G)
    torch.testing.assert_close(out, G.mean(0) * 1.4 / 1.16, atol=1e-7, rtol=0)


def test_make_and_metrics():
    assert isinstance(make("nash"), NashMTL)
    with pytest.raises(ValueError, match="unknown aggregator"):
        make("nope")
    # Delta_m: one error metric 10% worse, one accuracy 10% better: mean of +10 and -10 is 0
    assert delta_m([1.1, 0.88], [1.0, 0.8], [False, True]) == pytest.approx(0.0)
    assert delta_m([2.0], [1.0], [False]) == pytest.approx(100.0)
    ranks = mean_rank([[1.0, 3.0], [2.0, 1.0], [3.0, 2.0]])
    np.testing.assert_allclose(ranks, [2.0, 1.5, 2.5])


def test_warning_free_on_success():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NashMTL(on_failure="previous")(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)))


def test_cagrad_two_tasks_matches_brute_force():
    rng = np.random.default_rng(7)
    G = torch.tensor(rng.standard_normal((6, 2, 3)), dtype=torch.float64)
    c = 0.4
    out = CAGrad(c=c)(G)
    w = torch.linspace(0, 1, 200001, dtype=torch.float64)
    for b in range(6):
        g1, g2 = G[b]
        g0 = 0.5 * (g1 + g2)
        gw = g2[None] + w[:, None] * (g1 - g2)[None]
        h = gw @ g0 + c * g0.norm() * gw.norm(dim=1)
        best = gw[h.argmin()]
        expected = (g0 + c * g0.norm() * best / best.norm()) / (1 + c**2)
        torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=0)


def test_mgda_two_tasks_matches_general_solver():
    from repro.mtl import _simplex_qp
    rng = np.random.default_rng(8)
    G = torch.tensor(rng.standard_normal((5, 2, 4)), dtype=torch.float64)
    agg = MGDA()
    agg(G)
    for b in range(5):
        M = (G[b] @ G[b].T).numpy()
        w = np.linspace(0, 1, 100001)
        q = M[0, 0] * w**2 + 2 * M[0, 1] * w * (1 - w) + M[1, 1] * (1 - w) ** 2
        assert agg.weights[b, 0].item() == pytest.approx(w[q.argmin()], abs=1e-4)
        assert _simplex_qp(M)[0] == pytest.approx(w[q.argmin()], abs=1e-4)


def test_toy_problem_values_and_front():
    from repro.mtl import ToyTwoObjectives
    toy = ToyTwoObjectives(scale1=0.1)
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-3.0, -4.0]], dtype=torch.float64)
    f = toy(x)
    # at x2 = 0 both gates are 0: both losses vanish
    torch.testing.assert_close(f[0], torch.zeros(2, dtype=torch.float64))
    # a hand evaluation at (1, 2)
    t = math.tanh(-2.0)
    up = math.tanh(1.0)
    f1 = 0.1 * (math.log(abs(0.5 * (-8) - t)) + 6) * up
    f2 = (math.log(abs(0.5 * 2 + t + 2)) + 6) * up
    torch.testing.assert_close(f[1], torch.tensor([f1, f2], dtype=torch.float64))
    _, G = toy.gradients(x[1:])
    assert G.shape == (2, 2, 2)
    front = toy.pareto_front(n=200)
    assert (front[1:, 0] >= front[:-1, 0]).all() and (front[1:, 1] < front[:-1, 1]).all()


def test_task_gradients_and_set_grad():
    from repro.mtl import set_grad, task_gradients
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    losses = [(w * w).sum(), 5 * b.sum() + w[0]]       # gradients (2w, 0) and ((1, 0), 5)
    G = task_gradients(losses, [w, b])
    torch.testing.assert_close(G, torch.tensor([[2.0, 4.0, 0.0], [1.0, 0.0, 5.0]]))
    set_grad([w, b], torch.tensor([7.0, 8.0, 9.0]))
    torch.testing.assert_close(w.grad, torch.tensor([7.0, 8.0]))
    torch.testing.assert_close(b.grad, torch.tensor([9.0]))
