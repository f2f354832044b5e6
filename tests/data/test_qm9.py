"""repro.data.qm9: the QM9 data of the Nash-MTL chapter on synthetic QM9-shaped molecules: the
transform, the split and its statistics, a local copy, and the messages for a missing
torch_geometric or a missing data set.

The tests that build graphs need torch_geometric (skipped without it); the messages are tested
either way."""

from __future__ import annotations

import sys

import pytest
import torch

from _synthetic_qm9 import prepared_molecules, synthetic_molecules
from repro.data import DatasetMissing, load_qm9, split_and_scale
from repro.data.qm9 import TARGETS, TorchGeometricMissing

pytestmark = pytest.mark.usefixtures("one_thread")


def test_missing_torch_geometric_gives_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_geometric", None)   # import raises ImportError
    with pytest.raises(TorchGeometricMissing) as err:
        load_qm9("/nonexistent")
    assert isinstance(err.value, ImportError)
    assert "torch_geometric" in str(err.value) and "\n" not in str(err.value)


def test_missing_dataset_is_reported_not_downloaded(tmp_path):
    pytest.importorskip("torch_geometric")
    root = tmp_path / "qm9"
    with pytest.raises(DatasetMissing) as err:
        load_qm9(root)
    msg = str(err.value)
    assert str(root) in msg and "\n" not in msg and "nothing is downloaded" in msg
    assert not root.exists()                  # nothing created, nothing fetched


@pytest.fixture(scope="module")
def molecules():
    return prepared_molecules(72)


def test_transform_complete_graph_with_distances():
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    from repro.data.qm9 import transform

    pos = torch.tensor([[0.0, 0, 0], [3.0, 0, 0], [0.0, 4, 0]])
    bonds = torch.tensor([[0, 1], [1, 0]])
    attr = torch.tensor([[0.0, 1, 0, 0], [0.0, 1, 0, 0]])
    g = transform(Data(x=torch.zeros(3, 11), edge_index=bonds, edge_attr=attr, pos=pos,
                       y=torch.arange(19.0)[None]))
    assert g.y.tolist() == [[float(t) for t in TARGETS]]
    assert g.edge_index.shape == (2, 6) and g.edge_attr.shape == (6, 5)
    for (i, j), a in zip(g.edge_index.T.tolist(), g.edge_attr.tolist()):
        assert i != j
        assert a[:4] == ([0.0, 1, 0, 0] if {i, j} == {0, 1} else [0.0, 0, 0, 0])
        assert a[4] == pytest.approx(float((pos[i] - pos[j]).norm()))


def test_split_sizes_and_training_statistics(molecules):
    sp = split_and_scale(molecules, n_test=12, n_val=10, seed=3)
    assert (len(sp.train), len(sp.val), len(sp.test)) == (50, 10, 12)
    ids = {id(m) for part in (sp.train, sp.val, sp.test) for m in part}
    assert len(ids) == 72                                     # disjoint, nothing lost
    y = torch.cat([m.y for m in sp.train]).double()
    assert torch.allclose(sp.mean, y.mean(0, keepdim=True))
    assert torch.allclose(sp.std, y.std(0, keepdim=True))
    assert split_and_scale(molecules, 12, 10, seed=3).test[0] is sp.test[0]   # seeded
    with pytest.raises(ValueError):
        split_and_scale(molecules, 40, 40)


def test_local_copy_loads_without_download(tmp_path):
    # a processed file in PyG's layout, written from synthetic molecules: load_qm9 must read it
    # as it is (no download, raw/ absent) and apply the paper's transform to every molecule
    # (tests/train/test_multitask_graph.py trains on such a copy)
    pytest.importorskip("torch_geometric")
    from torch_geometric.datasets import QM9

    (tmp_path / "processed").mkdir()
    QM9.save(synthetic_molecules(40, seed=5), str(tmp_path / "processed" / "data_v3.pt"))
    data = load_qm9(tmp_path)
    assert len(data) == 40
    assert not any((tmp_path / "raw").glob("*"))          # PyG may make raw/, but it stays empty
    g = data[0]
    assert g.y.shape == (1, 11) and g.edge_attr.shape[1] == 5
    assert g.edge_index.shape[1] == g.num_nodes * (g.num_nodes - 1)
    sp = split_and_scale(data, n_test=8, n_val=8, seed=0)
    y = torch.cat([m.y for m in sp.train]).double()
    assert torch.allclose(sp.mean, y.mean(0, keepdim=True))      # the fast path over _data.y
