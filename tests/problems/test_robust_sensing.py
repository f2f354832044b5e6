"""repro.problems.robust_sensing: the outlier masks, the l1 loss and its subgradient against
exact answers."""

import pytest
import torch

from repro import generator
from repro.problems import PROBLEMS, RobustSensing

F64 = torch.float64


def test_masks_are_nested_with_exact_counts():
    prob = RobustSensing(n=4, r=1, m=40, n_instances=3, fractions=(0.0, 0.1, 0.25), seed=2)
    assert prob.y.shape == (3, 3, 40) and prob.mask.shape == (3, 3, 40)
    assert prob.mask.sum(-1).tolist() == [[0, 4, 10]] * 3
    assert torch.all(prob.mask[:, 1] <= prob.mask[:, 2])                 # nested
    # off the mask y is the clean measurement; on it, clean + the same outlier at every fraction
    torch.testing.assert_close(prob.y[:, 0], prob.clean, rtol=0, atol=0)
    diff = prob.y - prob.clean[:, None]
    torch.testing.assert_close(diff, prob.mask * prob.outliers[:, None], rtol=0, atol=1e-12)
    assert PROBLEMS["robust_sensing"] is RobustSensing


def test_l1_loss_at_the_truth_is_the_mean_outlier_size():
    prob = RobustSensing(n=5, r=2, m=30, n_instances=2, fractions=(0.0, 0.2), seed=0)
    U = prob.sensing.X_star.new_zeros(2, 2, 1, 5, 5)
    # a factor of X* itself: U = X* (X* is a projection, so X* X*^T = X*)
    U[:] = prob.X_star[:, None, None]
    loss = prob.loss(U)[..., 0]
    torch.testing.assert_close(loss[:, 0], torch.zeros(2, dtype=F64), rtol=0, atol=1e-12)
    expected = (prob.mask[:, 1] * prob.outliers).abs().sum(-1) / 30
    torch.testing.assert_close(loss[:, 1], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(prob.loss_l2(U)[..., 0][:, 1],
                               (prob.mask[:, 1] * prob.outliers).pow(2).sum(-1) / 60,
                               rtol=1e-12, atol=1e-12)


def test_subgradient_matches_autograd_and_the_hand_formula():
    prob = RobustSensing(n=4, r=1, m=9, n_instances=2, fractions=(0.0, 0.3), seed=1)
    U = torch.randn(2, 2, 3, 4, 2, generator=generator(5), dtype=F64)
    Ug = U.clone().requires_grad_(True)
    ref = torch.autograd.grad(prob.loss(Ug).sum(), Ug)[0]
    torch.testing.assert_close(prob.subgradient(U), ref, rtol=1e-12, atol=1e-12)
    # one point by hand: (2/m) sum_i sign(<A_i, U U^T> - y_i) A_i U
    u = U[1, 1, 2]
    A, y = prob.A[1], prob.y[1, 1]
    s = torch.sign(torch.einsum("ijk,jk->i", A, u @ u.T) - y)
    by_hand = 2 / 9 * torch.einsum("i,ijk->jk", s, A) @ u
    torch.testing.assert_close(prob.subgradient(U)[1, 1, 2], by_hand,
                               rtol=1e-12, atol=1e-12)


def test_start_is_shared_across_fractions_and_scaled():
    prob = RobustSensing(n=6, r=2, m=20, n_instances=2, fractions=(0.0, 0.2, 0.4), seed=0)
    U = prob.start([1.0, 1e-3], k=3, generator=generator(0))
    assert U.shape == (2, 3, 2, 6, 3)
    torch.testing.assert_close(U[:, 0], U[:, 2], rtol=0, atol=0)
    torch.testing.assert_close(U[:, :, 1], 1e-3 * U[:, :, 0], rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="fractions"):
        RobustSensing(fractions=(1.0,))
