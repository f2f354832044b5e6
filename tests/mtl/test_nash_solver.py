"""repro.mtl.nash_solver: the Nash solver against cvxpy and the paper's identities, on easy and hard
Gram matrices; its errors (unbounded, ill-conditioned) and warm starts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repro.mtl import NashSolverError, NashUnbounded, nash_residual, nash_solve, nash_two_tasks

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
