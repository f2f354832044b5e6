"""The two-layer network of the modular-arithmetic (grokking) literature, S runs batched.

For an input pair (a, b) given as the concatenated one-hot codes x = [e_a, e_b] (2p numbers),

    f(x)_c = sum_{n=1}^N  W_{cn} (U_{na} + V_{nb})^2 ,   c = 0 .. p-1,

a bias-free linear layer (N x 2p, whose two halves U and V act on a and on b), the quadratic
activation z^2 and a bias-free readout W (p x N) (Gromov, 2023; Doshi et al., 2024). Both layers
are drawn N(0, sigma^2) with sigma = sqrt(0.25) / (2N)^(1/3), the initialisation of the official
code of Doshi et al. Every parameter leads with the S runs: ``w1`` (S, 2p, N) (input i to
neuron n; the first p rows are U^T, the last p are V^T), ``w2`` (S, p, N),
so S seeds (or S weight decays, with a per-run decay) train in one pass. A buffer
``neuron_mask`` (S, N), all ones at the start, multiplies the hidden activations: setting entries
to 0 prunes those neurons (``prune``), which is how memorising neurons are removed.

``neuron_vectors()`` returns each neuron's three vectors over Z_p, ``u`` = U_n., ``v`` = V_n. and
``w`` = W_.n, each (S, N, p): the vectors whose Fourier spectra ``repro.metrics.fourier_probes``
measures.

Used in: chapter 9 (to grok or not to grok).
"""

from __future__ import annotations

import torch
from torch import nn

from repro.checks import positive_int

__all__ = ["ModularMLP"]


def default_init_std(width: int) -> float:
    """sqrt(0.25) / (2 N)^(1/3), the standard deviation of both layers at initialisation."""
    return 0.5 / (2 * int(width)) ** (1 / 3)


class ModularMLP(nn.Module):
    """S networks f_s(x)_c = sum_n W_{s,cn} (x . w1_{s,:,n})^2 on one-hot pairs x of length 2p."""

    def __init__(self, p: int, width: int, runs: int = 1, init_std: float | None = None,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.p, self.width = positive_int("p", p), positive_int("width", width)
        self.runs = positive_int("runs", runs)
        std = default_init_std(width) if init_std is None else float(init_std)
        if not std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std!r}")
        self.init_std = std
        self.w1 = nn.Parameter(std * torch.randn(runs, 2 * p, width, generator=generator,
                                                 dtype=dtype))
        self.w2 = nn.Parameter(std * torch.randn(runs, p, width, generator=generator,
                                                 dtype=dtype))
        self.register_buffer("neuron_mask", torch.ones(runs, width, dtype=dtype))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The pruned hidden activations mask * (w1 . x)^2: (S, m, N).

        ``x`` is one-hot float (m, 2p) or (S, m, 2p), or the integer pairs (m, 2) themselves, for
        which w1 . x = U_a + V_b is a gather rather than a product with a one-hot matrix (the same
        numbers, at a fraction of the cost)."""
        if x.ndim == 2 and x.shape[-1] == 2 and not torch.is_floating_point(x):
            a, b = x[:, 0], x[:, 1] + self.p
            z = self.w1.index_select(1, a) + self.w1.index_select(1, b)
        elif x.shape[-1] == 2 * self.p and x.ndim in (2, 3):
            x = x.to(self.w1.dtype)
            z = torch.einsum("md,sdn->smn", x, self.w1) if x.ndim == 2 else \
                torch.einsum("smd,sdn->smn", x, self.w1)
        else:
            raise ValueError(f"inputs must be integer pairs (m, 2) or one-hot (m, {2 * self.p}) "
                             f"or (S, m, {2 * self.p}), got {tuple(x.shape)} {x.dtype}")
        return z * z * self.neuron_mask.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (S, m, p): one score per class for each run and input."""
        return torch.matmul(self.hidden(x), self.w2.transpose(1, 2))

    def neuron_vectors(self) -> dict[str, torch.Tensor]:
        """Each neuron's vectors over Z_p: ``u``, ``v`` (its weights on a and on b) and ``w`` (its
        readout to each class), each (S, N, p), detached."""
        w1 = self.w1.detach().transpose(1, 2)
        return {"u": w1[..., :self.p], "v": w1[..., self.p:],
                "w": self.w2.detach().transpose(1, 2)}

    @torch.no_grad()
    def prune(self, keep: torch.Tensor) -> None:
        """Keep the neurons where ``keep`` (bool or 0/1, (S, N)) is true and silence the others."""
        if tuple(keep.shape) != (self.runs, self.width):
            raise ValueError(f"keep must be ({self.runs}, {self.width}), got {tuple(keep.shape)}")
        self.neuron_mask.copy_(keep.to(self.neuron_mask))

    @torch.no_grad()
    def unprune(self) -> None:
        """Every neuron active again."""
        self.neuron_mask.fill_(1.0)
