"""CIFAR ResNets (He et al., 2016): resnet8 ... resnet110 and the wide-channel resnet8x4 / resnet32x4.

Layout (the one the published CIFAR-100 teachers were saved with): a 3x3 stem ``conv1``/``bn1`` + ReLU, three
stages ``layer1..layer3`` of ``n = (depth - 2) / 6`` basic blocks at 32x32, 16x16 and 8x8, an 8x8 average pool
and the classifier ``fc``. A basic block is conv3x3-BN-ReLU-conv3x3-BN, plus a shortcut, then ReLU. The
shortcut is the identity, or ``downsample`` = 1x1 convolution (no bias, with the block's stride) + BN wherever
the stride or the channel count changes (a projection shortcut, not zero padding).

Thin ResNets: stem 16, stages 16/32/64. x4 ResNets: stem 32 (2x, not 4x), stages 64/128/256, so the first
block of ``layer1`` also projects.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import ZooModel, init_conv_bn_


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Post-activation basic block: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class CifarResNet(ZooModel):
    """CIFAR ResNet of depth ``6n + 2`` with ``widths = (stem, stage1, stage2, stage3)`` channels."""

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int = 100) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        stem, *stages = widths
        self.num_classes = num_classes
        self.feature_dim = stages[-1]

        self.conv1 = _conv3x3(3, stem)
        self.bn1 = nn.BatchNorm2d(stem)
        in_channels = stem
        layers = []
        for index, channels in enumerate(stages):
            stride = 1 if index == 0 else 2
            blocks = []
            for block_index in range(blocks_per_stage):
                blocks.append(BasicBlock(in_channels, channels, stride if block_index == 0 else 1))
                in_channels = channels
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(self.feature_dim, num_classes)
        init_conv_bn_(self)

    def forward_features(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return F.avg_pool2d(x, 8).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.fc(features)


THIN_WIDTHS = (16, 16, 32, 64)
WIDE_X4_WIDTHS = (32, 64, 128, 256)

#: name -> (depth, widths)
RESNET_CONFIGS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    "resnet8": (8, THIN_WIDTHS),
    "resnet14": (14, THIN_WIDTHS),
    "resnet20": (20, THIN_WIDTHS),
    "resnet32": (32, THIN_WIDTHS),
    "resnet44": (44, THIN_WIDTHS),
    "resnet56": (56, THIN_WIDTHS),
    "resnet110": (110, THIN_WIDTHS),
    "resnet8x4": (8, WIDE_X4_WIDTHS),
    "resnet32x4": (32, WIDE_X4_WIDTHS),
}


def cifar_resnet(name: str, num_classes: int = 100) -> CifarResNet:
    """Build one of the CIFAR ResNets listed in :data:`RESNET_CONFIGS`."""
    depth, widths = RESNET_CONFIGS[name]
    return CifarResNet(depth, widths, num_classes)
