"""Sweeps: a grid of parameters x seeds, run batched where the model allows it and in a loop where
it does not, with per-run divergence masks, returned as a tidy table.

The layout of a batched sweep is one flat run dimension N = K_1 * ... * K_m * S, parameters in the
order given and seeds fastest (run index = ((k_1 * K_2 + k_2) ...) * S + s). ``Grid`` converts
between that flat dimension and the grid's shape:

    grid = Grid(lr=torch.logspace(-3, 1, 17), seeds=4)
    w = grid.tile(w0_per_seed)            # (S, d) -> (N, d): every step size starts from each seed
    lr = grid.column("lr")                # (N,): each run's step size, for repro.optim.PerRunGD
    ...
    grid.unflatten(final_loss)            # (N,) -> (17, 4)

``Recorder`` keeps one value per run and step (a loss curve), freezes a run that leaves the finite
range (or a stated limit) and remembers the step where it did: divergence is a result of a sweep,
not an error. ``sweep(fn, grid)`` runs a function over the grid, batched (``fn(grid)`` returns
per-run tensors) or looped (``fn(**cell)`` returns numbers for one cell), and returns a ``Table``
with one row per cell.

Used in: chapters 2 and 3 (step size x depth x seed grids); planned for every chapter of Part II.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from repro.checks import positive_int


class Grid:
    """The product of named parameter axes and a seed axis (seeds last, fastest)."""

    def __init__(self, seeds: int | Sequence[int] = 1, **axes: Sequence[Any]) -> None:
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = list(range(positive_int("seeds", seeds)))
        self.seeds = list(seeds)
        if not self.seeds:
            raise ValueError("a grid needs at least one seed")
        self.axes: dict[str, list] = {}
        for name, values in axes.items():
            values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
            if not values:
                raise ValueError(f"parameter {name!r} of the grid has no values")
            self.axes[name] = values
        self._tensors = {name: v for name, v in axes.items() if isinstance(v, torch.Tensor)}

    @property
    def shape(self) -> tuple[int, ...]:
        """(K_1, ..., K_m, S)."""
        return (*(len(v) for v in self.axes.values()), len(self.seeds))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.size

    def cells(self) -> Iterator[dict[str, Any]]:
        """Every (parameters, seed) cell, in the flat run order."""
        names = [*self.axes, "seed"]
        for values in itertools.product(*self.axes.values(), self.seeds):
            yield dict(zip(names, values))

    def column(self, name: str, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """Each run's value of parameter ``name`` (or ``"seed"``): shape (N,)."""
        if name == "seed":
            values = torch.tensor(self.seeds).repeat(self.size // len(self.seeds))
        else:
            if name not in self.axes:
                raise KeyError(f"the grid has no parameter {name!r}; it has {list(self.axes)}")
            values = self._tensors.get(name)
            # a list axis is built in the requested dtype: float32 first would round float64 values
            values = torch.tensor(self.axes[name], dtype=dtype) if values is None else values
            inner = math.prod(self.shape[list(self.axes).index(name) + 1:])
            outer = self.size // (inner * len(values))
            values = values.repeat_interleave(inner).repeat(outer)
        return values.to(device=device if device is not None else values.device,
                         dtype=dtype if dtype is not None else values.dtype)

    def tile(self, per_seed: torch.Tensor) -> torch.Tensor:
        """A per-seed tensor (S, ...) repeated for every parameter cell: (N, ...)."""
        if per_seed.shape[0] != len(self.seeds):
            raise ValueError(f"expected a leading dimension of {len(self.seeds)} seeds, got "
                             f"{tuple(per_seed.shape)}")
        return per_seed.repeat(self.size // len(self.seeds), *([1] * (per_seed.ndim - 1)))

    def unflatten(self, t: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """(..., N, ...) at ``dim`` -> (..., K_1, ..., K_m, S, ...)."""
        if t.shape[dim] != self.size:
            raise ValueError(f"dimension {dim} has {t.shape[dim]} runs, the grid {self.size}")
        return t.unflatten(dim, self.shape)


class Recorder:
    """One value per run at every step 0..steps; a run whose value is not finite or reaches
    ``limit`` is frozen at +inf from then on (its gradient should be masked with ``alive``)."""

    def __init__(self, n_runs: int, steps: int, limit: float = math.inf,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.steps = int(steps)
        self.limit = float(limit)
        self.alive = torch.ones(n_runs, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((n_runs,), -1, dtype=torch.long, device=device)
        self.values = torch.empty(self.steps + 1, n_runs, device=device, dtype=dtype)

    def record(self, t: int, value: torch.Tensor) -> torch.Tensor:
        """Store each run's value at step ``t``; returns the mask of runs still alive."""
        with torch.no_grad():
            ok = torch.isfinite(value) & (value < self.limit)
            newly = self.alive & ~ok
            self.diverged_at = torch.where(newly, torch.full_like(self.diverged_at, t),
                                           self.diverged_at)
            self.alive &= ok
            # a live run's value is finite by construction: nothing to check on the host, so
            # recording never waits for the device
            self.values[t] = torch.where(self.alive, value, torch.inf)
        return self.alive

    @property
    def diverged(self) -> torch.Tensor:
        """Which runs diverged (N,) bool."""
        return ~self.alive


class Table:
    """Rows of a sweep: one dict per cell (its parameters, then its results)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def column(self, name: str) -> list:
        return [r.get(name) for r in self.rows]

    def where(self, **equal) -> Table:
        """The rows whose values equal ``equal``."""
        return Table([r for r in self.rows if all(r.get(k) == v for k, v in equal.items())])

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV, atomically (a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "w", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=self.columns)
                writer.writeheader()
                writer.writerows(self.rows)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.ndim == 0 else value.tolist()
    return value


def sweep(fn: Callable, grid: Grid, batched: bool = True) -> Table:
    """Run ``fn`` over every cell of ``grid`` and tabulate the results.

    Batched: ``fn(grid)`` returns a dict of per-run tensors of leading dimension N (a diverged run
    may hold inf or NaN: it is a row like any other). Looped: ``fn(**cell)`` returns a dict of
    numbers for one cell (a ``repro.Diverged`` raised by a cell becomes its row's ``diverged``).
    """
    cells = list(grid.cells())
    if batched:
        out = fn(grid)
        rows = [dict(cell) for cell in cells]
        for name, values in out.items():
            if values.shape[0] != len(cells):
                raise ValueError(f"result {name!r} has {values.shape[0]} runs, the grid "
                                 f"{len(cells)}")
            for row, v in zip(rows, values):
                row[name] = _plain(v)
        return Table(rows)
    from repro.checks import Diverged

    rows = []
    for cell in cells:
        try:
            result = {k: _plain(v) for k, v in fn(**cell).items()}
            rows.append({**cell, **result, "diverged": False})
        except Diverged:
            rows.append({**cell, "diverged": True})
    return Table(rows)


__all__ = ["Grid", "Recorder", "Table", "sweep"]
