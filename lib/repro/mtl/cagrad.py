"""CAGrad (Liu et al., 2021): the best worst-case improvement in a ball around the mean gradient.

Used in: chapter 39 (Nash-MTL).
"""

from __future__ import annotations

import math

import torch

from repro.mtl._simplex import _simplex_qp
from repro.mtl.base import Aggregator, _batched, gram


class CAGrad(Aggregator):
    """Conflict-averse gradient descent: with g0 the mean gradient and phi = c^2 ||g0||^2,
    w = argmin_{w in simplex} g_w^T g0 + sqrt(phi) ||g_w||, g_w = G^T w, and
    d = (g0 + sqrt(phi) g_w / ||g_w||) / (1 + c^2). c = 0 gives the mean gradient."""

    name = "cagrad"

    def __init__(self, c: float = 0.4) -> None:
        super().__init__()
        if c < 0:
            raise ValueError("c must be >= 0")
        self.c = c

    def _two_tasks(self, flat):
        """K = 2, batched: h(w) = g_w.g0 + root ||g_w||, g_w = g_2 + w (g_1 - g_2), is convex on
        [0, 1]; its minimum is at an end or at a root of h'(w) = 0, a quadratic equation."""
        g1, g2 = flat[:, 0], flat[:, 1]
        g0 = 0.5 * (g1 + g2)
        root = self.c * g0.norm(dim=-1)
        e = g1 - g2
        A = (e * e).sum(-1)
        B = 2 * (e * g2).sum(-1)
        Cq = (g2 * g2).sum(-1)
        b = (e * g0).sum(-1)
        # h'(w) = b + root (2 A w + B) / (2 sqrt(A w^2 + B w + C)) = 0 squares to a quadratic whose
        # roots are w = -B/(2A) +- |b| sqrt(4AC - B^2) / (2A sqrt(A root^2 - b^2))
        k = A * root**2 - b**2
        disc = (4 * A * Cq - B**2).clamp_min(0)
        half = b.abs() * disc.sqrt() / (2 * A * k.clamp_min(1e-300).sqrt())
        centre = -B / (2 * A)
        cands = torch.stack([torch.zeros_like(A), torch.ones_like(A), centre - half,
                             centre + half], 1)
        cands = cands.nan_to_num(0.0).clamp(0, 1)                          # (B, 4)
        gw = g2[:, None, :] + cands[..., None] * e[:, None, :]              # (B, 4, P)
        h = (gw * g0[:, None, :]).sum(-1) + root[:, None] * gw.norm(dim=-1)
        w0 = cands.gather(1, h.argmin(1, keepdim=True))[:, 0]
        gw = g2 + w0[:, None] * e
        nrm = gw.norm(dim=-1, keepdim=True)
        d = g0 + torch.where(nrm > 0, root[:, None] * gw / nrm, 0.0)
        return d / (1 + self.c**2)

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        flat, back = _batched(G)
        K = flat.shape[1]
        if K == 2:
            return back(self._two_tasks(flat))
        M = gram(flat).double().cpu().numpy()
        dirs = []
        for b, m in enumerate(M):
            g0_sq = float(m.sum()) / K**2          # ||g0||^2
            root = self.c * math.sqrt(max(g0_sq, 0.0))
            w = _simplex_qp(m, linear=m.mean(1), root=root)
            w_t = torch.tensor(w, dtype=G.dtype, device=G.device)
            gw = w_t @ flat[b]
            g0 = flat[b].mean(0)
            gw_norm = gw.norm()
            d = g0 + (root / gw_norm) * gw if gw_norm > 0 else g0
            dirs.append(d / (1 + self.c**2))
        return back(torch.stack(dirs))


__all__ = ['CAGrad']
