"""QM9-shaped molecules for the tests of the QM9 pipeline (data, model, training), and the fixture
that prepares them as the pipeline's graphs."""

from __future__ import annotations

import pytest
import torch

from repro.data.qm9 import TARGETS


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


def prepared_molecules(n=72):
    """``n`` synthetic molecules through the paper's transform (needs torch_geometric)."""
    pytest.importorskip("torch_geometric")
    from repro.data.qm9 import prepare_graphs

    return prepare_graphs(synthetic_molecules(n))
