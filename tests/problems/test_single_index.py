"""repro.problems.single_index: labels by hand, the links, batching, seeding, the exact variance."""

import math

import pytest
import torch

from repro.problems import PROBLEMS, SingleIndexTeacher

link = SingleIndexTeacher.link


def test_exported_but_not_a_registered_loss():
    # a data generator, not a loss over batched parameters: outside the PROBLEMS registry, whose
    # family test asks every entry for one loss per batch element
    assert "single_index" not in PROBLEMS
    import repro.problems
    assert repro.problems.SingleIndexTeacher is SingleIndexTeacher


def test_labels_are_the_quadratic_of_the_index_by_hand():
    p = SingleIndexTeacher(d=4, n_train=3, n_test=2, seed=1)
    for x, y in ((p.x_train, p.y_train), (p.x_test, p.y_test)):
        for i in range(len(x)):
            z = float(sum(p.beta[k] * x[i, k] for k in range(4))) / 2.0   # sqrt(d) = 2
            assert float(y[i]) == pytest.approx(z * z / 2, rel=1e-12)


def test_links():
    z = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(link("quadratic", z), torch.tensor([2.0, 0.0, 4.5],
                                                                  dtype=torch.float64))
    torch.testing.assert_close(link("linear", z), z)
    torch.testing.assert_close(link("hermite2", z), (z * z - 1) / math.sqrt(2))
    with pytest.raises(ValueError):
        link("cubic", z)
    with pytest.raises(ValueError):
        SingleIndexTeacher(target="cubic")


def test_shapes_batching_and_seed():
    p = SingleIndexTeacher(d=5, n_train=7, n_test=3, batch=2, seed=3)
    assert p.x_train.shape == (2, 7, 5) and p.y_train.shape == (2, 7)
    assert p.x_test.shape == (2, 3, 5) and p.beta.shape == (2, 5)
    q = SingleIndexTeacher(d=5, n_train=7, n_test=3, batch=2, seed=3)
    torch.testing.assert_close(p.x_train, q.x_train)
    assert not torch.equal(p.beta[0], p.beta[1])
    torch.testing.assert_close(p.labels(p.x_test), p.y_test)


@pytest.mark.parametrize("target", ["quadratic", "linear", "hermite2"])
def test_constant_risk_is_the_variance_of_the_labels(target):
    p = SingleIndexTeacher(d=3, n_train=1, n_test=400_000, target=target, seed=0)
    var = p.y_test.var()
    assert float(var) == pytest.approx(float(p.constant_risk()), rel=0.02)
