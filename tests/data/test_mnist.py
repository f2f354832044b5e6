"""repro.data.mnist: the IDX format, a local folder, a download through a file:// URL, the message
when MNIST is missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro import data


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
