"""repro.optim.gd: the exact GD step on a tiny quadratic, and its argument checks."""

import pytest
import torch

from repro.optim import GD

from ._quadratic import LR, W0, A, run


def test_gd_one_exact_step():
    w, _ = run(GD, 1, lr=LR)
    torch.testing.assert_close(w, W0 - LR * A * W0, rtol=0, atol=1e-15)


def test_gd_refuses_a_negative_momentum_or_step():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="momentum"):
        GD([w], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="lr"):
        GD([w], lr=-0.1)
