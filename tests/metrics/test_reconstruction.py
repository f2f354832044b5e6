"""repro.metrics.reconstruction: the per-pixel mean squared error."""

import torch

from repro.metrics import per_pixel_mse


def test_per_pixel_mse():
    torch.testing.assert_close(per_pixel_mse(torch.ones(2, 4), torch.zeros(2, 4)),
                               torch.ones(2))
