"""repro.qm9: the QM9 pipeline of the Nash-MTL chapter on synthetic QM9-shaped molecules.

The tests that build graphs need torch_geometric (skipped without it); the messages for a missing
torch_geometric or a missing data set are tested either way."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from repro.data import DatasetMissing
from repro.mtl import make
from repro.qm9 import (MEV, STL_MAE, TARGETS, TorchGeometricMissing, load_qm9, qm9_delta_m)

pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic_molecules(n, seed=0):
    """QM9-shaped molecules: x (atoms, 11), a chain of bonds with 4 one-hot bond types, pos
    (atoms, 3), y (1, 19). Target k of the paper's selection is the mean of atom feature k, times
    a scale from 1e-2 to 1e2, so the targets are learnable and on very different scales."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        atoms = int(torch.randint(3, 9, (1,), generator=g))
        x = torch.rand(atoms, 11, generator=g)
        src = torch.arange(atoms - 1)
        edge_index = torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])
        bond = torch.randint(0, 4, (atoms - 1,), generator=g)
        edge_attr = torch.nn.functional.one_hot(bond, 4).float().repeat(2, 1)
        y = 0.01 * torch.randn(1, 19, generator=g)
        y[0, list(TARGETS)] += x.mean(0) * torch.logspace(-2, 2, 11)
        out.append(Data(x=x, edge_index=edge_index, edge_attr=edge_attr,
                        pos=torch.randn(atoms, 3, generator=g), y=y))
    return out


# --- without torch_geometric ------------------------------------------------------------------

def test_delta_m_against_hand_values():
    stl = np.array(STL_MAE)
    assert qm9_delta_m(stl) == pytest.approx(0.0, abs=1e-12)
    assert qm9_delta_m(1.5 * stl) == pytest.approx(50.0)
    worse = stl.copy()
    worse[3] *= 3.0                           # one target three times the STL error: +200 / 11
    assert qm9_delta_m(worse) == pytest.approx(200.0 / 11)
    assert qm9_delta_m([1.0, 4.0], baseline=[2.0, 2.0]) == pytest.approx(100 * (-0.5 + 1.0) / 2)
    assert qm9_delta_m([1.0, 1.0], baseline=[2.0, 4.0]) == pytest.approx(100 * (-0.5 - 0.75) / 2)


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


# --- with torch_geometric -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def molecules():
    pytest.importorskip("torch_geometric")
    from repro.qm9 import prepare_graphs

    return prepare_graphs(synthetic_molecules(72))


def test_transform_complete_graph_with_distances():
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    from repro.qm9 import transform

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
    from repro.qm9 import split_and_scale

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


def test_evaluate_reports_mae_in_paper_units(molecules):
    from torch_geometric.loader import DataLoader

    from repro.qm9 import evaluate, split_and_scale

    class Zero(torch.nn.Module):     # predicts 0 on the standardised scale: the training mean
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, data):
            return torch.zeros(data.y.shape[0], 11)

    sp = split_and_scale(molecules, 12, 10, seed=0)
    mae = evaluate(Zero(), DataLoader(sp.test, batch_size=5), sp.mean, sp.std)
    y = torch.cat([m.y for m in sp.test]).double()
    hand = (y - sp.mean).abs().mean(0).numpy()
    hand[list(MEV)] *= 1000.0
    assert mae.shape == (11,)
    np.testing.assert_allclose(mae, hand, rtol=1e-6)


def test_mpnn_shapes_and_parameter_split(molecules):
    from torch_geometric.loader import DataLoader

    from repro.qm9 import MPNN

    model = MPNN.seeded(0, dim=8)
    batch = next(iter(DataLoader(molecules, batch_size=7)))
    assert model(batch).shape == (7, 11)
    assert model.representation(batch).shape == (7, 8)
    shared, heads = model.shared_parameters(), model.task_parameters()
    assert len(shared) + len(heads) == len(list(model.parameters()))
    assert {id(p) for p in shared}.isdisjoint(id(p) for p in heads)
    again = MPNN.seeded(0, dim=8)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


@pytest.mark.parametrize("method", ["ls", "nash"])
def test_training_step_lowers_the_loss(molecules, method):
    from torch_geometric.loader import DataLoader

    from repro.qm9 import MPNN, split_and_scale, train_step

    sp = split_and_scale(molecules, 12, 10, seed=0)
    model = MPNN.seeded(0, dim=16)
    batch = next(iter(DataLoader(sp.train, batch_size=32)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    agg = make(method)
    losses = [train_step(model, batch, agg, opt, sp.mean.float(), sp.std.float(),
                         max_norm=1.0 if method == "nash" else 0.0) for _ in range(25)]
    assert losses[0].shape == (11,)
    assert float(losses[-1].mean()) < 0.9 * float(losses[0].mean())
    if method == "nash":
        assert agg.weights.shape == (11,) and bool((agg.weights > 0).all())


def test_linear_scalarisation_same_update_either_gradient_mode(molecules):
    # LS sums the task gradients; by the chain rule that is the same on the representation as on
    # the parameters, so both modes must give the same step
    from torch_geometric.loader import DataLoader

    from repro.qm9 import MPNN, split_and_scale, train_step

    sp = split_and_scale(molecules, 12, 10, seed=0)
    batch = next(iter(DataLoader(sp.train, batch_size=16)))
    params = []
    for mode in ("parameters", "representation"):
        model = MPNN.seeded(1, dim=8)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        train_step(model, batch, make("ls"), opt, sp.mean.float(), sp.std.float(), grads=mode)
        params.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    torch.testing.assert_close(params[0], params[1], rtol=1e-4, atol=1e-6)
    model = MPNN.seeded(1, dim=8)
    with pytest.raises(ValueError):
        train_step(model, batch, make("ls"), torch.optim.SGD(model.parameters(), lr=0.1),
                   sp.mean.float(), sp.std.float(), grads="features")


def test_fit_two_epochs_selects_on_validation(molecules):
    from repro.qm9 import MPNN, fit, split_and_scale

    sp = split_and_scale(molecules, 12, 10, seed=0)
    lines = []
    res = fit(MPNN.seeded(0, dim=8), sp, make("nash"), epochs=2, batch_size=16, lr=3e-3,
              max_norm=1.0, device="cpu", log=lines.append)
    assert len(lines) == 2 and len(res.history["val_delta_m"]) == 2
    assert all(np.isfinite(res.history["train_loss"]))
    val = res.history["val_delta_m"]
    assert res.best_epoch == 1 + max(i for i, v in enumerate(val) if v == min(val))
    assert res.val_delta_m == min(val)
    assert res.test_mae.shape == (11,)
    assert res.test_delta_m == pytest.approx(qm9_delta_m(res.test_mae))
    assert res.test_delta_m == pytest.approx(res.history["test_delta_m"][res.best_epoch - 1])


def test_local_copy_loads_without_download_and_trains(tmp_path):
    # a processed file in PyG's layout, written from synthetic molecules: load_qm9 must read it
    # as it is (no download, raw/ absent) and apply the paper's transform to every molecule
    pytest.importorskip("torch_geometric")
    from torch_geometric.datasets import QM9

    from repro.qm9 import MPNN, fit, split_and_scale

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
    res = fit(MPNN.seeded(0, dim=8), sp, make("ls"), epochs=1, batch_size=12, device="cpu")
    assert res.best_epoch == 1 and np.isfinite(res.test_delta_m)
