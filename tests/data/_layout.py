"""The layout every classification loader promises."""

import torch


def check_split(d, n_features):
    """The promised layout: x float32, y int64, train and test alike, on one device."""
    assert set(d) == {"x", "y", "x_test", "y_test"}
    assert d["x"].dtype == torch.float32 and d["x_test"].dtype == torch.float32
    assert d["y"].dtype == torch.int64 and d["y_test"].dtype == torch.int64
    assert d["x"].shape[1:] == d["x_test"].shape[1:] == n_features
    assert d["x"].shape[0] == d["y"].shape[0] and d["x_test"].shape[0] == d["y_test"].shape[0]
    assert d["x"].device.type == d["y_test"].device.type
