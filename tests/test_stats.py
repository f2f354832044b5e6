"""repro.stats: mean, standard error, log-log slope and paired differences over seeds, against
numpy and hand values (and the chapters' old helpers they replace)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repro.stats import Paired, mean, paired, sem, slope


def test_mean_of_lists_arrays_and_tensors():
    assert mean([1, 2, 3, 4]) == 2.5
    assert isinstance(mean(np.arange(4)), float)
    assert mean(torch.tensor([1.0, 2.0])) == 1.5
    assert mean([[1.0, 2.0], [3.0, 6.0]]) == 3.0


def test_mean_and_sem_equal_chapter_10s_helpers():
    # the old notebook helpers, verbatim: float(np.mean(xs)), np.std(ddof=1) / sqrt(n)
    xs = [0.3, 1.7, 2.2, -0.4, 5.0]
    assert mean(xs) == float(np.mean(xs))
    assert sem(xs) == float(np.std(xs, ddof=1) / np.sqrt(len(xs)))


def test_sem_by_hand_and_for_one_value():
    # values 1, 2, 3: sample standard deviation 1, standard error 1 / sqrt(3)
    assert sem([1.0, 2.0, 3.0]) == pytest.approx(1 / math.sqrt(3), rel=1e-15)
    assert sem([[1.0, 2.0], [3.0, 4.0]]) == pytest.approx(sem([1, 2, 3, 4]))     # flattened
    assert math.isnan(sem([4.2]))
    assert sem([2.0, 2.0, 2.0]) == 0.0


@pytest.mark.parametrize("k", [-1.0, 0.5, 2.0, 3.0])
def test_slope_recovers_a_power_law(k):
    xs = np.array([0.01, 0.1, 1.0, 10.0, 50.0])
    assert slope(xs, 3.7 * xs**k) == pytest.approx(k, abs=1e-12)


def test_slope_is_np_polyfit_on_the_logs():
    # chapters 2 and 3 defined it as exactly this; the library must give identical numbers
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(0.1, 10, 8), rng.uniform(0.1, 10, 8)
    assert slope(xs, ys) == float(np.polyfit(np.log(xs), np.log(ys), 1)[0])
    assert slope(list(xs), tuple(ys)) == slope(xs, ys)


@pytest.mark.parametrize("xs,ys,match", [
    ([1.0], [2.0], ">= 2 points"),
    ([1.0, 2.0], [1.0, 2.0, 3.0], "equal-length"),
    ([1.0, 0.0], [1.0, 2.0], "positive"),
    ([1.0, 2.0], [1.0, -2.0], "positive"),
])
def test_slope_refuses_bad_input(xs, ys, match):
    with pytest.raises(ValueError, match=match):
        slope(xs, ys)


def test_paired_difference_seed_by_seed():
    a, b = [3.0, 5.0, 4.0, 6.0], [1.0, 2.0, 2.0, 3.0]
    out = paired(a, b)
    d = np.subtract(a, b)                                            # 2, 3, 2, 3
    assert out == Paired(mean=2.5, sem=float(np.std(d, ddof=1) / 2), n=4)
    assert out.z == pytest.approx(2.5 / out.sem)
    assert out.as_dict() == {"mean": 2.5, "sem": out.sem, "n": 4}
    # paired, not two means: a shift common to both seeds cancels
    shifted = paired(np.add(a, [100, -50, 7, 0]), np.add(b, [100, -50, 7, 0]))
    assert shifted.mean == pytest.approx(out.mean) and shifted.sem == pytest.approx(out.sem)


def test_paired_z_when_the_standard_error_is_zero_or_undefined():
    assert paired([2.0, 3.0], [1.0, 2.0]).z == math.inf           # every difference +1
    assert paired([1.0, 2.0], [2.0, 3.0]).z == -math.inf
    assert paired([1.0, 2.0], [1.0, 2.0]).z == 0.0                 # no difference at all
    one = paired([2.0], [1.0])
    assert one.n == 1 and math.isnan(one.sem) and one.z == math.inf


@pytest.mark.parametrize("a,b", [([1.0, 2.0], [1.0]), ([], [])])
def test_paired_refuses_bad_input(a, b):
    with pytest.raises(ValueError, match="equal-length, non-empty"):
        paired(a, b)


def test_tensors_are_read_on_any_device_as_numbers_are():
    values = [0.1, 0.4, 0.35, 0.9]
    t = torch.tensor(values, dtype=torch.float32)
    assert mean(t) == mean(t.tolist()) and sem(t) == sem(t.tolist())
    assert mean(list(t)) == mean(t)                                   # a list of 0-d tensors
    assert paired(t, t.flip(0)).as_dict() == paired(t.tolist(), t.flip(0).tolist()).as_dict()
    if torch.cuda.is_available():                                     # a GPU tensor
        assert mean(t.cuda()) == mean(t)
