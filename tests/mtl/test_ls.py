"""repro.mtl.ls: linear scalarization sums the task gradients."""

from __future__ import annotations

import torch

from repro.mtl import LinearScalarization


def test_linear_scalarization():
    G = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    torch.testing.assert_close(LinearScalarization()(G), torch.tensor([4.0, 1.0]))
