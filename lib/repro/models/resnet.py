"""ResNet-18 for 32x32 images (the CIFAR-10 variant: 3x3 stem, no max-pool, BatchNorm).

Used in: chapter 10 (Anti-PGD, CIFAR-10 at the paper preset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from repro.models.mlp import _linear_init_


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a skip connection (a 1x1 conv-BN when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet of BasicBlocks for small images: 3x3 stem (no max-pool), four stages of widths
    64, 128, 256, 512 (stride 2 from the second on), global average pool, linear head."""

    def __init__(self, blocks: Sequence[int] = (2, 2, 2, 2), num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        stages, width = [], 64
        for stage, (n_blocks, channels) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if stage == 0 else 2
            layers = []
            for b in range(n_blocks):
                layers.append(BasicBlock(width, channels, stride if b == 0 else 1))
                width = channels
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


def resnet18(num_classes: int = 10, generator: torch.Generator | None = None) -> ResNet:
    """The CIFAR-10 ResNet-18 (about 11.2M parameters for 10 classes).

    Initialisation: torch's defaults (kaiming-uniform convs, ``nn.Linear`` head, BatchNorm at
    weight 1 and bias 0), drawn from ``generator`` when one is given.
    """
    model = ResNet((2, 2, 2, 2), num_classes=num_classes)
    if generator is not None:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.Conv2d):
                    # the same law as nn.Conv2d.reset_parameters, from our generator
                    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                elif isinstance(module, nn.Linear):
                    _linear_init_(module.weight, module.bias, module.in_features, generator)
    return model
