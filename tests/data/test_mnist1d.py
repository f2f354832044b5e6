"""repro.data.mnist1d: generated locally from a seed (never downloaded), identical to the package's
own generator, cached."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from repro import data

from ._layout import check_split

# the module itself (``repro.data.mnist1d`` is the loader function the package re-exports)
mnist1d_module = importlib.import_module("repro.data.mnist1d")


def test_mnist1d_shapes_and_dtypes():
    d = data.mnist1d(seed=0, device="cpu")
    check_split(d, (40,))
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert set(d["y"].unique().tolist()) == set(range(10))
    assert torch.isfinite(d["x"]).all()


def test_mnist1d_same_seed_same_data_different_seed_different_data():
    a = data.mnist1d(seed=3, num_samples=500, device="cpu", cache=False)
    b = data.mnist1d(seed=3, num_samples=500, device="cpu", cache=False)
    c = data.mnist1d(seed=4, num_samples=500, device="cpu", cache=False)
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.allclose(a["x"], c["x"])
    assert a["x"].shape == (400, 40) and a["x_test"].shape == (100, 40)


def test_mnist1d_matches_the_package_generator():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples = 7, 300
    reference = make_dataset(args)
    d = data.mnist1d(seed=7, num_samples=300, device="cpu", cache=False)
    np.testing.assert_allclose(d["x"].numpy(), reference["x"].astype(np.float32))
    np.testing.assert_array_equal(d["y_test"].numpy(), reference["y_test"])


def test_mnist1d_leaves_global_numpy_state_alone():
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    data.mnist1d(seed=1, num_samples=100, device="cpu", cache=False)
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_mnist1d_cache_is_written_and_read(isolated_cache, monkeypatch):
    first = data.mnist1d(seed=2, num_samples=200, device="cpu")
    files = list((isolated_cache / "mnist1d").glob("*.npz"))
    assert len(files) == 1

    def must_not_generate(*args, **kwargs):
        raise AssertionError("regenerated although the cache holds these arguments")

    monkeypatch.setattr(mnist1d_module, "_generate_mnist1d", must_not_generate)
    second = data.mnist1d(seed=2, num_samples=200, device="cpu")
    for key in first:
        assert torch.equal(first[key], second[key])
    # other arguments are a different cache entry (and so must be generated)
    with pytest.raises(AssertionError, match="regenerated"):
        data.mnist1d(seed=2, num_samples=200, device="cpu", iid_noise_scale=0.05)


def test_mnist1d_refuses_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset argument"):
        data.mnist1d(seed=0, num_samples=100, not_a_field=1)
    with pytest.raises(ValueError, match="seed"):
        data.mnist1d(seed=-1)
