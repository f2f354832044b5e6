"""The library's training loops do not wait for the device at every step.

On a GPU, a ``.item()``, ``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()`` or a boolean-mask index
inside a step makes the host wait for every queued kernel (so does a tensor made from Python
numbers for a GPU at every step: a copy from the host): the loop runs at the speed of its
synchronisations. Without a GPU the same calls can still be counted: for the length of a loop,
every such call made outside PyTorch itself (by the library, or by the loop's closures) is counted,
and a loop of 10 steps and one of 60 steps must make the same number (a check every K steps with
K = 100, and the copies at the end, are allowed). The GPU script (``benchmarks/gpu_paper.py``)
measures the same loops with ``torch.cuda.set_sync_debug_mode`` on the device.

Covered: ``repro.train.train`` (full batch and mini-batch, GD and Anti-PGD), ``fit_matrix``
(with ``stop_each`` and dense records, as chapter 2 runs it; with a penalty and Adam, as chapter 4),
``repro.sweep.Recorder``-driven loops with every per-run optimizer (chapters 3, 5, 6, 11), SAM,
ASAM and USAM (per run and global, chapter 14), the VAE's training and CSGM / CS-BGM's z and
theta steps (chapter 40), and the QM9 training step with a watch (chapter 39; linear
scalarisation: the other aggregators solve a small problem on the host at every step, by design).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter

import pytest
import torch

from repro import generator
from repro.checks import FiniteWatch
from repro.models import VAE, DeepLinear, EnsembleMLP
from repro.optim import (
    ASAM,
    SAM,
    USAM,
    PerRunAdaGrad,
    PerRunAdam,
    PerRunBatchPerceptron,
    PerRunGD,
    PerRunGroupRMSprop,
    PerRunMomentum,
    PerRunNormalizedGD,
    SubGradient,
    make,
)
from repro.penalties import NuclearFrobeniusRatio
from repro.problems import MatrixCompletion
from repro.solvers import map_estimate
from repro.sweep import Recorder
from repro.train import fit_matrix, train, train_vae

_TORCH = os.path.dirname(torch.__file__)
SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__",
           "nonzero")


@contextlib.contextmanager
def count_syncs():
    """Count host synchronisations requested outside PyTorch's own code while the block runs."""
    counts: Counter = Counter()
    saved = {name: getattr(torch.Tensor, name) for name in SYNCING}
    saved_get, saved_set = torch.Tensor.__getitem__, torch.Tensor.__setitem__

    def outside_torch() -> bool:
        return not sys._getframe(2).f_code.co_filename.startswith(_TORCH)

    def counting(name, method):
        def wrapper(self, *args, **kwargs):
            if outside_torch():
                counts[name] += 1
            return method(self, *args, **kwargs)
        return wrapper

    def is_mask(index) -> bool:
        parts = index if isinstance(index, tuple) else (index,)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts)

    def getitem(self, index):
        if is_mask(index) and outside_torch():
            counts["mask index"] += 1
        return saved_get(self, index)

    def setitem(self, index, value):
        if is_mask(index) and outside_torch():
            counts["mask index"] += 1
        return saved_set(self, index, value)

    def from_host(make):
        # a tensor built from Python numbers for a stated device: on a GPU, a copy that waits
        def wrapper(data, *args, **kwargs):
            if (not isinstance(data, torch.Tensor) and kwargs.get("device") is not None
                    and outside_torch()):
                counts["host data"] += 1
            return make(data, *args, **kwargs)
        return wrapper

    makers = {"tensor": torch.tensor, "as_tensor": torch.as_tensor}
    try:
        for name, method in saved.items():
            setattr(torch.Tensor, name, counting(name, method))
        torch.Tensor.__getitem__, torch.Tensor.__setitem__ = getitem, setitem
        for name, make in makers.items():
            setattr(torch, name, from_host(make))
        yield counts
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)
        torch.Tensor.__getitem__, torch.Tensor.__setitem__ = saved_get, saved_set
        for name, make in makers.items():
            setattr(torch, name, make)


def syncs(loop, steps: int) -> Counter:
    with count_syncs() as counts:
        loop(steps)
    return counts


def assert_no_sync_per_step(loop, short: int = 10, long: int = 60):
    few, many = syncs(loop, short), syncs(loop, long)
    assert many == few, (f"{sum(many.values()) - sum(few.values())} more host synchronisations in "
                         f"{long} steps than in {short}: {dict(few)} -> {dict(many)}")


def test_the_counter_sees_a_synchronising_loop():
    def loop(steps):
        w = torch.ones(3)
        for _ in range(steps):
            if (w > 0).all():       # one __bool__ per step
                w = w * 0.5 + w.sum().item() * 0   # one item per step

    few, many = syncs(loop, 10), syncs(loop, 60)
    assert few == {"__bool__": 10, "item": 10} and many == {"__bool__": 60, "item": 60}


# --- repro.train.train ----------------------------------------------------------------------

def _classification(n=64):
    g = generator(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return {"x": x, "y": y, "x_test": x[:16], "y_test": y[:16]}


@pytest.mark.parametrize("method", ["gd", "anti_pgd"])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_classifier_training_loop(method, batch_size):
    data = _classification()

    def loop(steps):
        model = EnsembleMLP(3, [4, 8, 3], generator=generator(0))
        opt = make(method, model.parameters(), lr=0.1, sigma=0.01, generator=generator(1))
        epochs = steps if batch_size is None else steps // 4   # 4 batches per epoch
        train(model, opt, data, epochs=epochs, batch_size=batch_size, eval_every=5,
              generator=generator(2), progress=False)

    assert_no_sync_per_step(loop, 20, 60)


# --- repro.train.fit_matrix -----------------------------------------------------------------

def _completion():
    return MatrixCompletion(rows=8, cols=6, r=2, n_observed=30, test_fraction=0.2, seed=3,
                            dtype=torch.float64)


def test_fit_matrix_with_stop_each_and_a_record_every_step():
    problem = _completion()

    def loop(steps):
        model = DeepLinear(8, 6, 3, n_seeds=4, scale=0.3, generator=generator(0),
                           dtype=torch.float64)
        opt = PerRunGroupRMSprop(model.parameters(), lr=torch.full((4,), 1e-3))
        fit_matrix(model, problem.loss, opt, steps, record={"test": problem.test_error},
                   record_every=1, stop_below=1e-30, stop_each=True)

    assert_no_sync_per_step(loop)


def test_fit_matrix_with_a_penalty_under_adam():
    problem, penalty = _completion(), NuclearFrobeniusRatio(0.05)

    def loop(steps):
        model = DeepLinear(8, 6, 2, n_seeds=3, scale=0.3, generator=generator(0),
                           dtype=torch.float64)
        fit_matrix(model, problem.loss, torch.optim.Adam(model.parameters(), lr=1e-2), steps,
                   penalty=penalty, record={"test": problem.test_error}, record_every=5,
                   stop_below=1e-30)

    assert_no_sync_per_step(loop)


# --- Recorder-driven loops with the per-run optimizers -----------------------------------------

PER_RUN = {
    "gd": lambda p, lr: PerRunGD(p, lr),
    "momentum": lambda p, lr: PerRunMomentum(p, lr),
    "adagrad": lambda p, lr: PerRunAdaGrad(p, lr),
    "adam": lambda p, lr: PerRunAdam(p, lr),
    "group_rmsprop": lambda p, lr: PerRunGroupRMSprop(p, lr),
    "subgradient": lambda p, lr: SubGradient(p, lr, decay=0.99),
}


@pytest.mark.parametrize("name", sorted(PER_RUN))
def test_recorder_loop_with_a_per_run_optimizer(name):
    target = torch.randn(5, generator=generator(3))

    def loop(steps):
        w = torch.zeros(6, 5, requires_grad=True)
        lr = torch.logspace(-2, 1, 6)                 # the largest step sizes diverge
        opt = PER_RUN[name]([w], lr)
        rec = Recorder(6, steps, limit=1e6)
        for t in range(steps + 1):
            loss = ((w - target) ** 2).sum(1) * 10
            alive = rec.record(t, loss.detach())
            if t == steps:
                break
            opt.zero_grad()
            (loss * alive).sum().backward()
            opt.step()

    assert_no_sync_per_step(loop)


def test_recorder_loop_with_normalized_gd_and_the_perceptron():
    g = generator(4)
    x = torch.randn(20, 3, generator=g)
    y = torch.sign(x[:, 0] + 0.1)

    def loop(steps):
        w = torch.zeros(4, 3, requires_grad=True)
        v = torch.zeros(4, 3)
        lr = torch.logspace(-1, 1, 4)
        ngd, perceptron = PerRunNormalizedGD([w], lr), PerRunBatchPerceptron([v], lr, x, y)
        rec = Recorder(4, steps)

        def closure():
            ngd.zero_grad()
            losses = torch.nn.functional.softplus(-(w @ x.T) * y).mean(1)
            losses.sum().backward()
            return losses

        for t in range(steps):
            rec.record(t, ngd.step(closure).detach())
            perceptron.step()

    assert_no_sync_per_step(loop)


# --- SAM ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [SAM, ASAM, USAM])
@pytest.mark.parametrize("per_run", [False, True])
def test_sam_steps(cls, per_run):
    data = _classification()

    def loop(steps):
        model = EnsembleMLP(3, [4, 8, 3], generator=generator(0))
        if per_run:
            opt = cls(model.parameters(), base=PerRunGD, rho=torch.tensor([0.0, 0.05, 0.1]),
                      per_run=True, lr=torch.full((3,), 0.1))
        else:
            opt = cls(model.parameters(), base="gd", rho=0.05, lr=0.1, momentum=0.9)

        def closure():
            logits = model(data["x"])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1),
                                                     data["y"].repeat(3)) * 3
            loss.backward()
            return loss

        for _ in range(steps):
            opt.step(closure)

    assert_no_sync_per_step(loop)


# --- chapter 40: the VAE and the MAP estimators ------------------------------------------------

def test_vae_training_loop():
    x = torch.rand(40, 6, generator=generator(0))

    def loop(steps):                      # 4 batches of 10 per epoch
        vae = VAE(6, 2, (5,))
        history = train_vae(vae, x, epochs=steps // 4, batch_size=10, generator=generator(1))
        assert len(history) == steps // 4

    assert_no_sync_per_step(loop, 20, 60)


def test_csgm_and_cs_bgm_steps():
    g = generator(2)
    decoder = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Sigmoid())
    A, y = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, generator=g)

    def loop(steps):
        map_estimate(decoder, A, y, lam_z=0.1, lam_theta=1.0, steps_z=steps, steps_theta=steps,
                     restarts=2, generator=generator(3))

    assert_no_sync_per_step(loop)


# --- chapter 39: the QM9 training step -----------------------------------------------------------

def test_qm9_training_steps_with_a_watch():
    from torch_geometric.loader import DataLoader

    from _synthetic_qm9 import prepared_molecules
    from repro.data import split_and_scale
    from repro.models import MPNN
    from repro.mtl import make as make_aggregator
    from repro.train import train_step

    splits = split_and_scale(prepared_molecules(24), 4, 4, seed=0)
    batch = next(iter(DataLoader(splits.train, batch_size=8)))
    mean, std = splits.mean.float(), splits.std.float()

    def loop(steps):
        model = MPNN.seeded(0, dim=8)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        watch = FiniteWatch("QM9 task losses")
        for step in range(steps):
            train_step(model, batch, make_aggregator("ls"), opt, mean, std, step=step,
                       watch=watch)
        watch.check()

    assert_no_sync_per_step(loop)
