"""Matrix problems (sensing with Gaussian or commuting measurements, completion) and the
spectral metrics of Part I, against exact answers."""

import math

import pytest
import torch

from repro.metrics import effective_rank, nuclear_norm, singular_values
from repro.problems import MatrixCompletion, MatrixSensing, SymmetricSensing


@pytest.mark.parametrize("kind", ["gaussian", "commuting"])
def test_sensing_truth_fits_and_has_rank_r(kind):
    prob = SymmetricSensing(n=8, r=3, m=20, n_instances=2, measurements=kind, seed=1)
    assert prob.A.shape == (2, 20, 8, 8) and prob.y.shape == (2, 20)
    assert torch.allclose(prob.A, prob.A.transpose(-1, -2))
    assert torch.all(torch.linalg.matrix_rank(prob.X_star) == 3)
    assert torch.all(torch.linalg.eigvalsh(prob.X_star) > -1e-12)   # PSD
    assert torch.allclose(prob.loss_X(prob.X_star), torch.zeros(2, dtype=torch.float64))


def test_commuting_measurements_commute_and_gaussian_do_not():
    com = SymmetricSensing(n=6, r=2, m=5, measurements="commuting", seed=0).A[0]
    gau = SymmetricSensing(n=6, r=2, m=5, measurements="gaussian", seed=0).A[0]
    bracket = lambda A: (A[0] @ A[1] - A[1] @ A[0]).abs().max().item()
    assert bracket(com) < 1e-12 and bracket(gau) > 1e-2


def test_sensing_measure_adjoint_and_gradient():
    prob = SymmetricSensing(n=5, r=2, m=7, n_instances=2, seed=3)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64)
    v = torch.randn(2, 4, 7, generator=g, dtype=torch.float64)
    # <A(X), v> = <X, A*(v)> (the adjoint), and the measure matches the definition
    lhs = (prob.measure(X) * v).sum()
    rhs = (X * prob.adjoint(v)).sum()
    assert torch.allclose(lhs, rhs)
    direct = torch.einsum("pmij,pkij->pkm", prob.A, X)
    assert torch.allclose(prob.measure(X), direct)
    # grad_X is the gradient of loss_X; and d/dU f(UU^T) = 2 grad f(X) U for symmetric A
    Xs = (X + X.transpose(-1, -2)).requires_grad_(True)
    prob.loss_X(Xs).sum().backward()
    assert torch.allclose(Xs.grad, prob.grad_X(Xs.detach()))
    U = X.clone().requires_grad_(True)
    prob.loss(U).sum().backward()
    assert torch.allclose(U.grad, 2 * prob.grad_X(X @ X.transpose(-1, -2)) @ X)


def test_sensing_relative_error_and_seed():
    prob = SymmetricSensing(n=6, r=2, m=10, n_instances=3, seed=5)
    assert torch.allclose(prob.relative_error(2 * prob.X_star), torch.ones(3, dtype=torch.float64))
    again = SymmetricSensing(n=6, r=2, m=10, n_instances=3, seed=5)
    other = SymmetricSensing(n=6, r=2, m=10, n_instances=3, seed=6)
    assert torch.equal(prob.A, again.A) and not torch.equal(prob.A, other.A)
    with pytest.raises(ValueError):
        SymmetricSensing(n=3, r=4)
    with pytest.raises(ValueError):
        SymmetricSensing(measurements="uniform")


def test_existing_matrix_sensing_unchanged():
    prob = MatrixSensing(n=6, r=2, m=60, seed=0)
    assert prob.loss(prob.U_star[None]).item() == pytest.approx(0.0, abs=1e-20)


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


def test_singular_values_and_nuclear_norm():
    X = torch.diag(torch.tensor([3.0, -2.0, 0.0]))
    assert torch.allclose(singular_values(X), torch.tensor([3.0, 2.0, 0.0]))
    assert nuclear_norm(X).item() == pytest.approx(5.0)
    Q, _ = torch.linalg.qr(torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)))
    Y = Q @ torch.diag(torch.tensor([4.0, 1.0, 0.5, 0.0])) @ Q.transpose(-1, -2)
    assert torch.allclose(nuclear_norm(Y), torch.tensor([5.5, 5.5]), atol=1e-5)


def test_effective_rank():
    assert effective_rank(torch.eye(5)).item() == pytest.approx(5.0)
    assert effective_rank(torch.diag(torch.tensor([2.0, 2.0, 0.0, 0.0]))).item() == pytest.approx(2.0)
    # singular values (3, 1): p = (3/4, 1/4), entropy = -(0.75 ln 0.75 + 0.25 ln 0.25)
    H = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0]))).item() == pytest.approx(math.exp(H))


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
    # the unobserved error ignores the training entries: M* there, zero elsewhere -> error 1/(n^2-m) sum
    W_fit = prob.M_star * prob.train_mask
    unseen = ((prob.M_star * (1 - prob.train_mask)) ** 2).sum((-1, -2)) / (100 - prob.n_train)
    assert torch.allclose(prob.unobserved_error(W_fit), unseen)
    assert torch.allclose(prob.unobserved_error(prob.M_star), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError):
        MatrixCompletion(rows=5, cols=5, n_observed=[3, 4], n_instances=3)
    with pytest.raises(ValueError):
        MatrixCompletion(rows=5, cols=5, n_observed=10, fro_norm=-1.0)


def test_completion_defaults_unchanged_by_new_options():
    a = MatrixCompletion(rows=7, cols=6, r=2, n_observed=20, test_fraction=0.25, n_instances=2, seed=5)
    b = MatrixCompletion(rows=7, cols=6, r=2, n_observed=[20, 20], test_fraction=0.25,
                         n_instances=2, seed=5)
    assert torch.equal(a.M_star, b.M_star) and torch.equal(a.train_mask, b.train_mask)
    assert torch.equal(a.test_mask, b.test_mask) and a.n_train == 15 and a.n_test == 5
    assert torch.allclose(a.loss(a.M_star * 0), b.loss(b.M_star * 0))


def test_completion_min_nuclear_norm_matches_baseline():
    from repro.baselines import completion_operator, min_nuclear_norm

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
