"""repro.solvers.nuclear_norm: the convex minimum-nuclear-norm baseline (cvxpy + SCS) against
known answers."""

import numpy as np
import pytest
import torch

from repro.solvers import completion_operator, min_nuclear_norm, min_nuclear_norm_completion


def test_psd_single_off_diagonal_entry():
    # observe only X_12 = 1 of a PSD 2x2 matrix: least trace is [[1, 1], [1, 1]] (trace 2)
    A = np.zeros((1, 2, 2))
    A[0, 0, 1] = A[0, 1, 0] = 0.5
    out = min_nuclear_norm(A, [1.0], psd=True)
    assert np.allclose(out["X"], np.ones((2, 2)), atol=1e-4)
    assert out["nuclear_norm"] == pytest.approx(2.0, abs=1e-4)


def test_general_single_entry():
    # observe only X_12 = 1 of a general 2x2 matrix: least nuclear norm is e1 e2^T (norm 1)
    A = np.zeros((1, 2, 2))
    A[0, 0, 1] = 1.0
    out = min_nuclear_norm(A, [1.0])
    assert np.allclose(out["X"], [[0, 1], [0, 0]], atol=1e-4)
    assert out["nuclear_norm"] == pytest.approx(1.0, abs=1e-4)


def test_diagonal_measurements_give_the_lp_answer():
    # commuting (diagonal) measurements: min trace over x >= 0 with a x = y is a linear program
    from scipy.optimize import linprog

    rng = np.random.default_rng(0)
    n, m = 8, 3
    a = rng.standard_normal((m, n))
    x_true = np.zeros(n)
    x_true[[1, 5]] = [1.0, 2.0]
    y = a @ x_true
    A = np.zeros((m, n, n))
    A[:, np.arange(n), np.arange(n)] = a
    out = min_nuclear_norm(torch.tensor(A), torch.tensor(y), psd=True)
    lp = linprog(np.ones(n), A_eq=a, b_eq=y, bounds=(0, None))
    assert out["nuclear_norm"] == pytest.approx(lp.fun, rel=1e-4)
    assert np.allclose(np.diag(out["X"]), lp.x, atol=1e-3)


def test_completion_of_a_two_by_two():
    # observe X_11 = X_12 = X_21 = 1, X_22 missing: |[[1, 1], [1, t]]|_* is 1 + t for t >= 1 and
    # sqrt((t - 1)^2 + 4) for t < 1, least (2) at t = 1, the rank-one completion
    mask = np.array([[1, 1], [1, 0]])
    E, (rows, cols) = completion_operator(mask)
    assert E.shape == (3, 2, 2) and list(zip(rows, cols)) == [(0, 0), (0, 1), (1, 0)]
    out = min_nuclear_norm(E, [1.0, 1.0, 1.0])
    assert np.allclose(out["X"], np.ones((2, 2)), atol=1e-3)
    assert out["nuclear_norm"] == pytest.approx(2.0, abs=1e-4) and out["residual"] < 1e-4


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        min_nuclear_norm(np.zeros((2, 3, 3)), [1.0])
    with pytest.raises(ValueError):
        min_nuclear_norm(np.zeros((1, 2, 3)), [1.0], psd=True)


def test_entrywise_completion_program_matches_the_operator_form():
    g = np.random.default_rng(4)
    M = np.outer(g.standard_normal(6), g.standard_normal(5))        # rank one
    mask = g.random((6, 5)) < 0.7
    ours = min_nuclear_norm_completion(M, mask, eps=1e-8)
    E, (r, c) = completion_operator(mask)
    ref = min_nuclear_norm(E, M[r, c], eps=1e-8)
    assert ours["residual"] < 1e-5
    assert abs(ours["nuclear_norm"] - ref["nuclear_norm"]) < 1e-4 * ref["nuclear_norm"]
    with pytest.raises(ValueError):
        min_nuclear_norm_completion(M, mask[:, :4])
