"""The two-objective toy problem of Fig. 1 of Navon et al. (2022), from Liu et al. (2021).

Used in: chapter 39 (Nash-MTL).
"""

from __future__ import annotations

import torch


class ToyTwoObjectives:
    """The two-objective problem of Fig. 1 (Navon et al., 2022; introduced with CAGrad by Liu et
    al., 2021), batched over points x of shape (..., 2). Returns losses of shape (..., 2).

    For x_2 > 0 each loss is a log-distance to a curve, for x_2 < 0 a wide quadratic bowl; tanh
    gates blend the two. The first loss is multiplied by ``scale1`` (0.1 in the Nash-MTL paper),
    which gives the two tasks gradients of very different sizes."""

    floor = 5e-6          # the log terms are clamped below here, as in the original problem

    def __init__(self, scale1: float = 0.1) -> None:
        self.scale1 = scale1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[..., 0], x[..., 1]
        t = torch.tanh(-x2)
        log1 = (0.5 * (-x1 - 7) - t).abs().clamp_min(self.floor).log() + 6
        log2 = (0.5 * (-x1 + 3) + t + 2).abs().clamp_min(self.floor).log() + 6
        bowl1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
        bowl2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
        up = torch.tanh(x2 / 2).clamp_min(0)
        down = torch.tanh(-x2 / 2).clamp_min(0)
        f1 = self.scale1 * (log1 * up + bowl1 * down)
        f2 = log2 * up + bowl2 * down
        return torch.stack([f1, f2], -1)

    def gradients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Losses (..., 2) and the task gradients G (..., 2 tasks, 2 coordinates)."""
        x = x.detach().requires_grad_(True)
        f = self(x)
        # both gradients in one vectorised backward pass: grad_outputs e_k for k = 1, 2
        eye = torch.eye(2, dtype=f.dtype, device=f.device)
        outs = eye.reshape(2, *([1] * (f.dim() - 1)), 2).expand(2, *f.shape)
        (g,) = torch.autograd.grad(f, x, grad_outputs=outs, is_grads_batched=True)
        return f.detach(), g.movedim(0, -2)

    def pareto_front(self, n: int = 400, lim: float = 10.0) -> torch.Tensor:
        """The non-dominated losses among an n x n grid of [-lim, lim]^2 and the x_2 -> inf limit
        curve, sorted by the first loss: (m, 2)."""
        g = torch.linspace(-lim, lim, n, dtype=torch.float64)
        pts = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        far = torch.stack([torch.linspace(-5 + 1e-3, 5 - 1e-3, n, dtype=torch.float64),
                           torch.full((n,), 30.0, dtype=torch.float64)], -1)
        F = self(torch.cat([pts, far]))
        order = torch.argsort(F[:, 0])
        F = F[order]
        best = torch.cummin(F[:, 1], 0).values
        keep = F[:, 1] <= best          # nothing earlier (smaller f1) has a smaller f2
        keep[1:] &= F[1:, 1] < best[:-1]
        return F[keep]


__all__ = ['ToyTwoObjectives']
