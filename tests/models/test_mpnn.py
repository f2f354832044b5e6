"""repro.models.mpnn: the QM9 message-passing network's shapes, its shared / task parameter split,
seeded weights (on synthetic QM9-shaped molecules; needs torch_geometric)."""

from __future__ import annotations

import pytest
import torch

from _synthetic_qm9 import prepared_molecules
from repro.models import MPNN

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def molecules():
    return prepared_molecules(72)


def test_mpnn_shapes_and_parameter_split(molecules):
    from torch_geometric.loader import DataLoader

    model = MPNN.seeded(0, dim=8)
    batch = next(iter(DataLoader(molecules, batch_size=7)))
    assert model(batch).shape == (7, 11)
    assert model.representation(batch).shape == (7, 8)
    shared, heads = model.shared_parameters(), model.task_parameters()
    assert len(shared) + len(heads) == len(list(model.parameters()))
    assert {id(p) for p in shared}.isdisjoint(id(p) for p in heads)
    again = MPNN.seeded(0, dim=8)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
