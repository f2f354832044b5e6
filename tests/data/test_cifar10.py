"""repro.data: mnist1d generated from a seed, scikit-learn digits, CIFAR-10 from disk or a URL.

Nothing here touches the network: CIFAR-10 is a tiny fake archive built in tmp_path and fetched
through a file:// URL, and sockets are disabled while those tests run.
"""

from __future__ import annotations

import hashlib
import pickle
import socket
import tarfile

import numpy as np
import pytest
import torch

from repro import data


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own book root and cache, so no test sees another's files."""
    monkeypatch.setenv("REPRO_ROOT", str(tmp_path / "book"))
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _check_split(d, n_features):
    assert set(d) == {"x", "y", "x_test", "y_test"}
    assert d["x"].dtype == torch.float32 and d["x_test"].dtype == torch.float32
    assert d["y"].dtype == torch.int64 and d["y_test"].dtype == torch.int64
    assert d["x"].shape[1:] == d["x_test"].shape[1:] == n_features
    assert d["x"].shape[0] == d["y"].shape[0] and d["x_test"].shape[0] == d["y_test"].shape[0]
    assert d["x"].device.type == d["y_test"].device.type


# ---------------------------------------------------------------------------------------------
# mnist1d


def test_mnist1d_shapes_and_dtypes():
    d = data.mnist1d(seed=0, device="cpu")
    _check_split(d, (40,))
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

    monkeypatch.setattr(data, "_generate_mnist1d", must_not_generate)
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


# ---------------------------------------------------------------------------------------------
# digits


def test_digits_split_and_scaling():
    d = data.digits(seed=0, test_fraction=0.25, device="cpu")
    _check_split(d, (64,))
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


# ---------------------------------------------------------------------------------------------
# CIFAR-10 (a fake copy: the standard layout with 4 images per batch)

N_PER_BATCH = 4


def _fake_batch(index: int) -> dict:
    rng = np.random.default_rng(index)
    images = rng.integers(0, 256, size=(N_PER_BATCH, 3072), dtype=np.uint8)
    # pixel 0 of image 0 takes a known value in each channel, to check the normalisation
    images[0, 0], images[0, 1024], images[0, 2048] = 0, 128, 255
    labels = [(index + k) % 10 for k in range(N_PER_BATCH)]
    return {b"batch_label": b"fake", b"data": images, b"labels": labels}


def _write_fake_cifar(folder):
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate(data.CIFAR10_TRAIN + data.CIFAR10_TEST):
        batches[name] = _fake_batch(i)
        with open(folder / name, "wb") as handle:
            pickle.dump(batches[name], handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [b"c%d" % k for k in range(10)]}, handle)
    return batches


def _fake_archive(tmp_path):
    source = tmp_path / "source"
    _write_fake_cifar(source / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return archive.as_uri(), md5


def _check_fake_cifar(d):
    _check_split(d, (3, 32, 32))
    assert d["x"].shape == (5 * N_PER_BATCH, 3, 32, 32)
    assert d["x_test"].shape == (N_PER_BATCH, 3, 32, 32)
    assert d["y"][:N_PER_BATCH].tolist() == [0, 1, 2, 3]
    assert d["y_test"].tolist() == [5, 6, 7, 8]
    mean, std = torch.tensor(data.CIFAR10_MEAN), torch.tensor(data.CIFAR10_STD)
    expected = (torch.tensor([0.0, 128.0, 255.0]) / 255.0 - mean) / std
    torch.testing.assert_close(d["x"][0, :, 0, 0], expected)
    torch.testing.assert_close(d["x_test"][0, :, 0, 0], expected)


def test_cifar10_reads_a_local_folder(tmp_path, no_network):
    batches = _write_fake_cifar(tmp_path / "cifar" / "cifar-10-batches-py")
    d = data.cifar10(root=tmp_path / "cifar", device="cpu")
    _check_fake_cifar(d)
    # the image layout: 1024 red, then green, then blue values, rows of 32
    raw = batches["data_batch_2"][b"data"][1].reshape(3, 32, 32)
    mean, std = np.array(data.CIFAR10_MEAN), np.array(data.CIFAR10_STD)
    np.testing.assert_allclose(
        d["x"][N_PER_BATCH + 1].numpy(),
        (raw / 255.0 - mean[:, None, None]) / std[:, None, None],
        rtol=1e-5, atol=1e-5,
    )
    # pointing at the batches folder itself works too
    _check_fake_cifar(data.cifar10(root=tmp_path / "cifar" / "cifar-10-batches-py", device="cpu"))


def test_cifar10_downloads_from_a_url(tmp_path, no_network):
    url, md5 = _fake_archive(tmp_path)
    root = tmp_path / "downloaded"
    d = data.cifar10(root=root, download=True, url=url, md5=md5, device="cpu")
    _check_fake_cifar(d)
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert [p.name for p in root.iterdir()] == ["cifar-10-batches-py"]  # no leftovers
    # a second call reads the copy on disk without fetching again
    _check_fake_cifar(data.cifar10(root=root, url="file:///nonexistent.tar.gz", device="cpu"))


def test_cifar10_download_into_the_default_cache(tmp_path, isolated_cache, no_network):
    url, _ = _fake_archive(tmp_path)
    _check_fake_cifar(data.cifar10(download=True, url=url, md5=None, device="cpu"))
    assert (isolated_cache / "cifar10" / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_cifar10_download_refuses_a_wrong_checksum(tmp_path, no_network):
    url, md5 = _fake_archive(tmp_path)
    root = tmp_path / "downloaded"
    with pytest.raises(OSError, match="md5"):
        data.cifar10(root=root, download=True, url=url, md5="0" * 32)
    assert list(root.iterdir()) == []  # nothing half-done is left behind


def test_cifar10_missing_says_where_and_how(tmp_path, isolated_cache, no_network):
    root = tmp_path / "nowhere"
    with pytest.raises(data.DatasetMissing) as caught:
        data.cifar10(root=root)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(root / "cifar-10-batches-py") in message
    assert "repro.data.cifar10(download=True" in message and "copy" in message
    assert not root.exists()  # looking does not create anything

    with pytest.raises(FileNotFoundError) as caught:
        data.cifar10()
    assert str(isolated_cache / "cifar10" / "cifar-10-batches-py") in str(caught.value)
    assert "repro.data.cifar10(download=True)" in str(caught.value)


# --- MNIST: tiny IDX files written here; downloads go through file:// URLs -------------------

def _write_idx(path, array, gz):
    import gzip
    import struct

    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as handle:
        handle.write(payload)
    return payload


def _fake_mnist(folder, gz=True, n_train=5, n_test=3):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        _write_idx(folder / (name + (".gz" if gz else "")), array, gz)
    return arrays


def test_read_idx_exact_values_gz_and_plain(tmp_path):
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.idx", values, gz=False)
    _write_idx(tmp_path / "a.idx.gz", values, gz=True)
    for name in ("a.idx", "a.idx.gz"):
        out = data.read_idx(tmp_path / name)
        assert out.shape == (2, 3, 4) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, values)
    ints = np.array([1, -2, 70000], dtype=">i4")
    _write_idx(tmp_path / "b.idx", ints, gz=False)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "b.idx"), [1, -2, 70000])


def test_read_idx_refuses_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(ValueError, match="bytes"):
        data.read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_a_local_folder(tmp_path, no_network, gz):
    arrays = _fake_mnist(tmp_path / "mnist", gz=gz)
    d = data.mnist(root=tmp_path / "mnist", device="cpu")
    assert d["x"].shape == (5, 1, 28, 28) and d["x_test"].shape == (3, 1, 28, 28)
    assert d["x"].dtype == torch.float32 and d["y"].dtype == torch.int64
    np.testing.assert_allclose(d["x"][:, 0].numpy(), arrays["train-images-idx3-ubyte"] / 255.0,
                               rtol=0, atol=1e-7)
    np.testing.assert_array_equal(d["y_test"].numpy(), arrays["t10k-labels-idx1-ubyte"])
    flat = data.mnist(root=tmp_path / "mnist", device="cpu", flatten=True)
    assert flat["x"].shape == (5, 784)
    assert torch.equal(flat["x"], d["x"].reshape(5, -1))


def test_mnist_downloads_from_a_url(tmp_path, no_network):
    source = tmp_path / "mirror"
    arrays = _fake_mnist(source, gz=True)
    target = tmp_path / "where"
    with pytest.raises(OSError, match="md5"):  # the fake files do not have MNIST's checksums
        data.mnist(root=target, download=True, url=source.as_uri(), device="cpu")
    assert not list(target.glob("*.part"))  # a failed download leaves nothing behind
    d = data.mnist(root=target, download=True, url=source.as_uri() + "/", device="cpu", md5=False)
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{n}.gz" for n in arrays)
    np.testing.assert_array_equal(d["y"].numpy(), arrays["train-labels-idx1-ubyte"])


def test_mnist_missing_says_where_and_how(tmp_path, isolated_cache, no_network):
    with pytest.raises(data.DatasetMissing) as info:
        data.mnist()
    message = str(info.value)
    assert str(isolated_cache / "mnist") in message
    assert "download=True" in message and "train-images-idx3-ubyte" in message
    assert "root=" not in message  # the default folder needs no root argument
    with pytest.raises(data.DatasetMissing, match="root="):
        data.mnist(root=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()  # nothing is created without download=True
