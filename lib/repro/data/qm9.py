"""QM9 (Ramakrishnan et al., 2014) as a multi-task regression benchmark, read from a local copy.

- ``load_qm9``        a local copy of QM9 through ``torch_geometric.datasets.QM9`` (never
                      downloaded here: a missing copy raises ``repro.data.DatasetMissing``); the
                      11 targets of Navon et al. (2022), molecules as complete graphs with distances
- ``split_and_scale`` shuffle; ``n_test`` test, ``n_val`` validation, the rest training; and the
                      mean / standard deviation of the training targets

Everything that touches torch_geometric imports it on first use, so ``import repro.data`` works
without it; the functions that need it raise ``TorchGeometricMissing`` (an ImportError) with a
one-line message.

Used in: chapter 39 (Nash-MTL, paper preset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from repro.data._common import DatasetMissing
from repro.seeds import generator

if TYPE_CHECKING:
    from torch_geometric.data import Data, Dataset
    from torch_geometric.datasets import QM9

# Columns of PyG's QM9 ``y`` (19 columns) that the paper uses, in the paper's order: dipole
# moment, polarizability, HOMO, LUMO, electronic spatial extent, ZPVE, the four atomization
# energies U0, U, H, G (columns 12-15, as DimeNet uses them) and the heat capacity. Column 4 (the
# HOMO-LUMO gap) is left out because it is the difference of two others.
TARGETS = (0, 1, 2, 3, 5, 6, 12, 13, 14, 15, 11)
TARGET_NAMES = ("mu", "alpha", "homo", "lumo", "r2", "zpve", "U0", "U", "H", "G", "Cv")
# Positions (in TARGETS) whose errors are reported in meV instead of eV, as in the paper.
MEV = (2, 3, 5, 6, 7, 8, 9)

PYG_HINT = "pip install torch_geometric (pure Python, no compiled extensions needed)"


class TorchGeometricMissing(ImportError):
    """torch_geometric is not installed; the QM9 experiment needs it."""


def require_torch_geometric() -> ModuleType:
    try:
        import torch_geometric
    except ImportError as err:
        raise TorchGeometricMissing(
            f"the QM9 experiment needs torch_geometric, which is not installed ({PYG_HINT})"
        ) from err
    return torch_geometric


def transform(data: Data) -> Data:
    """The per-molecule transform: the paper's targets, a complete graph, distances on the edges."""
    data = _select_targets(data)
    data = CompleteGraph()(data)
    from torch_geometric.transforms import Distance

    # edge features: the 4 bond-type indicators (zero between atoms that share no bond) and the
    # Euclidean distance, unnormalised, as in the paper's code: 5 numbers per edge
    return Distance(norm=False)(data)


def _select_targets(data):
    if data.y.shape[-1] == len(TARGET_NAMES):
        return data                       # already selected
    data.y = data.y[:, list(TARGETS)]
    return data


class CompleteGraph:
    """Connect every ordered pair of distinct atoms; bonded pairs keep their bond features and the
    others get zeros. Message passing then sees all atoms of the molecule at once."""

    def __call__(self, data: Data) -> Data:
        n = data.num_nodes
        dev = data.edge_index.device
        i = torch.arange(n, device=dev)
        src, dst = i.repeat_interleave(n), i.repeat(n)
        keep = src != dst
        edge_index = torch.stack([src[keep], dst[keep]])
        if data.edge_attr is not None:
            full = data.edge_attr.new_zeros(n * n, data.edge_attr.shape[1])
            full[data.edge_index[0] * n + data.edge_index[1]] = data.edge_attr
            data.edge_attr = full[keep]
        data.edge_index = edge_index
        return data


def _qm9_files(root: Path) -> tuple[Path, list[Path]]:
    """PyG's processed file and the raw files it would process (which depend on rdkit)."""
    try:
        import rdkit  # noqa: F401
        raw = ["gdb9.sdf", "gdb9.sdf.csv", "uncharacterized.txt"]
    except ImportError:
        raw = ["qm9_v3.pt"]
    return root / "processed" / "data_v3.pt", [root / "raw" / r for r in raw]


def default_root() -> Path:
    from repro.paths import cache_dir

    return cache_dir() / "qm9"


def load_qm9(root: str | os.PathLike | None = None) -> QM9:
    """QM9 from a local copy in PyG's layout (``root/processed/data_v3.pt``, or the raw files
    under ``root/raw/`` that PyG processes once), with ``transform`` applied to every molecule.

    Never downloads: a missing copy raises ``DatasetMissing`` (one line, where we looked);
    a missing torch_geometric raises ``TorchGeometricMissing``.
    """
    require_torch_geometric()
    root = Path(root) if root else default_root()
    processed, raw = _qm9_files(root)
    if not processed.is_file() and not all(p.is_file() for p in raw):
        raise DatasetMissing(
            f"no local copy of QM9 under {root}: looked for {processed} or "
            f"{', '.join(str(p) for p in raw)}; copy PyG's QM9 folder there (nothing is "
            "downloaded)")

    return _local_qm9_class()(str(root), transform=transform)


def _local_qm9_class():
    """PyG's QM9 whose download step never downloads. PyG calls ``download`` whenever raw/ is
    incomplete, even when the processed file is there (a common way to copy QM9 around); then
    there is nothing to do, and without the processed file it is an error. Built on first use (it
    needs torch_geometric) and kept at module level, so data-loader workers can pickle it."""
    global LocalQM9
    if LocalQM9 is None:
        from torch_geometric.datasets import QM9

        class _LocalQM9(QM9):
            def download(self):
                if not Path(self.processed_paths[0]).is_file():
                    raise DatasetMissing(f"QM9 raw files missing under {self.raw_dir} "
                                         "(nothing is downloaded)")

        _LocalQM9.__name__ = _LocalQM9.__qualname__ = "LocalQM9"
        _LocalQM9.__module__ = __name__
        LocalQM9 = _LocalQM9
    return LocalQM9


LocalQM9 = None


def prepare_graphs(graphs: Sequence) -> list:
    """Apply ``transform`` to a list of QM9-shaped ``Data`` objects (x (n, 11), edge_attr (m, 4),
    pos (n, 3), y (1, 19)); for synthetic or hand-made molecules."""
    require_torch_geometric()
    return [transform(g.clone()) for g in graphs]


@dataclass
class QM9Splits:
    train: object
    val: object
    test: object
    mean: torch.Tensor     # (1, 11) of the training targets
    std: torch.Tensor      # (1, 11)


def split_and_scale(dataset: Dataset | Sequence[Data], n_test: int = 10_000, n_val: int = 10_000,
                    seed: int = 0) -> QM9Splits:
    """Shuffle with ``seed``; the first ``n_test`` molecules are the test set, the next ``n_val``
    the validation set, the rest the training set (the paper's 110K / 10K / 10K). The targets are
    standardised with the training mean and standard deviation (by ``fit``, not in place)."""
    n = len(dataset)
    if n_test + n_val >= n:
        raise ValueError(f"{n} molecules cannot give {n_test} test + {n_val} validation + training")
    perm = torch.randperm(n, generator=generator(seed))
    test_idx, val_idx, train_idx = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    y = _raw_targets(dataset, train_idx)
    return QM9Splits(_subset(dataset, train_idx), _subset(dataset, val_idx),
                     _subset(dataset, test_idx), y.mean(0, keepdim=True), y.std(0, keepdim=True))


def _raw_targets(dataset, idx) -> torch.Tensor:
    # an in-memory PyG data set keeps all y in one tensor: no need to build the graphs
    data = getattr(dataset, "_data", None)
    if (data is not None and getattr(data, "y", None) is not None
            and data.y.shape[0] == len(dataset)):
        return _select_targets_tensor(data.y[idx]).double()
    return torch.cat([dataset[int(i)].y for i in idx]).double()


def _select_targets_tensor(y):
    return y if y.shape[-1] == len(TARGET_NAMES) else y[:, list(TARGETS)]


def _subset(dataset, idx):
    if isinstance(dataset, (list, tuple)):
        return [dataset[int(i)] for i in idx]
    return dataset[idx]


__all__ = ['MEV', 'TARGETS', 'TARGET_NAMES', 'CompleteGraph', 'QM9Splits', 'TorchGeometricMissing',
           'default_root', 'load_qm9', 'prepare_graphs', 'require_torch_geometric',
           'split_and_scale', 'transform']
