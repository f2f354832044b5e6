"""The second-moment operator of linearised minibatch SGD: exact mean-square stability.

Near a minimum where every example fits, SGD on L = (1/n) sum_i l_i is, to first order,

    w_{t+1} = J_t w_t,    J_t = I - (eta/B) sum_i m_i H_i,

with m_i the number of times example i is in the batch of step t. The second moment
Sigma_t = E[w_t w_t^T] then obeys an exact linear recursion Sigma_{t+1} = T(Sigma_t),

    T(Sigma) = Sigma - eta (H Sigma + Sigma H)
               + eta^2 (c1 H Sigma H + c2 (1/n) sum_i H_i Sigma H_i),

where H is the mean Hessian and (c1, c2) depend only on the sampling scheme:

    without replacement (a uniform B-subset):  c1 = n(B-1) / (B(n-1)),  c2 = (n-B) / (B(n-1))
    with replacement (B uniform draws):        c1 = (B-1)/B,           c2 = 1/B
    Bernoulli (each example w.p. B/n):         c1 = 1,                 c2 = 1/B - 1/n

(from E[m_i m_j]). At B = n without replacement, or Bernoulli, c2 = 0 and T is gradient descent's.
The iterates diverge in mean square iff the spectral radius rho(T) exceeds 1 (on the range of H;
directions no H_i sees never move). T is self-adjoint for the trace inner product and maps PSD
matrices to PSD matrices, so rho(T) is its largest eigenvalue, and the set of stable step sizes is
an interval (0, eta*). Writing T = I - eta K + eta^2 Q (K = H (+) H, Q >= 0), rho(T) = 1 exactly
when Q v = K v / eta, so

    eta* = 1 / lambda_max(K^{-1/2} Q K^{-1/2}),

a symmetric eigenvalue problem of size k^2 (k the rank of H) with no search. ``critical_step_size``
computes it that way (``method="exact"``) or by bisection on rho (``method="bisection"``), which
checks the formula. Problems come one at a time; batch sizes and step sizes are tensor dimensions.

References: [Dexter et al., 2024](https://arxiv.org/abs/2401.12332) (linearised SGD and its
stability); [Mulayoff & Michaeli, 2023](https://arxiv.org/abs/2306.07850) (exact mean-square
stability of SGD).

Used in: chapter 12 (SGD stability and loss-surface geometry).
"""

from __future__ import annotations

import torch

__all__ = ["SAMPLINGS", "critical_step_size", "mean_square_spectral_radius", "sample_batches",
           "sampling_coefficients", "second_moment_operator"]

SAMPLINGS = ("without_replacement", "with_replacement", "bernoulli")


def sampling_coefficients(n: int, batch_size, sampling: str = "without_replacement"):
    """(c1, c2) of the second-moment operator for a batch size (number or tensor) and a scheme."""
    B = torch.as_tensor(batch_size, dtype=torch.float64)
    if (B < 1).any() or (B > n).any() and sampling != "with_replacement":
        raise ValueError(f"batch sizes must lie in [1, n = {n}], got {batch_size!r}")
    if sampling == "without_replacement":
        if n == 1:
            return torch.ones_like(B), torch.zeros_like(B)
        return n * (B - 1) / (B * (n - 1)), (n - B) / (B * (n - 1))
    if sampling == "with_replacement":
        return (B - 1) / B, 1 / B
    if sampling == "bernoulli":
        return torch.ones_like(B), 1 / B - 1 / n
    raise ValueError(f"unknown sampling {sampling!r}; use one of {SAMPLINGS}")


def _restrict(hessians: torch.Tensor, rtol: float = 1e-10):
    """The Hessians in the eigenbasis of the range of their mean H (n, k, k); its eigenvalues."""
    if hessians.ndim != 3:
        raise ValueError("one problem at a time: hessians must have shape (n, d, d)")
    h, V = torch.linalg.eigh(hessians.mean(0))
    keep = h > rtol * h[-1]
    V, h = V[:, keep], h[keep]
    return V.T @ hessians @ V, h


def _parts(hessians: torch.Tensor):
    """K = H (+) H, H (x) H and (1/n) sum_i H_i (x) H_i, on the range of H, in H's eigenbasis."""
    Hs, h = _restrict(hessians)
    k = h.numel()
    K = (h[:, None] + h[None, :]).reshape(k * k)                   # diagonal of H (+) H
    HH = (h[:, None] * h[None, :]).reshape(k * k)                  # diagonal of H (x) H
    G = torch.einsum("iab,icd->acbd", Hs, Hs).reshape(k * k, k * k) / Hs.shape[0]
    return K, HH, G


def second_moment_operator(hessians: torch.Tensor, lr, batch_size,
                           sampling: str = "without_replacement") -> torch.Tensor:
    """T as a matrix on vec(Sigma), on the range of H in H's eigenbasis.

    Shape (*broadcast(lr, batch_size), k^2, k^2)."""
    K, HH, G = _parts(hessians)
    c1, c2 = sampling_coefficients(hessians.shape[0], batch_size, sampling)
    lr = torch.as_tensor(lr, dtype=hessians.dtype, device=hessians.device)
    c1, c2 = c1.to(lr), c2.to(lr)
    lr, c1, c2 = torch.broadcast_tensors(lr, c1, c2)
    eye = torch.eye(K.numel(), dtype=K.dtype, device=K.device)
    e, a, b = (t[..., None, None] for t in (lr, c1, c2))
    return eye - e * torch.diag(K) + e**2 * (a * torch.diag(HH) + b * G)


def mean_square_spectral_radius(hessians: torch.Tensor, lr, batch_size,
                                sampling: str = "without_replacement",
                                chunk: int = 32) -> torch.Tensor:
    """rho(T) for every (lr, batch size) of the broadcast grid; > 1 means mean-square divergence."""
    lr = torch.as_tensor(lr, dtype=hessians.dtype, device=hessians.device)
    B = torch.as_tensor(batch_size, dtype=hessians.dtype, device=hessians.device)
    lr, B = torch.broadcast_tensors(lr, B)
    flat_lr, flat_B = lr.reshape(-1), B.reshape(-1)
    out = []
    for start in range(0, flat_lr.numel(), chunk):
        T = second_moment_operator(hessians, flat_lr[start:start + chunk],
                                   flat_B[start:start + chunk], sampling)
        out.append(torch.linalg.eigvalsh(T).abs().amax(-1))
    return torch.cat(out).reshape(lr.shape) if out else lr.clone()


def critical_step_size(hessians: torch.Tensor, batch_size, sampling: str = "without_replacement",
                       method: str = "exact", rtol: float = 1e-9) -> torch.Tensor:
    """eta*: linearised SGD is mean-square stable for 0 < eta < eta* and diverges above it.

    ``method="exact"``: eta* = 1 / lambda_max(K^{-1/2} (c1 H(x)H + c2 G) K^{-1/2}).
    ``method="bisection"``: the root of rho(T(eta)) = 1 in (0, 2 / lambda_max(H)], to ``rtol``.
    Shape: that of ``batch_size``.
    """
    B = torch.as_tensor(batch_size, dtype=hessians.dtype, device=hessians.device)
    if method == "exact":
        K, HH, G = _parts(hessians)
        c1, c2 = sampling_coefficients(hessians.shape[0], B, sampling)
        c1, c2 = c1.to(K)[..., None, None], c2.to(K)[..., None, None]
        s = K.rsqrt()
        M = c1 * torch.diag(HH * s * s) + c2 * (s[:, None] * G * s[None, :])
        return 1 / torch.linalg.eigvalsh(M)[..., -1]
    if method != "bisection":
        raise ValueError(f"unknown method {method!r}; use 'exact' or 'bisection'")
    top = torch.linalg.eigvalsh(hessians.mean(0))[-1]
    lo = torch.zeros_like(B)
    hi = torch.full_like(B, float(2 / top) * (1 + 1e-9))
    while ((hi - lo) > rtol * hi).any():
        mid = (lo + hi) / 2
        unstable = mean_square_spectral_radius(hessians, mid, B, sampling) > 1
        hi, lo = torch.where(unstable, mid, hi), torch.where(unstable, lo, mid)
    return (lo + hi) / 2


def sample_batches(n: int, batch_size: int, runs: int, sampling: str = "without_replacement",
                   generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The multiplicities m (runs, n) of one step's batches: how often each example is drawn."""
    if sampling == "without_replacement":
        keys = torch.rand(runs, n, generator=generator)
        idx = keys.argsort(dim=1)[:, :batch_size]
        m = torch.zeros(runs, n, dtype=dtype)
        return m.scatter_(1, idx, 1.0)
    if sampling == "with_replacement":
        idx = torch.randint(0, n, (runs, batch_size), generator=generator)
        m = torch.zeros(runs, n, dtype=dtype)
        return m.scatter_add_(1, idx, torch.ones(runs, batch_size, dtype=dtype))
    if sampling == "bernoulli":
        return (torch.rand(runs, n, generator=generator) < batch_size / n).to(dtype)
    raise ValueError(f"unknown sampling {sampling!r}; use one of {SAMPLINGS}")
