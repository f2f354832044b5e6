"""repro.devices: where tensors live, and moving a CPU draw to the compute device."""

import torch

from repro.devices import device, to_device


def test_the_device_follows_repro_device(monkeypatch):
    monkeypatch.setenv("REPRO_DEVICE", "cpu")
    assert device() == torch.device("cpu")
    monkeypatch.delenv("REPRO_DEVICE")
    assert device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_to_device_moves_the_values_unchanged():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert to_device(x, "cpu") is x                     # nothing to move: the same tensor
    moved = to_device(x, "meta")                         # another device: moved, shape kept
    assert moved.device.type == "meta" and moved.shape == x.shape
    if torch.cuda.is_available():                        # the pinned, non-blocking copy
        assert torch.equal(to_device(x, "cuda").cpu(), x)
