"""repro.problems.completion: MatrixCompletion's masks, losses, per-instance counts, selection,
and its convex answer against the solver's operator form."""

import pytest
import torch

from repro.problems import MatrixCompletion
from repro.solvers import completion_operator, min_nuclear_norm


def test_completion_masks_and_losses():
    prob = MatrixCompletion(rows=7, cols=5, r=2, n_observed=20, test_fraction=0.25,
                            n_instances=3, seed=0)
    assert torch.all(prob.train_mask.sum((-1, -2)) == 15)
    assert torch.all(prob.test_mask.sum((-1, -2)) == 5)
    assert torch.all(prob.train_mask * prob.test_mask == 0)          # disjoint
    assert torch.all(torch.linalg.matrix_rank(prob.M_star) == 2)
    assert torch.allclose(prob.loss(prob.M_star), torch.zeros(3, dtype=torch.float64))
    # W = M* + 1 on every entry: half-MSE on train is 1/2, test MSE is 1
    W = (prob.M_star + 1)[:, None].expand(3, 4, 7, 5)
    assert torch.allclose(prob.loss(W), torch.full((3, 4), 0.5, dtype=torch.float64))
    assert torch.allclose(prob.test_error(W), torch.ones(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError):
        MatrixCompletion(rows=3, cols=3, n_observed=10)


def test_completion_fro_norm_and_per_instance_counts():
    prob = MatrixCompletion(rows=10, cols=10, r=2, n_observed=[15, 40, 70], n_instances=3,
                            seed=4, fro_norm=10.0)
    assert torch.allclose(torch.linalg.matrix_norm(prob.M_star), torch.full((3,), 10.0,
                                                                            dtype=torch.float64))
    assert prob.train_mask.sum((-1, -2)).tolist() == [15.0, 40.0, 70.0]
    assert prob.n_train.tolist() == [15.0, 40.0, 70.0]
    # the loss divides by each instance's own count, also with extra batch dimensions
    W = torch.zeros(3, 2, 10, 10, dtype=torch.float64)
    expected = ((prob.M_star * prob.train_mask) ** 2).sum((-1, -2)) / prob.n_train / 2
    assert torch.allclose(prob.loss(W), expected[:, None].expand(3, 2))
    # |M*|_F = n makes the mean squared error over all entries the squared relative error
    assert torch.allclose(prob.error_all(W[:, 0]), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(prob.error_all(W[:, 0]), prob.relative_error(W[:, 0]) ** 2)
    # the unobserved error ignores the training entries: M* there, zero elsewhere
    # -> error 1/(n^2-m) sum
    W_fit = prob.M_star * prob.train_mask
    unseen = ((prob.M_star * (1 - prob.train_mask)) ** 2).sum((-1, -2)) / (100 - prob.n_train)
    assert torch.allclose(prob.unobserved_error(W_fit), unseen)
    assert torch.allclose(prob.unobserved_error(prob.M_star), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError):
        MatrixCompletion(rows=5, cols=5, n_observed=[3, 4], n_instances=3)
    with pytest.raises(ValueError):
        MatrixCompletion(rows=5, cols=5, n_observed=10, fro_norm=-1.0)


def test_completion_defaults_unchanged_by_new_options():
    a = MatrixCompletion(rows=7, cols=6, r=2, n_observed=20, test_fraction=0.25, n_instances=2,
                         seed=5)
    b = MatrixCompletion(rows=7, cols=6, r=2, n_observed=[20, 20], test_fraction=0.25,
                         n_instances=2, seed=5)
    assert torch.equal(a.M_star, b.M_star) and torch.equal(a.train_mask, b.train_mask)
    assert torch.equal(a.test_mask, b.test_mask) and a.n_train == 15 and a.n_test == 5
    assert torch.allclose(a.loss(a.M_star * 0), b.loss(b.M_star * 0))


def test_completion_min_nuclear_norm_matches_baseline():
    prob = MatrixCompletion(rows=8, cols=7, r=1, n_observed=50, seed=2, fro_norm=8.0)
    ours = prob.min_nuclear_norm(0, eps=1e-8)
    E, (r, c) = completion_operator(prob.train_mask[0])
    ref = min_nuclear_norm(E, prob.M_star[0][r, c], eps=1e-8)
    assert ours["residual"] < 1e-5
    assert abs(ours["nuclear_norm"] - ref["nuclear_norm"]) < 1e-4 * ref["nuclear_norm"]
    # with enough entries of a rank-1 matrix the convex program recovers it
    assert float(prob.relative_error(torch.tensor(ours["X"])[None])) < 1e-3


def test_completion_select_trains_like_the_batch():
    prob = MatrixCompletion(rows=6, cols=5, r=2, n_observed=[10, 14, 20], n_instances=3, seed=9)
    one = prob.select(1)
    assert one.P == 1 and torch.equal(one.M_star[0], prob.M_star[1])
    assert torch.equal(one.train_mask[0], prob.train_mask[1]) and one.n_train.tolist() == [14.0]
    W = torch.randn(3, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(one.loss(W[1:2]), prob.loss(W)[1:2])
    two = prob.select([0, 2])
    assert two.P == 2 and torch.allclose(two.loss(W[[0, 2]]), prob.loss(W)[[0, 2]])
    assert prob.P == 3   # the original is untouched
