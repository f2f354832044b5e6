"""repro.metrics.landscape: filter-normalised directions and batched 1-D / 2-D slices."""

from __future__ import annotations

import pytest
import torch

from repro.metrics.landscape import (
    filter_normalize,
    functional_loss,
    interpolate,
    random_direction,
    slice_1d,
    slice_2d,
    slice_eigenvalue_ratio,
)
from repro.models import MLP, ResMLP


def gen(seed):
    return torch.Generator().manual_seed(seed)


def params_of(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_filter_norms_match_and_biases_are_zeroed():
    model = ResMLP(5, 7, 2, 3, generator=gen(0))
    params = params_of(model)
    d = random_direction(params, gen(1))
    for name, p in params.items():
        if p.dim() <= 1:
            assert torch.equal(d[name], torch.zeros_like(p)), name
        else:
            torch.testing.assert_close(d[name].flatten(1).norm(dim=1), p.flatten(1).norm(dim=1))
    # a conv-shaped parameter: one filter per output channel
    conv = {"w": torch.randn(4, 3, 2, 2, generator=gen(2))}
    dc = filter_normalize({"w": torch.randn(4, 3, 2, 2, generator=gen(3))}, conv)
    torch.testing.assert_close(dc["w"].flatten(1).norm(dim=1), conv["w"].flatten(1).norm(dim=1))
    # ignore=None rescales a 1-D parameter as one filter
    b = {"b": torch.tensor([3.0, 4.0])}
    db = filter_normalize({"b": torch.tensor([1.0, 0.0])}, b, ignore=None)
    torch.testing.assert_close(db["b"], torch.tensor([5.0, 0.0]))


def test_filter_normalize_keeps_each_filters_direction():
    p = {"w": torch.tensor([[1.0, 0.0], [0.0, 2.0]])}
    d = {"w": torch.tensor([[3.0, 4.0], [0.0, -1.0]])}
    out = filter_normalize(d, p)
    torch.testing.assert_close(out["w"], torch.tensor([[0.6, 0.8], [0.0, -2.0]]), atol=1e-6,
                               rtol=1e-6)


def test_norm_options_and_validation():
    params = params_of(MLP([4, 3, 2], generator=gen(0)))
    none = random_direction(params, gen(5), norm="none")
    layer = random_direction(params, gen(5), norm="layer")
    raw = random_direction(params, gen(5), norm="none", ignore=None)
    for name, p in params.items():
        if p.dim() > 1:
            torch.testing.assert_close(layer[name].norm(), p.norm())
            torch.testing.assert_close(none[name], raw[name])
    # same generator seed, same direction
    a, b = random_direction(params, gen(9)), random_direction(params, gen(9))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="norm"):
        random_direction(params, gen(0), norm="weird")
    with pytest.raises(ValueError, match="ignore"):
        random_direction(params, gen(0), ignore="bias")
    with pytest.raises(ValueError, match="same names"):
        filter_normalize({"x": torch.ones(2)}, params)


def test_slice_at_zero_equals_the_loss_and_matches_a_loop():
    model = ResMLP(6, 8, 2, 3, generator=gen(0))
    x, y = torch.randn(20, 6, generator=gen(1)), torch.randint(0, 3, (20,), generator=gen(2))
    params = params_of(model)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    f = functional_loss(model, x, y)
    dx, dy = random_direction(params, gen(3)), random_direction(params, gen(4))
    alphas = torch.linspace(-1, 1, 5)
    one = slice_1d(f, params, dx, alphas)
    torch.testing.assert_close(one[2], loss.detach())
    loop = torch.stack([f({k: params[k] + a * dx[k] for k in params}) for a in alphas])
    torch.testing.assert_close(one, loop)
    two = slice_2d(f, params, dx, dy, alphas, alphas[:3], chunk_size=4)
    assert two.shape == (5, 3)
    torch.testing.assert_close(two[2, 2], loss.detach())
    torch.testing.assert_close(two[:, 2], one)  # beta = 0 is the 1-D slice
    torch.testing.assert_close(
        two[4, 0], f({k: params[k] + alphas[4] * dx[k] + alphas[0] * dy[k] for k in params}))


def test_slices_of_a_quadratic_are_exact():
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    theta = {"w": torch.tensor([0.5, -1.0], dtype=torch.float64)}
    def f(p):
        return 0.5 * p["w"] @ a @ p["w"]
    d, e = {"w": torch.tensor([1.0, 2.0], dtype=torch.float64)}, {
        "w": torch.tensor([0.0, 1.0], dtype=torch.float64)}
    alphas = torch.linspace(-2, 2, 9, dtype=torch.float64)
    g = a @ theta["w"]
    expected = f(theta) + alphas * (g @ d["w"]) + 0.5 * alphas**2 * (d["w"] @ a @ d["w"])
    torch.testing.assert_close(slice_1d(f, theta, d, alphas), expected)
    surf = slice_2d(f, theta, d, e, alphas, alphas)
    aa, bb = torch.meshgrid(alphas, alphas, indexing="ij")
    q = torch.stack([d["w"], e["w"]])  # the plane's basis
    hp = q @ a @ q.T
    exact = (f(theta) + aa * (g @ d["w"]) + bb * (g @ e["w"]) + 0.5 * (
        hp[0, 0] * aa**2 + 2 * hp[0, 1] * aa * bb + hp[1, 1] * bb**2))
    torch.testing.assert_close(surf, exact)
    # the central-difference Hessian of the slice is exact for a quadratic
    lam = torch.linalg.eigvalsh(hp)
    ratio = slice_eigenvalue_ratio(surf, 0.5, 0.5)
    assert ratio.shape == (7, 7)
    torch.testing.assert_close(ratio, torch.full_like(ratio, (lam[0] / lam[1]).item()))
    # a saddle gives a negative ratio
    saddle = slice_eigenvalue_ratio(aa**2 - 3 * bb**2, 0.5, 0.5)
    torch.testing.assert_close(saddle, torch.full_like(saddle, -3.0))


def test_interpolate_runs_from_start_to_end():
    def f(p):
        return (p["w"] ** 2).sum()
    start, end = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 2.0])}
    values = interpolate(f, start, end, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(values, torch.tensor([1.0, 1.25, 4.0]))


def test_filter_normalised_slice_is_invariant_to_a_function_preserving_rescaling():
    model = ResMLP(6, 8, 2, 3, generator=gen(0)).double()
    x = torch.randn(20, 6, generator=gen(1)).double()
    y = torch.randint(0, 3, (20,), generator=gen(2))
    params = params_of(model)
    c = 7.0
    scaled = {k: v * c if ".fc1." in k else (v / c if k.endswith("fc2.weight") else v)
              for k, v in params.items()}
    f = functional_loss(model, x, y)
    torch.testing.assert_close(f(scaled), f(params))
    alphas = torch.linspace(-1, 1, 7, dtype=torch.float64)
    a = slice_1d(f, params, random_direction(params, gen(3)), alphas)
    b = slice_1d(f, scaled, random_direction(scaled, gen(3)), alphas)
    torch.testing.assert_close(a, b)
    raw_a = slice_1d(f, params, random_direction(params, gen(3), norm="none"), alphas)
    raw_b = slice_1d(f, scaled, random_direction(scaled, gen(3), norm="none"), alphas)
    assert (raw_a - raw_b).abs().max() > 1e-2
