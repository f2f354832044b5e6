"""repro.mtl.cagrad: CAGrad on hand-checkable cases and against a brute-force search."""

from __future__ import annotations

import numpy as np
import torch

from repro.mtl import CAGrad


def test_cagrad_hand_cases():
    G = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(CAGrad(c=0.0)(G), G.mean(0))          # c = 0: the mean
    g = torch.tensor([[3.0, 4.0], [3.0, 4.0]], dtype=torch.float64)
    c = 0.5                                                           # identical gradients
    torch.testing.assert_close(CAGrad(c=c)(g), g[0] * (1 + c) / (1 + c**2))
    # orthonormal pair: by symmetry w = (1/2, 1/2), g_w = g0, d = g0 (1 + c) / (1 + c^2)
    out = CAGrad(c=0.4)(G)
    torch.testing.assert_close(out, G.mean(0) * 1.4 / 1.16, atol=1e-7, rtol=0)


def test_cagrad_two_tasks_matches_brute_force():
    rng = np.random.default_rng(7)
    G = torch.tensor(rng.standard_normal((6, 2, 3)), dtype=torch.float64)
    c = 0.4
    out = CAGrad(c=c)(G)
    w = torch.linspace(0, 1, 200001, dtype=torch.float64)
    for b in range(6):
        g1, g2 = G[b]
        g0 = 0.5 * (g1 + g2)
        gw = g2[None] + w[:, None] * (g1 - g2)[None]
        h = gw @ g0 + c * g0.norm() * gw.norm(dim=1)
        best = gw[h.argmin()]
        expected = (g0 + c * g0.norm() * best / best.norm()) / (1 + c**2)
        torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=0)
