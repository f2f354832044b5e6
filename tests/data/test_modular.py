"""repro.data.modular: the table by hand, the split sizes, an exact corruption mask that never
lands on the true class, clean test labels, the registry's layout and determinism."""

import pytest
import torch

from repro.data import DATASETS, modular_arithmetic, modular_table, one_hot_pairs

from ._layout import check_split


def test_table_by_hand():
    pairs, y = modular_table(3)
    assert pairs.tolist() == [[a, b] for a in range(3) for b in range(3)]
    assert y.tolist() == [0, 1, 2, 1, 2, 0, 2, 0, 1]
    _, ym = modular_table(3, "multiplication")
    assert ym.tolist() == [0, 0, 0, 0, 1, 2, 0, 2, 1]
    with pytest.raises(ValueError):
        modular_table(3, "division")


def test_one_hot_pairs():
    x = one_hot_pairs(torch.tensor([[1, 2]]), 3)
    assert x.tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]] and x.dtype == torch.float32


def test_split_and_exact_corruption():
    d = modular_arithmetic(11, train_fraction=0.5, corruption=0.2, seed=3, device="cpu")
    assert len(d["y"]) == round(0.5 * 121) == 60 and len(d["y_test"]) == 61
    assert int(d["corrupted"].sum()) == round(0.2 * 60) == 12
    # the mask is exactly where the label is wrong, and the clean labels are the rule
    assert torch.equal(d["corrupted"], d["y"] != d["y_clean"])
    assert torch.equal(d["y_clean"], d["pairs"].sum(1) % 11)
    assert torch.equal(d["y_test"], d["pairs_test"].sum(1) % 11)
    # train and test together are the whole table, each pair once
    every = torch.cat([d["pairs"], d["pairs_test"]])
    assert len({tuple(r) for r in every.tolist()}) == 121
    assert torch.equal(d["x"], one_hot_pairs(d["pairs"], 11)) and d["p"] == 11


def test_registry_layout_and_determinism():
    assert DATASETS["modular"] is modular_arithmetic
    d = modular_arithmetic(7, 0.6, 0.1, seed=1, device="cpu")
    check_split({k: d[k] for k in ("x", "y", "x_test", "y_test")}, (14,))
    e = modular_arithmetic(7, 0.6, 0.1, seed=1, device="cpu")
    assert all(torch.equal(d[k], e[k]) for k in ("y", "corrupted", "pairs"))
    f = modular_arithmetic(7, 0.6, 0.1, seed=2, device="cpu")
    assert not torch.equal(d["pairs"], f["pairs"])


def test_no_corruption_and_bad_input():
    d = modular_arithmetic(5, 0.5, 0.0, device="cpu")
    assert not bool(d["corrupted"].any()) and torch.equal(d["y"], d["y_clean"])
    for kwargs in ({"train_fraction": 0.0}, {"train_fraction": 1.0}, {"corruption": 1.5}):
        with pytest.raises(ValueError):
            modular_arithmetic(5, **{"train_fraction": 0.5, **kwargs}, device="cpu")
