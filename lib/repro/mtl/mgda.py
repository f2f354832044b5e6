"""MGDA (Sener and Koltun, 2018): the minimum-norm point of the convex hull of the task gradients.

Used in: chapter 39 (Nash-MTL).
"""

from __future__ import annotations

import numpy as np
import torch

from repro.mtl._simplex import _simplex_qp
from repro.mtl.base import Aggregator, _batched, gram


class MGDA(Aggregator):
    """The minimum-norm element of the convex hull of the gradients: d = G^T w,
    w = argmin_{w in simplex} ||G^T w||^2 (Desideri's multiple-gradient descent)."""

    name = "mgda"

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        flat, back = _batched(G)
        if flat.shape[1] == 2:
            # closed form: the nearest point to 0 of the segment [g_2, g_1], batched
            M = gram(flat)
            den = M[:, 0, 0] + M[:, 1, 1] - 2 * M[:, 0, 1]
            w0 = ((M[:, 1, 1] - M[:, 0, 1]) / den).nan_to_num(0.5).clamp(0, 1)
            W = torch.stack([w0, 1 - w0], 1)
            self.weights = back(W)
            return back((W[:, :, None] * flat).sum(1))
        M = gram(flat).double().cpu().numpy()
        W = torch.tensor(np.stack([_simplex_qp(m) for m in M]), dtype=G.dtype, device=G.device)
        self.weights = back(W)
        return back((W[:, :, None] * flat).sum(1))


__all__ = ['MGDA']
