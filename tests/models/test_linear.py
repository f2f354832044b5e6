"""repro.models.linear: DeepLinear is the product of its factors; its initialisations."""

import pytest
import torch

from repro.models import DeepLinear, default_scale


def test_deep_linear_is_the_product_of_its_factors():
    g = torch.Generator().manual_seed(0)
    model = DeepLinear(4, 6, depth=3, width=5, n_seeds=2, scale=0.5, generator=g,
                       dtype=torch.float64)
    assert [tuple(f.shape) for f in model.factors] == [(2, 5, 6), (2, 5, 5), (2, 4, 5)]
    W1, W2, W3 = model.factors
    assert torch.allclose(model(), W3 @ W2 @ W1)
    assert DeepLinear(3, 3, depth=1, scale=1.0, generator=g)().shape == (1, 3, 3)


def test_deep_linear_identity_initialisation_and_default_scale():
    model = DeepLinear(3, 3, depth=4, n_seeds=1, scale=0.5, init="identity", dtype=torch.float64)
    assert torch.allclose(model()[0], 0.5 ** 4 * torch.eye(3, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    s = default_scale(depth=2, target_norm=1.0, size=30)
    norms = DeepLinear(30, 30, depth=2, n_seeds=400, scale=s, generator=g,
                       dtype=torch.float64)().norm(dim=(1, 2)) ** 2
    assert abs(norms.mean().item() - 1.0) < 0.1  # E|W|_F^2 = 1 by construction


def test_deep_linear_refuses_bad_arguments():
    with pytest.raises(ValueError):
        DeepLinear(3, 4, depth=2, init="identity")
    with pytest.raises(ValueError):
        DeepLinear(3, 3, depth=0)
    with pytest.raises(ValueError):
        DeepLinear(3, 3, depth=2, scale=0.0)
