"""repro.metrics.classification: the accuracy of one model or of each model of an ensemble."""

import torch

from repro.metrics import per_model_accuracy


def test_per_model_accuracy_one_model_and_an_ensemble():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0], [0.0, 5.0]])
    y = torch.tensor([0, 1, 1, 0])
    assert per_model_accuracy(logits, y).item() == 0.5
    ensemble = torch.stack([logits, -logits, logits[:, [1, 0]]])         # (3, 4, 2)
    acc = per_model_accuracy(ensemble, y)
    assert acc.dtype == torch.float64 and acc.tolist() == [0.5, 0.5, 0.5]
    assert per_model_accuracy(ensemble, torch.tensor([0, 1, 0, 1])).tolist() == [1.0, 0.0, 0.0]
