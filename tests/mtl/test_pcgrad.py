"""repro.mtl.pcgrad: gradient surgery on hand-checkable cases."""

from __future__ import annotations

import torch

from repro.mtl import PCGrad


def test_pcgrad_hand_cases():
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    # g1 loses its part along g2: (1,0) + 1/2 (-1,1) = (0.5, 0.5);
    # g2 loses its part along g1: (0, 1)
    torch.testing.assert_close(PCGrad()(G), torch.tensor([0.5, 1.5]))
    # no conflict: the plain sum
    G = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    torch.testing.assert_close(PCGrad()(G), torch.tensor([3.0, 1.0]))
    # the result never conflicts with a projected pair: each projected g_i is orthogonal to g_j
    G = torch.tensor([[2.0, 1.0], [-3.0, 0.5]])
    out = PCGrad()(G)
    expected = (G[0] - (G[0] @ G[1]) / (G[1] @ G[1]) * G[1]
                + G[1] - (G[0] @ G[1]) / (G[0] @ G[0]) * G[0])
    torch.testing.assert_close(out, expected)
