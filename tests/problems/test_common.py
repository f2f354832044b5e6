"""Family tests over ``repro.problems.PROBLEMS`` (in the manner of optax's contrib/_common_test.py):
every closed form a problem offers (``gradient``, ``hessian``, ``hessian_trace``, ``grad_X``, the
task ``gradients``) against torch.autograd, at random points, batched: the closed form on a batch
of S points equals, point by point, autograd on the unbatched loss.

A registered problem must either have its closed forms listed in ``CASES`` or have none of the
methods in ``CLOSED_FORMS`` (``test_every_closed_form_is_tested``).
"""

from __future__ import annotations

import pytest
import torch

from repro import generator
from repro.problems import (
    PROBLEMS,
    LpRegression,
    QuadraticRegression,
    ScalarNetwork,
    SymmetricSensing,
    ToyTwoObjectives,
    WideningValley,
)

CLOSED_FORMS = ("gradient", "gradients", "hessian", "hessian_trace", "hessian_trace_w", "grad_X")
S = 4                                   # points per batch
F64 = torch.float64


def grad_of(f, *xs):
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    return torch.autograd.grad(f(*xs), xs)


def hessian_of(f, x):
    return torch.autograd.functional.hessian(f, x.detach().clone())


# each case: build the problem, draw a batch of points, and pairs (closed form on the batch,
# autograd reference on one point)

def valley_case(seed):
    prob = WideningValley(d=4)
    g = generator(seed)
    u, v = torch.randn(S, 4, generator=g, dtype=F64), torch.randn(S, generator=g, dtype=F64)

    def grad_ref(s):
        gu, gv = grad_of(prob.loss, u[s], v[s])
        return torch.cat([gu, gv[None]])

    def trace_ref(s):
        return torch.trace(hessian_of(prob.loss_w, torch.cat([u[s], v[s, None]])))

    gu, gv = prob.gradient(u, v)
    return {
        "gradient": (torch.cat([gu, gv[:, None]], 1), grad_ref),
        "hessian_trace": (prob.hessian_trace(u, v), trace_ref),
        "hessian_trace_w": (prob.hessian_trace_w(torch.cat([u, v[:, None]], 1)), trace_ref),
    }


def quadratic_regression_case(seed):
    prob = QuadraticRegression(d=12, n=5, k=2, noise=0.1, seed=seed)
    w = torch.randn(S, 12, generator=generator(seed + 50), dtype=F64)
    return {
        "gradient": (prob.gradient(w), lambda s: grad_of(prob.loss, w[s])[0]),
        "hessian_trace": (prob.hessian_trace(w),
                          lambda s: torch.trace(hessian_of(prob.loss, w[s]))),
    }


def lp_regression_case(seed, p=4):
    g = generator(seed)
    X, y = torch.randn(9, 3, generator=g, dtype=F64), torch.randn(9, generator=g, dtype=F64)
    prob = LpRegression(X, y, p=p, bias=True)
    w = torch.randn(S, 4, generator=g, dtype=F64)
    return {
        "gradient": (prob.gradient(w), lambda s: grad_of(prob.loss, w[s])[0]),
        "hessian": (prob.hessian(w), lambda s: hessian_of(prob.loss, w[s])),
    }


def symmetric_sensing_case(seed, measurements="gaussian"):
    prob = SymmetricSensing(n=5, r=2, m=7, n_instances=2, measurements=measurements, seed=seed)
    # instance first, then a batch of S points per instance: (P, S, n, n); flattened to 2 S
    X = torch.randn(2, S, 5, 5, generator=generator(seed + 50), dtype=F64)

    def ref(s):
        p, b = divmod(s, S)
        # the loss of instance p alone at one point: keep the instance dimension, batch of 1
        return grad_of(lambda x: prob.loss_X(_place(x, p, b, X)).sum(), X[p, b])[0]

    return {"grad_X": (prob.grad_X(X).reshape(2 * S, 5, 5), ref)}


def _place(x, p, b, X):
    """X with point (p, b) replaced by x (so the other points carry no gradient)."""
    out = X.detach().clone()
    out[p, b] = x
    return out


def multitask_toy_case(seed):
    toy = ToyTwoObjectives(scale1=0.1)
    x = 4 * torch.randn(S, 2, generator=generator(seed), dtype=F64)
    x[:, 1] = x[:, 1].abs() * torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=F64)  # both branches
    f, G = toy.gradients(x)
    torch.testing.assert_close(f, toy(x))

    def ref(s):
        return torch.stack([grad_of(lambda z, k=k: toy(z)[k], x[s])[0] for k in range(2)])

    return {"gradients": (G, ref)}


def scalar_network_case(seed):
    prob = ScalarNetwork(depth=4, target=1.3)
    w = torch.randn(S, 4, generator=generator(seed), dtype=F64)
    return {
        "gradient": (prob.gradient(w), lambda s: grad_of(prob.loss, w[s])[0]),
        "hessian": (prob.hessian(w), lambda s: hessian_of(prob.loss, w[s])),
    }


CASES = {
    "widening_valley": valley_case,
    "quadratic_regression": quadratic_regression_case,
    "lp_regression": lp_regression_case,
    "symmetric_sensing": symmetric_sensing_case,
    "multitask_toy": multitask_toy_case,
    "scalar_network": scalar_network_case,
}
PAIRS = [(name, form) for name, case in CASES.items() for form in case(0)]


def test_every_closed_form_is_tested():
    assert set(CASES) <= set(PROBLEMS)
    for name, cls in PROBLEMS.items():
        offered = {form for form in CLOSED_FORMS if callable(getattr(cls, form, None))}
        tested = set(CASES[name](0)) if name in CASES else set()
        assert offered == tested, f"{name}: closed forms {sorted(offered)}, tested {sorted(tested)}"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,form", PAIRS, ids=[f"{n}-{f}" for n, f in PAIRS])
def test_closed_form_matches_autograd(name, form, seed):
    batched, reference = CASES[name](seed)[form]
    assert batched.shape[0] == (2 * S if name == "symmetric_sensing" else S)
    for s in range(batched.shape[0]):
        torch.testing.assert_close(batched[s], reference(s), rtol=1e-10, atol=1e-12,
                                   msg=f"{name}.{form}, point {s}")


@pytest.mark.parametrize("p", [2, 6])
def test_lp_regression_other_exponents(p):
    for form, (batched, reference) in lp_regression_case(3, p=p).items():
        for s in range(S):
            torch.testing.assert_close(batched[s], reference(s), rtol=1e-10, atol=1e-12,
                                       msg=f"p = {p}, {form}, point {s}")


def test_commuting_sensing_gradient():
    (batched, reference), = symmetric_sensing_case(4, measurements="commuting").values()
    for s in range(2 * S):
        torch.testing.assert_close(batched[s], reference(s), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_losses_are_one_per_batch_element(name):
    # the contract of the package: a batch of parameters gives one loss per element, each equal
    # to the loss of that element alone (so a sum of the losses trains independent runs)
    g = generator(5)
    if name == "widening_valley":
        prob = WideningValley(3)
        batch, loss = torch.randn(S, 4, generator=g, dtype=F64), prob.loss_w
    elif name == "quadratic_regression":
        prob = QuadraticRegression(d=6, n=4, k=2)
        batch, loss = torch.randn(S, 6, generator=g, dtype=F64), prob.loss
    elif name == "lp_regression":
        prob = LpRegression(torch.randn(7, 3, generator=g, dtype=F64),
                            torch.randn(7, generator=g, dtype=F64))
        batch, loss = torch.randn(S, 3, generator=g, dtype=F64), prob.loss
    elif name == "matrix_sensing":
        prob = PROBLEMS[name](n=4, r=1, m=10)
        batch, loss = torch.randn(S, 4, 2, generator=g, dtype=F64), prob.loss
    elif name in ("symmetric_sensing", "matrix_completion"):
        # instance-first problems: parameters (P = 1, S, ...), one loss per (instance, seed)
        if name == "symmetric_sensing":
            prob = PROBLEMS[name](n=4, r=1, m=10, n_instances=1)
            batch = torch.randn(1, S, 4, 2, generator=g, dtype=F64)
        else:
            prob = PROBLEMS[name](rows=4, cols=3, r=1, n_observed=6, n_instances=1)
            batch = torch.randn(1, S, 4, 3, generator=g, dtype=F64)
        out = prob.loss(batch)
        assert out.shape == (1, S)
        for s in range(S):
            torch.testing.assert_close(out[0, s], prob.loss(batch[:, s])[0])
        return
    elif name == "robust_sensing":
        # instance, then fraction first: parameters (P = 1, F = 2, S, n, k), one loss per (P, F, S)
        prob = PROBLEMS[name](n=4, r=1, m=10, n_instances=1, fractions=(0.0, 0.3))
        batch = torch.randn(1, 2, S, 4, 2, generator=g, dtype=F64)
        for loss in (prob.loss, prob.loss_l2):
            out = loss(batch)
            assert out.shape == (1, 2, S)
            for s in range(S):
                torch.testing.assert_close(out[:, :, s], loss(batch[:, :, s]))
        return
    elif name == "compressed_sensing":
        prob = PROBLEMS[name](n=6, m=3, batch=(S,), dtype=F64)
        x = torch.randn(S, 6, generator=g, dtype=F64)
        out = prob.measure(x)                         # noiseless: one y per problem
        assert out.shape == (S, 3)
        for s in range(S):
            torch.testing.assert_close(out[s], prob.A[s] @ x[s])
        return
    elif name == "planted_quadratic":
        prob = PROBLEMS[name](n=4, d=5, alignment=0.3)
        batch, loss = torch.randn(S, 5, generator=g, dtype=F64), prob.loss
    elif name == "separable":
        prob = PROBLEMS[name](n=9, d=3, seed=1)
        batch, loss = torch.randn(S, 3, generator=g, dtype=F64), prob.loss
    elif name == "multitask_toy":
        prob = ToyTwoObjectives()
        batch, loss = torch.randn(S, 2, generator=g, dtype=F64), prob
    elif name == "scalar_network":
        prob = ScalarNetwork(depth=3)
        batch, loss = torch.randn(S, 3, generator=g, dtype=F64), prob.loss
    elif name == "relu_regression_1d":
        # the loss takes the models' outputs at the n points: (S, n) in, one loss per run out
        prob = PROBLEMS[name].default()
        batch, loss = torch.randn(S, prob.n, generator=g, dtype=F64), prob.loss
    else:
        pytest.fail(f"no batching check for the registered problem {name!r}: add one")
    out = loss(batch)
    assert out.shape[0] == S
    for s in range(S):
        torch.testing.assert_close(out[s], loss(batch[s]))
