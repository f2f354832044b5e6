"""repro.data.cifar10: a local copy or a download, checked and atomic.

Nothing here touches the network: CIFAR-10 is a tiny fake archive built in tmp_path and fetched
through a file:// URL, and sockets are disabled while those tests run.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import tarfile

import numpy as np
import pytest
import torch

from repro import data

from ._layout import check_split

# the module itself (``repro.data.cifar10`` is the loader function the package re-exports)
cifar10_module = importlib.import_module("repro.data.cifar10")


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
    for i, name in enumerate(cifar10_module.CIFAR10_TRAIN + cifar10_module.CIFAR10_TEST):
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
    check_split(d, (3, 32, 32))
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
