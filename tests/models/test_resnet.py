"""repro.models.resnet: the CIFAR ResNet-18's shape, size and seeded initialisation."""

import torch
from torch import nn

from repro.models import resnet18


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_resnet18_shape_and_size():
    model = resnet18(num_classes=10, generator=gen(0))
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    n_params = sum(p.numel() for p in model.parameters())
    assert abs(n_params - 11.2e6) < 0.1e6
    assert n_params == 11_173_962  # the usual CIFAR ResNet-18 with a 10-class head
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 20
    assert resnet18(num_classes=100).head.out_features == 100


def test_resnet18_same_generator_seed_same_weights():
    a, b, c = resnet18(generator=gen(3)), resnet18(generator=gen(3)), resnet18(generator=gen(4))
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if "bn" not in name and "shortcut.1" not in name and "stem.1" not in name:
            assert not torch.equal(pa, pc), name
