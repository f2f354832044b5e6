"""repro.metrics.network_curvature (curvlinops) against the exact, hand-rolled tools of
repro.metrics.curvature on a small network: the same Hessian, eigenvalues, trace and density."""

import pytest
import torch
from torch.func import functional_call

from repro import generator
from repro.metrics import hessian
from repro.metrics.network_curvature import (
    hessian_operator,
    hessian_spectral_density,
    hessian_top_eigenvalues,
    hessian_trace_estimate,
)


@pytest.fixture
def problem():
    torch.manual_seed(0)
    g = generator(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    model = model.double()
    X = torch.randn(40, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    loss_fn = torch.nn.CrossEntropyLoss()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss_of(flat):
        params, i = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = flat[i:i + shape.numel()].reshape(shape)
            i += shape.numel()
        return loss_fn(functional_call(model, params, (X,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    H = hessian(loss_of, flat)
    return model, loss_fn, X, y, H


def test_operator_is_the_exact_hessian(problem):
    model, loss_fn, X, y, H = problem
    # Two batches: the operator averages them as one data set.
    op = hessian_operator(model, loss_fn, [(X[:25], y[:25]), (X[25:], y[25:])])
    eye = torch.eye(H.shape[0], dtype=torch.float64)
    torch.testing.assert_close(op @ eye, H, rtol=1e-8, atol=1e-10)


def test_top_eigenvalues_match_eigvalsh(problem):
    model, loss_fn, X, y, H = problem
    exact = torch.linalg.eigvalsh(H).flip(0)[:3]
    got = hessian_top_eigenvalues(model, loss_fn, (X, y), k=3)
    assert got.dtype == torch.float64 and got.shape == (3,)
    torch.testing.assert_close(got, exact, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["hutch++", "hutchinson"])
def test_trace_estimates_are_unbiased_and_reproducible(problem, method):
    model, loss_fn, X, y, H = problem
    exact = float(torch.trace(H))
    runs = torch.tensor([hessian_trace_estimate(model, loss_fn, (X, y), matvecs=21, method=method,
                                                seed=s) for s in range(40)], dtype=torch.float64)
    sem = float(runs.std() / len(runs) ** 0.5)
    assert abs(float(runs.mean()) - exact) < 4 * sem + 1e-9
    assert len(set(runs.tolist())) > 1  # different seeds, different probes
    again = hessian_trace_estimate(model, loss_fn, (X, y), matvecs=21, method=method, seed=3)
    assert again == float(runs[3])


def test_hutchpp_beats_hutchinson_on_spread(problem):
    model, loss_fn, X, y, H = problem
    exact = float(torch.trace(H))

    def error(method):
        return sum(abs(hessian_trace_estimate(model, loss_fn, (X, y), matvecs=30, method=method,
                                              seed=s) - exact) for s in range(20))

    assert error("hutch++") < error("hutchinson")


def test_spectral_density_integrates_to_one_and_covers_the_spectrum(problem):
    model, loss_fn, X, y, H = problem
    grid, density = hessian_spectral_density(model, loss_fn, (X, y), lanczos_steps=30, points=400)
    assert grid.shape == density.shape == (400,)
    assert float(torch.trapezoid(density, grid)) == pytest.approx(1.0, abs=0.05)
    eig = torch.linalg.eigvalsh(H)
    assert float(grid.min()) <= float(eig.min()) and float(grid.max()) >= float(eig.max())


def test_bad_arguments_are_refused(problem):
    model, loss_fn, X, y, _ = problem
    with pytest.raises(ValueError, match="trace method"):
        hessian_trace_estimate(model, loss_fn, (X, y), method="exact")
    with pytest.raises(ValueError, match="below the number of parameters"):
        hessian_trace_estimate(model, loss_fn, (X, y), matvecs=43)
    with pytest.raises(ValueError, match="k must be"):
        hessian_top_eigenvalues(model, loss_fn, (X, y), k=0)
    with pytest.raises(ValueError, match="data must be"):
        hessian_operator(model, loss_fn, [])
