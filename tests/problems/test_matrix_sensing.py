"""repro.problems.matrix_sensing: MatrixSensing and SymmetricSensing (Gaussian or commuting
measurements) against exact answers."""

import math

import pytest
import torch

from repro import generator
from repro.problems import MatrixSensing, SymmetricSensing


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

    def bracket(A):
        return (A[0] @ A[1] - A[1] @ A[0]).abs().max().item()

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


def test_matrix_sensing():
    prob = MatrixSensing(n=6, r=2, m=60, seed=0)
    assert prob.A.shape == (60, 6, 6) and torch.equal(prob.A, prob.A.transpose(1, 2))
    Q, _ = torch.linalg.qr(torch.randn(2, 2, generator=generator(5), dtype=torch.float64))
    U = torch.stack([prob.U_star, prob.U_star @ Q])  # the factor is defined up to a rotation
    assert torch.all(prob.loss(U) < 1e-25) and torch.all(prob.recovery_error(U) < 1e-12)
    U0 = prob.start(0.1, k=6, n_seeds=3, generator=generator(0))
    assert U0.shape == (3, 6, 6) and prob.loss(U0).shape == (3,)
    torch.testing.assert_close(prob.recovery_error(torch.zeros(6, 6, dtype=torch.float64)),
                               torch.tensor(1.0, dtype=torch.float64))
    # loss by hand for one factor
    M = U0[0] @ U0[0].T
    by_hand = sum((torch.sum(prob.A[i] * M) - prob.y[i]) ** 2 for i in range(60)) / (4 * 60)
    torch.testing.assert_close(prob.loss(U0[0]), by_hand)
    assert math.isclose(float(torch.linalg.matrix_norm(prob.X_star) ** 2), 2.0, rel_tol=1e-12)
