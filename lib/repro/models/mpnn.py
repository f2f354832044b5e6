"""The message-passing network of the QM9 experiment of Navon et al. (2022) (PyG's NNConv example).

Used in: chapter 39 (Nash-MTL, paper preset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from repro.data.qm9 import require_torch_geometric as _pyg

if TYPE_CHECKING:
    from torch_geometric.data import Batch


class MPNN(nn.Module):
    """The message-passing network of the paper's QM9 experiment (PyG's NNConv example):
    h = relu(W x); three rounds of m = relu(NNConv(h)), h = GRU(m, h) with one shared
    convolution and GRU; Set2Set (3 steps) pools the atoms; z = relu(W' pool) is the shared
    representation and head k predicts target k from z."""

    def __init__(self, n_tasks: int = 11, num_features: int = 11, edge_features: int = 5,
                 dim: int = 64, rounds: int = 3) -> None:
        super().__init__()
        _pyg()
        from torch_geometric.nn import NNConv, Set2Set

        self.rounds = rounds
        self.embed = nn.Linear(num_features, dim)
        edge_net = nn.Sequential(nn.Linear(edge_features, 128), nn.ReLU(),
                                 nn.Linear(128, dim * dim))
        self.conv = NNConv(dim, dim, edge_net, aggr="mean")
        self.gru = nn.GRU(dim, dim)
        self.pool = Set2Set(dim, processing_steps=3)
        self.shared_out = nn.Linear(2 * dim, dim)
        # K heads of one output each, stored as one (K, dim) layer: row k belongs to task k only
        self.heads = nn.Linear(dim, n_tasks)

    def representation(self, data: Batch) -> torch.Tensor:
        dtype = self.embed.weight.dtype          # the data set stores float32 features
        h = torch.relu(self.embed(data.x.to(dtype)))
        edge_attr = data.edge_attr.to(dtype)
        state = h.unsqueeze(0)
        for _ in range(self.rounds):
            m = torch.relu(self.conv(h, data.edge_index, edge_attr))
            h, state = self.gru(m.unsqueeze(0), state)
            h = h.squeeze(0)
        return torch.relu(self.shared_out(self.pool(h, data.batch)))

    def forward(self, data: Batch) -> torch.Tensor:
        return self.heads(self.representation(data))

    @classmethod
    def seeded(cls, seed: int, dtype: torch.dtype = torch.float32, **kwargs) -> "MPNN":
        """A network whose initial weights depend only on ``seed`` (torch's global generator is
        left as it was: PyTorch layers draw their initial weights from it), in ``dtype``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(**kwargs).to(dtype)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("heads.")]

    def task_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())


__all__ = ['MPNN']
