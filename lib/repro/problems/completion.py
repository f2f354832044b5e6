"""Matrix completion: a rank-r matrix from a random subset of its entries, P instances at once.

Used in: chapters 2 (Arora et al. 2019) and 4 (ratio penalty with Adam).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from repro.checks import positive_int as _positive_int
from repro.seeds import generator as _generator


class MatrixCompletion:
    """Complete a rank-r matrix M* = U V^T (rows x cols) from a random subset of its entries.

    U, V have i.i.d. N(0, 1/r) entries, so the entries of M* have variance 1/r; with
    ``fro_norm`` each instance's M* is rescaled to exactly that Frobenius norm (Arora et al. 2019
    take |M*|_F = n for n x n, so the mean squared error over all entries equals the squared
    relative error). Of the ``n_observed`` entries drawn uniformly without replacement (per
    instance; an int, or one count per instance), a fraction ``test_fraction`` is held out as a
    test set: ``train_mask`` and ``test_mask`` are disjoint 0/1 tensors of shape
    (P, rows, cols). The loss of a matrix W (P, ..., rows, cols) is the mean squared error over
    the training entries, halved.
    """

    def __init__(self, rows: int = 30, cols: int = 30, r: int = 2,
                 n_observed: int | Sequence[int] = 300, test_fraction: float = 0.0,
                 n_instances: int = 1, seed: int = 0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, fro_norm: float | None = None) -> None:
        self.rows, self.cols = _positive_int("rows", rows), _positive_int("cols", cols)
        self.r, self.P = _positive_int("r", r), _positive_int("n_instances", n_instances)
        total = rows * cols
        # an integer of any kind (int, numpy int) is one count for all instances
        per_instance = not isinstance(n_observed, (numbers.Integral, bool))
        counts = list(n_observed) if per_instance else [n_observed] * self.P
        if len(counts) != self.P:
            raise ValueError(f"n_observed holds {len(counts)} counts for {self.P} instances")
        for c in counts:
            if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not 1 <= c <= total:
                raise ValueError(f"n_observed must be in [1, {total}], got {c!r}")
        counts = [int(c) for c in counts]
        if not 0 <= test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
        if fro_norm is not None and not fro_norm > 0:
            raise ValueError(f"fro_norm must be > 0, got {fro_norm!r}")
        g = _generator(seed)
        U = torch.randn(self.P, rows, r, generator=g, dtype=dtype) / r**0.5
        V = torch.randn(self.P, cols, r, generator=g, dtype=dtype) / r**0.5
        M = U @ V.transpose(-1, -2)
        if fro_norm is not None:
            M = M * (fro_norm / torch.linalg.matrix_norm(M))[:, None, None]
        self.M_star = M.to(device)
        order = torch.argsort(torch.rand(self.P, total, generator=g), dim=-1)
        train = torch.zeros(self.P, total, dtype=dtype)
        test = torch.zeros(self.P, total, dtype=dtype)
        n_trains, n_tests = [], []
        for p, c in enumerate(counts):
            n_test = int(round(test_fraction * c))
            n_train = c - n_test
            if n_train < 1:
                raise ValueError("no training entries left; lower test_fraction")
            # the first entries of this instance's own random order of all entries
            train[p, order[p, :n_train]] = 1.0
            test[p, order[p, n_train:c]] = 1.0
            n_trains.append(n_train)
            n_tests.append(n_test)
        self.train_mask = train.reshape(self.P, rows, cols).to(device)
        self.test_mask = test.reshape(self.P, rows, cols).to(device)
        if per_instance:   # one count per instance: tensors of shape (P,)
            self.n_train = torch.tensor(n_trains, dtype=dtype, device=device)
            self.n_test = torch.tensor(n_tests, dtype=dtype, device=device)
        else:
            self.n_train, self.n_test = n_trains[0], n_tests[0]

    def _expand(self, t: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], *([1] * (W.ndim - t.ndim)), *t.shape[1:])

    def _mse(self, W: torch.Tensor, mask: torch.Tensor, count) -> torch.Tensor:
        diff = (W - self._expand(self.M_star, W)) * self._expand(mask, W)
        if isinstance(count, torch.Tensor):
            count = count.reshape(-1, *([1] * (W.ndim - 3)))
        return (diff**2).sum((-1, -2)) / count

    def loss(self, W: torch.Tensor) -> torch.Tensor:
        """Half the mean squared error over the training entries, one value per leading index."""
        return self._mse(W, self.train_mask, self.n_train) / 2

    def test_error(self, W: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the held-out entries."""
        if (self.n_test == 0) if isinstance(self.n_test, int) else bool((self.n_test == 0).any()):
            raise ValueError("this problem holds no test entries (test_fraction = 0)")
        return self._mse(W, self.test_mask, self.n_test)

    def relative_error(self, W: torch.Tensor) -> torch.Tensor:
        """|W - M*|_F / |M*|_F over all entries."""
        R = self._expand(self.M_star, W)
        return torch.linalg.matrix_norm(W - R) / torch.linalg.matrix_norm(R)

    def error_all(self, W: torch.Tensor) -> torch.Tensor:
        """Mean squared error over all rows x cols entries (the test error of Arora et al. 2019)."""
        R = self._expand(self.M_star, W)
        return ((W - R) ** 2).mean((-1, -2))

    def unobserved_error(self, W: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the entries outside the training set."""
        unseen = 1 - self.train_mask
        return self._mse(W, unseen, unseen.sum((-1, -2)).reshape(-1, *([1] * (W.ndim - 3))))

    def select(self, index: int | slice | Sequence[int]) -> "MatrixCompletion":
        """The instances ``index`` (an int, a slice or a list) as a problem of their own: same
        truths and masks, so a run on ``select(k)`` trains exactly as run k of a batched sweep."""
        idx = [index] if isinstance(index, int) else index
        out = MatrixCompletion.__new__(MatrixCompletion)
        out.__dict__.update(self.__dict__)
        out.M_star, out.train_mask = self.M_star[idx], self.train_mask[idx]
        out.test_mask = self.test_mask[idx]
        if isinstance(self.n_train, torch.Tensor):
            out.n_train, out.n_test = self.n_train[idx], self.n_test[idx]
        out.P = out.M_star.shape[0]
        return out

    def min_nuclear_norm(self, instance: int = 0, eps: float = 1e-6, max_iters: int = 50_000,
                         solver: str = "SCS") -> dict:
        """argmin |X|_* subject to X_ij = M*_ij on the training entries of one instance:
        ``repro.solvers.min_nuclear_norm_completion`` on this instance's truth and mask."""
        from repro.solvers.nuclear_norm import min_nuclear_norm_completion

        return min_nuclear_norm_completion(self.M_star[instance], self.train_mask[instance],
                                           eps=eps, max_iters=max_iters, solver=solver)


__all__ = ["MatrixCompletion"]
