"""The classical compressed-sensing baseline: an l1 penalty on the image's 2-D DCT coefficients,
solved by scikit-learn's ``Lasso``.

Used in: chapter 40 (generative compressed sensing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def dct_basis(shape: Sequence[int]) -> np.ndarray:
    """``Psi`` (n x n, orthonormal) with ``x = Psi @ c``: the inverse 2-D (or N-D) DCT-II.

    Column j is the image whose orthonormal DCT has a single 1 in position j.
    """
    from scipy.fft import idctn

    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape))
    eye = np.eye(n).reshape(n, *shape)
    return np.stack([idctn(e, norm="ortho").ravel() for e in eye], axis=1)


def lasso_dct(A: torch.Tensor | ArrayLike, y: torch.Tensor | ArrayLike, shape: Sequence[int],
              alpha: float, m: torch.Tensor | ArrayLike | None = None,
              clip: tuple[float, float] | None = (0.0, 1.0), max_iter: int = 10000,
              tol: float = 1e-4) -> np.ndarray:
    """Lasso in the DCT basis, one problem at a time with scikit-learn:
    ``min_c (1/(2m))||y - A Psi c||^2 + alpha ||c||_1``, ``x = Psi c`` clipped to ``clip``.

    ``A`` ``(B, M, n)`` or ``(M, n)``, ``y`` ``(B, M)``; ``m`` the true row counts (padding).
    Returns ``(B, n)`` as a numpy array.
    """
    from sklearn.linear_model import Lasso

    A = np.asarray(A.detach().cpu() if torch.is_tensor(A) else A, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if torch.is_tensor(y) else y, dtype=np.float64)
    if A.ndim == 2:
        A = np.broadcast_to(A, (len(y), *A.shape))
    counts = np.full(len(y), A.shape[-2]) if m is None else np.asarray(
        m.cpu() if torch.is_tensor(m) else m).astype(int)
    psi = dct_basis(shape)
    out = np.empty((len(y), A.shape[-1]))
    for b in range(len(y)):
        rows = counts[b]
        design = A[b, :rows] @ psi
        model = Lasso(alpha=alpha, fit_intercept=False, max_iter=max_iter, tol=tol)
        model.fit(design, y[b, :rows])
        out[b] = psi @ model.coef_
    return np.clip(out, *clip) if clip is not None else out


__all__ = ['dct_basis', 'lasso_dct']
