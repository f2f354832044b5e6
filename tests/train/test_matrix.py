"""repro.train.matrix: fit_matrix's batched runs are independent runs, records have the promised
shapes, early stop and divergence behave."""

import pytest
import torch

from repro import Diverged
from repro.metrics import singular_values
from repro.models import DeepLinear
from repro.penalties import NuclearFrobeniusRatio
from repro.problems import MatrixCompletion
from repro.train import fit_matrix


def _problem():
    return MatrixCompletion(rows=12, cols=10, r=2, n_observed=60, test_fraction=0.2, seed=3,
                            dtype=torch.float64)


def _model(S, depth=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DeepLinear(12, 10, depth, n_seeds=S, scale=0.3, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("opt", ["gd", "adam"])
def test_batched_runs_equal_runs_one_at_a_time(opt):
    # The claim the chapters' sweeps rest on: S runs trained together (with a penalty) end where
    # the same S runs trained one after another end.
    problem, penalty = _problem(), NuclearFrobeniusRatio(0.05)
    make = (lambda p: torch.optim.SGD(p, lr=0.05)) if opt == "gd" else \
        (lambda p: torch.optim.Adam(p, lr=0.01))
    batched = _model(3)
    alone = [DeepLinear.from_factors([f.detach()[s:s + 1] for f in batched.factors])
             for s in range(3)]
    fit_matrix(batched, problem.loss, make(batched.parameters()), 60, penalty=penalty)
    for s, model in enumerate(alone):
        fit_matrix(model, problem.loss, make(model.parameters()), 60, penalty=penalty)
        torch.testing.assert_close(model()[0], batched()[s], rtol=1e-9, atol=1e-11)


def test_records_and_losses_have_one_row_per_snapshot():
    problem, model = _problem(), _model(2, depth=2)
    out = fit_matrix(model, problem.loss, torch.optim.SGD(model.parameters(), lr=0.2), 50,
                     record={"sv": singular_values, "test": problem.test_error}, record_every=20)
    assert out["step"] == [0, 20, 40, 50] and out["steps"] == 50
    assert out["loss"].shape == (4, 2) and out["sv"].shape == (4, 2, 10)
    assert out["test"].shape == (4, 2)
    assert (out["loss"][-1] < out["loss"][0]).all()
    torch.testing.assert_close(out["loss"][-1], problem.loss(model()).detach())
    torch.testing.assert_close(out["objective"], out["loss"])  # no penalty


def test_penalty_enters_the_objective_not_the_loss():
    problem, model = _problem(), _model(2, depth=1)
    pen = NuclearFrobeniusRatio(0.5)
    out = fit_matrix(model, problem.loss, torch.optim.SGD(model.parameters(), lr=0.1), 5,
                     penalty=pen)
    W = model().detach()
    torch.testing.assert_close(out["objective"][-1], problem.loss(W) + pen(W))


def test_stops_once_every_run_is_below_the_tolerance():
    problem, model = _problem(), _model(2, depth=1)
    out = fit_matrix(model, problem.loss, torch.optim.SGD(model.parameters(), lr=1.0), 10_000,
                     stop_below=1e-8)
    assert out["steps"] < 10_000
    assert (out["loss"][-1] < 1e-8).all() and out["step"][-1] == out["steps"]


def test_divergence_raises_and_bad_steps_are_refused():
    problem, model = _problem(), _model(1, depth=3)
    with pytest.raises(Diverged):
        fit_matrix(model, problem.loss, torch.optim.SGD(model.parameters(), lr=1e3), 200,
                   check_every=1)
    with pytest.raises(ValueError):
        fit_matrix(model, problem.loss, torch.optim.SGD(model.parameters(), lr=0.1), -1)


def _completion_loss(M: torch.Tensor, mask: torch.Tensor):
    return lambda W: (((W - M) * mask) ** 2).sum((-1, -2)) / (2 * mask.sum())


def test_each_run_stops_at_its_own_crossing_like_a_plain_loop():
    """stop_each: the batched runs end exactly where separate plain GD loops (written here
    without fit_matrix) that stop at their own crossing of the threshold end."""
    from repro.optim import PerRunGD

    g = torch.Generator().manual_seed(0)
    M = torch.randn(5, 1, dtype=torch.float64, generator=g) @ torch.randn(
        1, 5, dtype=torch.float64, generator=g)
    mask = (torch.rand(5, 5, generator=g) < 0.6).double()
    loss_fn = _completion_loss(M, mask)
    lrs = torch.tensor([0.05, 0.2, 0.4], dtype=torch.float64)   # three runs, three speeds
    model = DeepLinear(5, 5, depth=2, n_seeds=3, scale=0.3, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(1))
    start = [f.detach().clone() for f in model.factors]
    hist = fit_matrix(model, loss_fn, PerRunGD(model.parameters(), lrs), steps=400,
                      stop_below=1e-3, stop_each=True)
    for s in range(3):
        factors = [f[s:s + 1].clone().requires_grad_(True) for f in start]
        stop = -1
        for step in range(401):
            W = factors[1] @ factors[0]
            loss = loss_fn(W)[0]
            if loss < 1e-3:
                stop = step
                break
            if step == 400:
                break
            grads = torch.autograd.grad(loss, factors)
            with torch.no_grad():
                for f, gr in zip(factors, grads):
                    f -= lrs[s] * gr
        assert int(hist["stopped_at"][s]) == stop
        for f, mine in zip(factors, model.factors):
            torch.testing.assert_close(mine[s:s + 1].detach(), f.detach(), rtol=1e-12, atol=1e-14)
    assert len(set(hist["stopped_at"].tolist())) > 1        # the runs did stop at different steps


def test_a_stopped_run_stays_put_under_adam():
    g = torch.Generator().manual_seed(2)
    M = torch.randn(4, 4, dtype=torch.float64, generator=g)
    loss_fn = _completion_loss(M, torch.ones(4, 4, dtype=torch.float64))
    model = DeepLinear(4, 4, depth=1, n_seeds=2, scale=0.1, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.factors[0][0] = M + 1e-3                      # run 0 starts below the threshold
    hist = fit_matrix(model, loss_fn, torch.optim.Adam(model.parameters(), lr=0.05), steps=50,
                      stop_below=1e-4, stop_each=True)
    assert hist["stopped_at"].tolist()[0] == 0
    torch.testing.assert_close(model.factors[0][0].detach(), M + 1e-3)
    with pytest.raises(ValueError, match="stop_each needs stop_below"):
        fit_matrix(model, loss_fn, torch.optim.Adam(model.parameters()), 1, stop_each=True)


@pytest.mark.parametrize("stop_each", [False, True])
def test_the_stopping_rule_read_every_k_steps_ends_where_a_check_every_step_ends(stop_each):
    # the host reads the stopping rule only every check_every steps; the runs are held from the
    # step where it held, so the result is the one a check at every step gives
    problem = _problem()
    outs, finals = [], []
    for check_every in (1, 7, 1000):
        model = _model(3, depth=2)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        outs.append(fit_matrix(model, problem.loss, opt, 400, record={"test": problem.test_error},
                               record_every=5, stop_below=1e-4, stop_each=stop_each,
                               check_every=check_every))
        finals.append(model().detach())
    first = outs[0]
    assert first["steps"] < 400 and first["step"][-1] == first["steps"]
    for out, final in zip(outs[1:], finals[1:]):
        assert out["steps"] == first["steps"] and out["step"] == first["step"]
        for key in ("loss", "objective", "test"):
            assert torch.equal(out[key], first[key])
        assert torch.equal(final, finals[0])
        if stop_each:
            assert torch.equal(out["stopped_at"], first["stopped_at"])
