"""repro.problems.multitask_toy: the two-objective toy of Nash-MTL's Fig. 1 by hand, its task
gradients, its Pareto front."""

import math

import torch

from repro.problems import ToyTwoObjectives


def test_toy_problem_values_and_front():
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
