"""repro.checks: the validators (value returned, one-line message naming the argument),
check_finite and Diverged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import repro
from repro.checks import (
    Diverged,
    check_finite,
    in_unit_interval,
    nonnegative,
    nonnegative_int,
    one_of,
    positive,
    positive_int,
)


def test_top_level_names_are_the_checks_module():
    assert repro.Diverged is Diverged and repro.check_finite is check_finite
    assert issubclass(Diverged, RuntimeError)


@pytest.mark.parametrize("value", [1.0, 0, -3, torch.tensor([1.0, 2.0]), np.float64(5)])
def test_check_finite_passes_finite_values(value):
    check_finite(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf,
                                   torch.tensor([1.0, math.nan]), torch.tensor(math.inf)])
def test_check_finite_raises_diverged_with_where(value):
    with pytest.raises(Diverged, match="training loss became non-finite at step 7") as info:
        check_finite(value, "training loss", 7)
    assert "\n" not in str(info.value) and "step size" in str(info.value)
    with pytest.raises(Diverged, match="^loss became non-finite: the run diverged"):
        check_finite(value)


def test_integer_validators():
    assert positive_int("n", 3) == 3 and type(positive_int("n", np.int64(3))) is int
    assert nonnegative_int("n", 0) == 0
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got"):
            positive_int("n", bad)
    for bad in (-1, 0.0, False, None):
        with pytest.raises(ValueError, match=r"^k must be an integer >= 0, got"):
            nonnegative_int("k", bad)


def test_positive_accepts_anything_float_accepts_but_bools():
    assert positive("lr", 0.1) == 0.1
    assert positive("lr", 2) == 2.0 and type(positive("lr", 2)) is float
    assert positive("lr", np.float32(0.5)) == 0.5
    assert positive("lr", torch.tensor(0.25)) == 0.25
    for bad in (0, -1.0, math.nan, True, "x", None, torch.tensor([1.0, 2.0])):
        with pytest.raises(ValueError, match=r"^lr must be > 0, got"):
            positive("lr", bad)


def test_nonnegative_and_unit_interval():
    assert nonnegative("sigma", 0) == 0.0 and nonnegative("sigma", 2.5) == 2.5
    for bad in (-1e-9, math.nan, True, "0", None):
        with pytest.raises(ValueError, match=r"^sigma must be a number >= 0, got"):
            nonnegative("sigma", bad)
    assert in_unit_interval("beta", 0.0) == 0.0 and in_unit_interval("beta", 0.999) == 0.999
    with pytest.raises(ValueError, match=r"^beta must be in \[0, 1\), got 1"):
        in_unit_interval("beta", 1.0)
    assert in_unit_interval("p", 1.0, closed_right=True) == 1.0
    for bad in (-0.1, 1.5, math.nan, True):
        with pytest.raises(ValueError, match=r"^p must be in \[0, 1\]"):
            in_unit_interval("p", bad, closed_right=True)


def test_one_of():
    assert one_of("noise", "gaussian", ("gaussian", "bernoulli")) == "gaussian"
    with pytest.raises(ValueError, match=r"^unknown noise 'laplace'; use one of \('gaussian',"):
        one_of("noise", "laplace", ["gaussian", "bernoulli"])


def test_finite_watch_raises_at_the_first_bad_step_when_read():
    from repro.checks import FiniteWatch

    watch = FiniteWatch("training loss")
    watch.check()                                       # nothing seen: nothing to say
    for step, value in enumerate([1.0, 2.0, 3.0, math.inf, math.nan, 1.0]):
        watch.update(torch.tensor([value, 0.0]), step)
        if step == 2:
            watch.check()                               # finite so far
    with pytest.raises(Diverged, match="training loss became non-finite at step 3"):
        watch.check()


def test_a_watch_with_every_reads_itself_after_every_kth_update():
    from repro.checks import FiniteWatch

    watch = FiniteWatch("loss", every=4)
    for step in range(3):                       # steps 0..2 finite, step 3 not: read at once
        watch.update(torch.tensor([1.0]), step)
    with pytest.raises(Diverged, match="at step 3"):
        watch.update(torch.tensor([float("nan")]), 3)
    late = FiniteWatch("loss", every=4)
    late.update(torch.tensor([float("inf")]), 0)      # not read yet: no raise before the 4th
    for step in range(1, 3):
        late.update(torch.tensor([1.0]), step)
    with pytest.raises(Diverged, match="at step 0"):
        late.update(torch.tensor([1.0]), 3)
    with pytest.raises(ValueError, match="every"):
        FiniteWatch("loss", every=0)
