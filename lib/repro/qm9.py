"""QM9 as a multi-task benchmark, as in Table 1 of Navon et al. (2022): data, network, training.

- ``load_qm9``        a local copy of QM9 through ``torch_geometric.datasets.QM9`` (never
                      downloaded here: a missing copy raises ``repro.data.DatasetMissing``); the
                      11 targets of the paper, molecules as complete graphs with distances
- ``split_and_scale`` the paper's split (shuffle; 10 000 test, 10 000 validation, the rest
                      training) and the mean / standard deviation of the training targets
- ``MPNN``            the paper's message-passing network: a linear embedding, three rounds of
                      an edge-conditioned convolution (NNConv) with a GRU update, Set2Set
                      read-out, a shared linear layer and one linear head per target
- ``fit``             multi-task training with any aggregator of ``repro.mtl``; model selection
                      on the validation Delta_m, per-target test MAE in the paper's units
- ``qm9_delta_m``     Delta_m% against the paper's single-task (STL) errors

Everything that touches torch_geometric imports it on first use, so ``import repro.qm9`` works
without it; the functions that need it raise ``TorchGeometricMissing`` (an ImportError) with a
one-line message.

Task gradients. Like the paper's Nash-MTL, ``fit`` differentiates each task's loss with respect
to *all shared parameters* (one backward pass per task, ``grads="parameters"``). The cheaper
variant the paper also reports (gradients with respect to the shared representation, about 6x
faster on QM9 but a worse Delta_m) is ``grads="representation"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from repro._common import check_finite, device as default_device, generator
from repro.data import DatasetMissing
from repro.mtl import Aggregator, delta_m, set_grad, task_gradients

__all__ = [
    "MEV", "PAPER_TABLE1_DELTA_M", "STL_MAE", "TARGETS", "TARGET_NAMES", "MPNN",
    "CompleteGraph", "FitResult", "QM9Splits", "TorchGeometricMissing", "evaluate", "fit", "load_qm9",
    "default_root", "prepare_graphs", "qm9_delta_m", "split_and_scale", "train_step",
    "transform",
]

# Columns of PyG's QM9 ``y`` (19 columns) that the paper uses, in the paper's order: dipole
# moment, polarizability, HOMO, LUMO, electronic spatial extent, ZPVE, the four atomization
# energies U0, U, H, G (columns 12-15, as DimeNet uses them) and the heat capacity. Column 4 (the
# HOMO-LUMO gap) is left out because it is the difference of two others.
TARGETS = (0, 1, 2, 3, 5, 6, 12, 13, 14, 15, 11)
TARGET_NAMES = ("mu", "alpha", "homo", "lumo", "r2", "zpve", "U0", "U", "H", "G", "Cv")
# Positions (in TARGETS) whose errors are reported in meV instead of eV, as in the paper.
MEV = (2, 3, 5, 6, 7, 8, 9)
# Test MAE of single-task learning, per target in the paper's units: the baseline of Delta_m
# (Navon et al., 2022, Table 1 and its code).
STL_MAE = (0.0671, 0.1814, 60.576, 53.915, 0.5027, 4.539, 58.838, 64.244, 63.852, 66.223, 0.07212)
# Table 1 of the paper: Delta_m% on QM9 (mean of three seeds).
PAPER_TABLE1_DELTA_M = {"ls": 177.6, "si": 77.8, "rlw": 203.8, "dwa": 175.3, "uw": 108.0,
                        "mgda": 120.5, "pcgrad": 125.7, "cagrad": 112.8, "imtl": 77.2,
                        "nash": 62.0}

PYG_HINT = "pip install torch_geometric (pure Python, no compiled extensions needed)"


class TorchGeometricMissing(ImportError):
    """torch_geometric is not installed; the QM9 experiment needs it."""


def _pyg():
    try:
        import torch_geometric
    except ImportError as err:
        raise TorchGeometricMissing(
            f"the QM9 experiment needs torch_geometric, which is not installed ({PYG_HINT})"
        ) from err
    return torch_geometric


# --- data -------------------------------------------------------------------------------------

def transform(data):
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

    def __call__(self, data):
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


def load_qm9(root=None):
    """QM9 from a local copy in PyG's layout (``root/processed/data_v3.pt``, or the raw files
    under ``root/raw/`` that PyG processes once), with ``transform`` applied to every molecule.

    Never downloads: a missing copy raises ``DatasetMissing`` (one line, where we looked);
    a missing torch_geometric raises ``TorchGeometricMissing``.
    """
    _pyg()
    root = Path(root) if root else default_root()
    processed, raw = _qm9_files(root)
    if not processed.is_file() and not all(p.is_file() for p in raw):
        raise DatasetMissing(
            f"no local copy of QM9 under {root}: looked for {processed} or "
            f"{', '.join(str(p) for p in raw)}; copy PyG's QM9 folder there (nothing is downloaded)")

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
    _pyg()
    return [transform(g.clone()) for g in graphs]


@dataclass
class QM9Splits:
    train: object
    val: object
    test: object
    mean: torch.Tensor     # (1, 11) of the training targets
    std: torch.Tensor      # (1, 11)


def split_and_scale(dataset, n_test: int = 10_000, n_val: int = 10_000, seed: int = 0) -> QM9Splits:
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
    if data is not None and getattr(data, "y", None) is not None and data.y.shape[0] == len(dataset):
        return _select_targets_tensor(data.y[idx]).double()
    return torch.cat([dataset[int(i)].y for i in idx]).double()


def _select_targets_tensor(y):
    return y if y.shape[-1] == len(TARGET_NAMES) else y[:, list(TARGETS)]


def _subset(dataset, idx):
    if isinstance(dataset, (list, tuple)):
        return [dataset[int(i)] for i in idx]
    return dataset[idx]


# --- the network ------------------------------------------------------------------------------

class MPNN(nn.Module):
    """The message-passing network of the paper's QM9 experiment (PyG's NNConv example):
    h = relu(W x); three rounds of m = relu(NNConv(h)), h = GRU(m, h) with one shared
    convolution and GRU; Set2Set (3 steps) pools the atoms; z = relu(W' pool) is the shared
    representation and head k predicts target k from z."""

    def __init__(self, n_tasks: int = 11, num_features: int = 11, edge_features: int = 5,
                 dim: int = 64, rounds: int = 3):
        super().__init__()
        _pyg()
        from torch_geometric.nn import NNConv, Set2Set

        self.rounds = rounds
        self.embed = nn.Linear(num_features, dim)
        edge_net = nn.Sequential(nn.Linear(edge_features, 128), nn.ReLU(), nn.Linear(128, dim * dim))
        self.conv = NNConv(dim, dim, edge_net, aggr="mean")
        self.gru = nn.GRU(dim, dim)
        self.pool = Set2Set(dim, processing_steps=3)
        self.shared_out = nn.Linear(2 * dim, dim)
        # K heads of one output each, stored as one (K, dim) layer: row k belongs to task k only
        self.heads = nn.Linear(dim, n_tasks)

    def representation(self, data) -> torch.Tensor:
        dtype = self.embed.weight.dtype          # the data set stores float32 features
        h = torch.relu(self.embed(data.x.to(dtype)))
        edge_attr = data.edge_attr.to(dtype)
        state = h.unsqueeze(0)
        for _ in range(self.rounds):
            m = torch.relu(self.conv(h, data.edge_index, edge_attr))
            h, state = self.gru(m.unsqueeze(0), state)
            h = h.squeeze(0)
        return torch.relu(self.shared_out(self.pool(h, data.batch)))

    def forward(self, data) -> torch.Tensor:
        return self.heads(self.representation(data))

    @classmethod
    def seeded(cls, seed: int, dtype: torch.dtype = torch.float32, **kwargs) -> "MPNN":
        """A network whose initial weights depend only on ``seed`` (torch's global generator is
        left as it was: PyTorch layers draw their initial weights from it), in ``dtype``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(**kwargs).to(dtype)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("heads.")]

    def task_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())


# --- metrics ----------------------------------------------------------------------------------

def qm9_delta_m(mae, baseline: Sequence[float] = STL_MAE) -> float:
    """Delta_m% of per-target MAEs (paper units) against the single-task errors; all 11 targets
    are errors (lower is better)."""
    return delta_m(mae, baseline, [False] * len(baseline))


def _units(mae: torch.Tensor) -> np.ndarray:
    out = mae.detach().double().cpu().numpy().copy()
    if out.shape[-1] == len(TARGETS):
        out[..., list(MEV)] *= 1000.0                      # eV -> meV
    return out


@torch.no_grad()
def evaluate(model: MPNN, loader, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Per-target mean absolute error over ``loader``, in the paper's units (meV where MEV)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for data in loader:
        data = data.to(dev)
        pred = model(data).double() * std.to(dev) + mean.to(dev)
        total = total + (pred - data.y.double()).abs().sum(0)
        count += data.y.shape[0]
    model.train(was_training)
    return _units(total / count)


# --- training ---------------------------------------------------------------------------------

@dataclass
class FitResult:
    test_mae: np.ndarray             # per target, paper units, at the best validation Delta_m
    test_delta_m: float
    val_delta_m: float               # the best one
    best_epoch: int                  # 1-based
    history: dict = field(default_factory=dict)   # per epoch: train_loss, val_delta_m, lr
    seconds: float = 0.0


def train_step(model: MPNN, data, aggregator: Aggregator, optimizer, mean, std,
               grads: str = "parameters", max_norm: float = 0.0, step: int | None = None
               ) -> torch.Tensor:
    """One multi-task step; returns the K task losses (mean squared error on standardised targets).

    The shared parameters follow the aggregator's direction. Head k gets the gradient of w_k l_k,
    w the aggregator's task weights (all 1 for methods without weights, such as PCGrad): with
    Nash-MTL that is the gradient of sum_k alpha_k l_k, as in the paper's code. ``max_norm`` > 0
    clips the shared gradient's norm (the paper's code does so, at 1, for Nash-MTL)."""
    optimizer.zero_grad(set_to_none=True)
    z = model.representation(data)
    out = model.heads(z)
    y = ((data.y - mean) / std).to(out.dtype)
    losses = ((out - y) ** 2).mean(0)                   # (K,)
    check_finite(losses, "QM9 task losses", step)
    shared = model.shared_parameters()
    if grads == "parameters":
        G = task_gradients(losses, shared)                            # one backward per task
        d = aggregator(G.double()).to(G.dtype)
    elif grads == "representation":
        G = task_gradients(losses, [z])                                # (K, batch * dim)
        d = aggregator(G.double()).to(G.dtype)
    else:
        raise ValueError(f"grads must be 'parameters' or 'representation', got {grads!r}")
    w = aggregator.weights
    w = torch.ones_like(losses) if w is None else w.detach().to(losses.dtype).reshape(-1)
    heads = model.task_parameters()
    head_grads = torch.autograd.grad((w * losses).sum(), heads, retain_graph=grads != "parameters")
    if grads == "parameters":
        set_grad(shared, d)
    else:   # push the aggregated direction on the representation through the shared network
        grads_shared = torch.autograd.grad(z, shared, grad_outputs=d.view_as(z))
        for p, g in zip(shared, grads_shared):
            p.grad = g
    for p, g in zip(heads, head_grads):
        p.grad = g
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(shared, max_norm)
    optimizer.step()
    return losses.detach()


def fit(model: MPNN, splits: QM9Splits, aggregator: Aggregator, epochs: int = 300,
        batch_size: int = 120, lr: float = 1e-3, seed: int = 0, grads: str = "parameters",
        max_norm: float = 0.0, device=None, baseline: Sequence[float] = STL_MAE,
        workers: int = 0, log: Callable[[str], None] | None = None) -> FitResult:
    """Train ``model`` on ``splits.train`` with Adam (``lr``) and the paper's schedule: the step is
    multiplied by 0.7 when the validation Delta_m has not improved for 5 epochs (down to 1e-5).
    After each epoch the validation and test MAEs are measured; the result is the test MAE of the
    epoch with the best validation Delta_m (the paper's model selection). ``workers`` > 0 builds
    the graphs (complete graph, distances: about 1 ms per molecule) in that many processes."""
    _pyg()
    from torch_geometric.loader import DataLoader

    dev = default_device() if device is None else torch.device(device)
    model.to(dev)
    mean, std = splits.mean.to(dev, torch.float32), splits.std.to(dev, torch.float32)
    more = {"num_workers": workers, "persistent_workers": True} if workers > 0 else {}
    train = DataLoader(splits.train, batch_size=batch_size, shuffle=True,
                       generator=generator(seed), **more)
    val = DataLoader(splits.val, batch_size=batch_size, **more)
    test = DataLoader(splits.test, batch_size=batch_size, **more)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.7,
                                                          patience=5, min_lr=1e-5)
    history = {"train_loss": [], "val_delta_m": [], "test_delta_m": [], "lr": []}
    best, step = None, 0
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total, batches = 0.0, 0
        for data in train:
            data = data.to(dev)
            step += 1
            losses = train_step(model, data, aggregator, optimizer, mean, std, grads, max_norm,
                                step)
            total += float(losses.mean())
            batches += 1
        val_mae = evaluate(model, val, mean, std)
        test_mae = evaluate(model, test, mean, std)
        val_dm, test_dm = qm9_delta_m(val_mae, baseline), qm9_delta_m(test_mae, baseline)
        history["train_loss"].append(total / max(batches, 1))
        history["val_delta_m"].append(val_dm)
        history["test_delta_m"].append(test_dm)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if best is None or val_dm <= best[1]:
            best = (epoch, val_dm, test_mae, test_dm)
        schedule.step(val_dm)
        if log is not None:
            log(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, validation "
                f"Delta_m {val_dm:.1f}%, test Delta_m {test_dm:.1f}%")
    epoch, val_dm, test_mae, test_dm = best
    return FitResult(test_mae, test_dm, val_dm, epoch, history, time.perf_counter() - started)
