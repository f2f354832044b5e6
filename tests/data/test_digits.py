"""repro.data.digits: scikit-learn's bundled digits, scaled, split with a seed, stratified."""

from __future__ import annotations

import pytest
import torch

from repro import data

from ._layout import check_split


def test_digits_split_and_scaling():
    d = data.digits(seed=0, test_fraction=0.25, device="cpu")
    check_split(d, (64,))
    n_train, n_test = len(d["y"]), len(d["y_test"])
    assert n_train + n_test == 1797
    assert abs(n_test / 1797 - 0.25) < 0.01
    for x in (d["x"], d["x_test"]):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert d["x"].max() == 1.0
    # stratified: every class has about a quarter of its examples in the test set
    for label in range(10):
        in_test = int((d["y_test"] == label).sum())
        total = in_test + int((d["y"] == label).sum())
        assert abs(in_test - 0.25 * total) <= 1


def test_digits_split_follows_the_seed():
    a, b, c = (data.digits(seed=s, device="cpu") for s in (0, 0, 1))
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y_test"], b["y_test"])
    assert not torch.equal(a["x"], c["x"])
    with pytest.raises(ValueError, match="test_fraction"):
        data.digits(test_fraction=1.5)
