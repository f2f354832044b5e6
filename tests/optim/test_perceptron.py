"""repro.optim.perceptron: the batch perceptron's steps against hand-computed iterates."""

import pytest
import torch

from repro.optim import PerRunBatchPerceptron, perceptron_direction

F64 = torch.float64
A = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)    # a_1 labelled +1, a_2 labelled -1
Y = torch.tensor([1.0, -1.0], dtype=F64)


def test_two_steps_by_hand():
    x = torch.zeros(2, 2, dtype=F64, requires_grad=True)
    opt = PerRunBatchPerceptron([x], torch.tensor([1.0, 3.0], dtype=F64), A, Y)
    opt.step()
    # from 0 both scores are 0, each point weighs 1/2: x = lr * (1/2) * mean(y_i a_i)
    #   = lr * (1/2) * ((1, 0) + (0, -2)) / 2 = lr * (0.25, -0.5)
    torch.testing.assert_close(x.detach(), torch.tensor([[0.25, -0.5], [0.75, -1.5]], dtype=F64))
    opt.step()   # now z = (0.25 lr, 1.0 lr) > 0: nothing is misclassified, nothing moves
    torch.testing.assert_close(x.detach(), torch.tensor([[0.25, -0.5], [0.75, -1.5]], dtype=F64))


def test_only_misclassified_points_count():
    x = torch.tensor([[1.0, 1.0]], dtype=F64)     # z = (1, -2): only a_2 is misclassified
    torch.testing.assert_close(perceptron_direction(x, A, Y),
                               torch.tensor([[0.0, -1.0]], dtype=F64))   # (1/2) * (-1) * (0, 2)


def test_runs_use_data_sets_in_grid_order():
    # two data sets (B = 2), four runs: runs 0 and 2 use data set 0, runs 1 and 3 data set 1
    A2 = torch.stack([A, -A])
    x = torch.zeros(4, 2, dtype=F64)
    d = perceptron_direction(x, A2, torch.stack([Y, Y]))
    torch.testing.assert_close(d, torch.tensor([[0.25, -0.5], [-0.25, 0.5]] * 2, dtype=F64))
    with pytest.raises(ValueError):
        PerRunBatchPerceptron([torch.zeros(3, 2)], torch.ones(3), A2, torch.stack([Y, Y]))


def test_a_score_within_rounding_of_zero_is_a_tie():
    # z_2 = 1e-17 relative to |a_2| |x|: on the boundary, weight 1/2, as sigma(-gamma z) gives
    x = torch.tensor([[1.0, 1e-17]], dtype=F64)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    y = torch.tensor([1.0, 1.0], dtype=F64)
    torch.testing.assert_close(perceptron_direction(x, a, y),
                               torch.tensor([[0.0, 0.25]], dtype=F64))   # (1/2) * (1/2) * (0, 1)
