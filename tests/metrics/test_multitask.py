"""repro.metrics.multitask: Delta_m and the mean rank of methods on hand values."""

import numpy as np
import pytest

from repro.metrics import delta_m, mean_rank


def test_delta_m_and_mean_rank():
    # Delta_m: one error metric 10% worse, one accuracy 10% better: mean of +10 and -10 is 0
    assert delta_m([1.1, 0.88], [1.0, 0.8], [False, True]) == pytest.approx(0.0)
    assert delta_m([2.0], [1.0], [False]) == pytest.approx(100.0)
    ranks = mean_rank([[1.0, 3.0], [2.0, 1.0], [3.0, 2.0]])
    np.testing.assert_allclose(ranks, [2.0, 1.5, 2.5])
