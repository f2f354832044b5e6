"""repro.sweep: the flat run layout of a Grid (identical to chapter 3's old ``expand``), the
Recorder's divergence masks, sweep batched == looped, and Table.to_csv (atomic, round trip)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from repro import Diverged
from repro.sweep import Grid, Recorder, Table, sweep


def old_expand(values, lrs, n_seeds):
    """Chapter 3's helper before the restructure (n_seeds was a notebook global)."""
    return values.repeat(len(lrs), *([1] * (values.ndim - 1))), lrs.repeat_interleave(n_seeds)


# Grid ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 2, 5)])
def test_grid_layout_equals_chapter_3s_expand(shape):
    S = shape[0]
    values = torch.randn(*shape, generator=torch.Generator().manual_seed(0))   # per seed
    lrs = torch.logspace(-3, 0, 7)
    grid = Grid(lr=lrs, seeds=S)
    tiled, lr_column = old_expand(values, lrs, S)
    assert torch.equal(grid.tile(values), tiled)
    assert torch.equal(grid.column("lr"), lr_column)
    assert grid.column("lr").dtype == lrs.dtype
    assert grid.shape == (7, S) and grid.size == len(grid) == 7 * S
    assert torch.equal(grid.unflatten(lr_column), lrs[:, None].expand(7, S))


def test_grid_cells_columns_and_unflatten_agree_on_the_run_order():
    grid = Grid(seeds=[10, 20], depth=[1, 2, 3], lr=[0.1, 0.01])
    cells = list(grid.cells())
    assert grid.shape == (3, 2, 2) and len(cells) == 12
    # parameters in the order given, seeds fastest
    assert cells[:3] == [{"depth": 1, "lr": 0.1, "seed": 10}, {"depth": 1, "lr": 0.1, "seed": 20},
                         {"depth": 1, "lr": 0.01, "seed": 10}]
    for name in ("depth", "lr", "seed"):
        # a list axis becomes a tensor of torch's default dtype, as torch.tensor makes it
        assert torch.equal(grid.column(name), torch.tensor([c[name] for c in cells])), name
    index = torch.arange(12)
    assert grid.unflatten(index)[2, 1, 0] == 2 * 4 + 1 * 2 + 0
    # unflatten along another dimension
    t = torch.zeros(5, 12, 3)
    assert grid.unflatten(t, dim=1).shape == (5, 3, 2, 2, 3)
    assert grid.column("lr", dtype=torch.float64).dtype == torch.float64


def test_grid_column_in_float64_holds_the_exact_values():
    grid = Grid(lr=[0.1, 0.01], seeds=2)
    assert grid.column("lr", dtype=torch.float64).tolist() == [0.1, 0.1, 0.01, 0.01]


def test_grid_refuses_bad_input():
    with pytest.raises(ValueError, match="seeds"):
        Grid(seeds=0)
    with pytest.raises(ValueError, match="at least one seed"):
        Grid(seeds=[])
    with pytest.raises(ValueError, match="no values"):
        Grid(lr=[])
    grid = Grid(lr=[0.1, 0.2], seeds=3)
    with pytest.raises(KeyError, match="no parameter"):
        grid.column("depth")
    with pytest.raises(ValueError, match="3 seeds"):
        grid.tile(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="runs"):
        grid.unflatten(torch.zeros(5))


# Recorder --------------------------------------------------------------------------------------

def test_recorder_freezes_diverged_runs_at_inf_and_remembers_when():
    rec = Recorder(n_runs=4, steps=3, limit=100.0)
    inf, nan = math.inf, math.nan
    alive = rec.record(0, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert alive.tolist() == [True] * 4
    alive = rec.record(1, torch.tensor([0.5, nan, 150.0, 3.0]))     # NaN; beyond the limit
    assert alive.tolist() == [True, False, False, True]
    alive = rec.record(2, torch.tensor([0.25, 1.0, 1.0, inf]))      # finite again: stays frozen
    assert alive.tolist() == [True, False, False, False]
    rec.record(3, torch.tensor([0.1, 1.0, 1.0, 1.0]))
    assert rec.diverged_at.tolist() == [-1, 1, 1, 2]
    assert rec.diverged.tolist() == [False, True, True, True]
    expected = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, inf, inf, 3.0], [0.25, inf, inf, inf],
                             [0.1, inf, inf, inf]])
    assert torch.equal(rec.values, expected)


def test_recorder_without_a_limit_keeps_large_finite_values():
    rec = Recorder(2, 1)
    rec.record(0, torch.tensor([1e30, 1.0]))
    rec.record(1, torch.tensor([1e38, 2.0]))
    assert rec.alive.tolist() == [True, True] and rec.diverged_at.tolist() == [-1, -1]


# sweep -----------------------------------------------------------------------------------------

def gd_on_a_quadratic(lr, curvature, steps=20):
    """The loss of GD on 1/2 c w^2 after ``steps`` steps from w = 1: (1 - lr c)^(2 steps) / 2 c."""
    return 0.5 * curvature * (1 - lr * curvature) ** (2 * steps)


def test_sweep_batched_equals_looped():
    f64 = dict(dtype=torch.float64)
    grid = Grid(lr=torch.tensor([0.01, 0.1, 0.5], **f64), curvature=torch.tensor([1.0, 3.0], **f64),
                seeds=2)

    def batched(g):
        lr, c, seed = g.column("lr"), g.column("curvature"), g.column("seed", **f64)
        return {"loss": gd_on_a_quadratic(lr, c), "shifted": gd_on_a_quadratic(lr, c) + seed}

    def looped(lr, curvature, seed):
        loss = gd_on_a_quadratic(torch.tensor(lr, **f64), torch.tensor(curvature, **f64))
        return {"loss": loss, "shifted": loss + seed}

    fast, slow = sweep(batched, grid), sweep(looped, grid, batched=False)
    assert len(fast) == len(slow) == grid.size
    assert all(row.pop("diverged") is False for row in slow.rows)
    assert fast.rows == slow.rows
    assert fast.columns == ["lr", "curvature", "seed", "loss", "shifted"]


def test_sweep_looped_turns_diverged_into_a_row_and_batched_checks_lengths():
    grid = Grid(lr=[0.1, 10.0], seeds=1)

    def cell(lr, seed):
        if lr > 1:
            raise Diverged("loss became non-finite")
        return {"loss": lr}

    table = sweep(cell, grid, batched=False)
    assert table.rows == [{"lr": 0.1, "seed": 0, "loss": 0.1, "diverged": False},
                          {"lr": 10.0, "seed": 0, "diverged": True}]
    assert table.column("loss") == [0.1, None]
    with pytest.raises(ValueError, match="runs"):
        sweep(lambda g: {"loss": torch.zeros(3)}, grid)


# Table -----------------------------------------------------------------------------------------

def test_table_where_and_columns():
    table = Table([{"a": 1, "b": 2}, {"a": 1, "c": 3}, {"a": 2, "b": 5}])
    assert table.columns == ["a", "b", "c"]
    assert table.where(a=1).column("b") == [2, None]
    assert len(table.where(a=3)) == 0


def test_to_csv_round_trips(tmp_path):
    rows = [{"lr": 0.1, "depth": 2, "method": "gd", "loss": 1 / 3, "diverged": False},
            {"lr": 1e-7, "depth": 3, "method": "adam", "loss": math.inf, "diverged": True}]
    path = Table(rows).to_csv(tmp_path / "deep" / "er" / "sweep.csv")   # folders are created
    assert path == tmp_path / "deep" / "er" / "sweep.csv"
    with open(path, newline="") as handle:
        back = list(csv.DictReader(handle))
    assert [list(r) for r in back] == [list(rows[0])] * 2
    for got, want in zip(back, rows, strict=True):
        assert float(got["lr"]) == want["lr"] and int(got["depth"]) == want["depth"]
        assert got["method"] == want["method"] and float(got["loss"]) == want["loss"]
        assert got["diverged"] == str(want["diverged"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["sweep.csv"]   # no temporary left


class Unprintable:
    def __str__(self):
        raise RuntimeError("cannot be written")

    __repr__ = __str__


def test_to_csv_is_atomic(tmp_path):
    path = tmp_path / "table.csv"
    Table([{"x": 1}]).to_csv(path)
    before = path.read_bytes()
    # a write that fails half-way (the second row cannot be written) leaves the old file as it was
    with pytest.raises(RuntimeError, match="cannot be written"):
        Table([{"x": 2}, {"x": Unprintable()}]).to_csv(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
