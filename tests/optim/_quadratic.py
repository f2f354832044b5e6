"""The tiny quadratic every optimizer test steps on, and the noise draws to expect."""

import torch

from repro import generator

A = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
W0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
LR, SIGMA = 0.1, 0.3


def quadratic(w):
    return 0.5 * (A * w**2).sum()  # gradient A * w


def run(opt_cls, steps, w0=W0, **kwargs):
    w = w0.clone().requires_grad_(True)
    opt = opt_cls([w], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        quadratic(w).backward()
        opt.step()
    return w.detach(), opt


def draws(noise, n, shape=W0.shape, seed=7, sigma=SIGMA):
    """The n noise draws that a generator seeded with ``seed`` produces, by hand."""
    g = generator(seed)
    out = []
    for _ in range(n):
        if noise == "gaussian":
            out.append(sigma * torch.randn(shape, generator=g, dtype=torch.float64))
        else:
            out.append(sigma * (2.0 * torch.randint(0, 2, shape, generator=g) - 1).double())
    return out
