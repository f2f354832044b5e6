"""repro.data.label_noise: exact counts, masks that say exactly which labels changed, flips that
never land on the true class, one rate per row, determinism, and subsets."""

import pytest
import torch

from repro import generator
from repro.data import subset, symmetric_label_noise, with_label_noise


def labels(n=200, classes=10, seed=0):
    return torch.randint(0, classes, (n,), generator=generator(seed))


def test_exact_count_and_mask():
    y = labels()
    noisy, flipped = symmetric_label_noise(y, 0.4, num_classes=10, generator=generator(1))
    assert flipped.sum() == 80                       # round(0.4 * 200), exactly
    assert torch.equal(flipped, noisy != y)          # the mask is exactly where labels changed
    assert noisy.dtype == y.dtype and noisy.shape == y.shape
    assert int(noisy.min()) >= 0 and int(noisy.max()) <= 9


def test_rounding_of_the_count():
    y = labels(n=7)
    _, flipped = symmetric_label_noise(y, 0.5, num_classes=10, generator=generator(1))
    assert flipped.sum() == round(3.5)               # Python's round: 4


def test_new_labels_are_uniform_over_the_other_classes():
    y = torch.zeros(30000, dtype=torch.int64)         # every true label is class 0
    noisy, flipped = symmetric_label_noise(y, 1.0, num_classes=4, generator=generator(2))
    assert bool(flipped.all()) and not bool((noisy == 0).any())
    share = torch.bincount(noisy, minlength=4)[1:].double() / len(y)
    torch.testing.assert_close(share, torch.full((3,), 1 / 3, dtype=torch.float64), rtol=0,
                               atol=0.01)            # 3 standard errors are about 0.008


def test_one_rate_per_row_and_independent_rows():
    y = labels().expand(3, -1)
    noisy, flipped = symmetric_label_noise(y, [0.0, 0.1, 0.5], num_classes=10,
                                           generator=generator(3))
    assert flipped.sum(1).tolist() == [0, 20, 100]
    assert torch.equal(noisy[0], y[0])
    same = symmetric_label_noise(y[:2], 0.5, num_classes=10, generator=generator(4))[1]
    assert not torch.equal(same[0], same[1])         # each row draws its own flips


def test_same_generator_same_noise():
    y = labels()
    a = symmetric_label_noise(y, 0.3, 10, generator(5))
    b = symmetric_label_noise(y, 0.3, 10, generator(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_argument_checks():
    y = labels()
    with pytest.raises(ValueError, match="rate"):
        symmetric_label_noise(y, 1.5, 10)
    with pytest.raises(ValueError, match="rates"):
        symmetric_label_noise(y.expand(2, -1), [0.1, 0.2, 0.3], 10)
    with pytest.raises(ValueError, match="labels must lie"):
        symmetric_label_noise(y, 0.1, num_classes=3)
    with pytest.raises(ValueError, match="integer"):
        symmetric_label_noise(y.float(), 0.1, 10)


def toy_data():
    return {"x": torch.arange(20.0).reshape(10, 2), "y": torch.arange(10) % 5,
            "x_test": torch.zeros(4, 2), "y_test": torch.tensor([0, 1, 2, 4])}


def test_with_label_noise_keeps_the_test_set_and_the_clean_labels():
    data = toy_data()
    noisy = with_label_noise(data, 0.5, generator=generator(6))
    assert torch.equal(noisy["y_clean"], data["y"]) and torch.equal(noisy["y_test"], data["y_test"])
    assert noisy["flipped"].sum() == 5 and torch.equal(noisy["flipped"], noisy["y"] != data["y"])
    per_run = with_label_noise(data, [0.0, 0.2], generator=generator(6), runs=2)
    assert per_run["y"].shape == (2, 10) and per_run["flipped"].sum(1).tolist() == [0, 2]


def test_subset_cuts_every_training_field_alike():
    data = with_label_noise(toy_data(), 0.4, generator=generator(7), runs=3)
    part = subset(data, 4, generator=generator(8))
    assert part["x"].shape == (4, 2)
    assert part["y"].shape == (3, 4) and part["flipped"].shape == (3, 4)
    rows = (part["x"][:, 0] / 2).long()              # x[i] = (2i, 2i + 1) names example i
    assert torch.equal(part["y"], data["y"][:, rows])
    assert torch.equal(part["y_clean"], data["y_clean"][rows])
    assert torch.equal(part["x_test"], data["x_test"])
    assert torch.equal(subset(data, 3)["x"], data["x"][:3])
    with pytest.raises(ValueError, match="subset size"):
        subset(data, 11)
