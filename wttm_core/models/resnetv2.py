"""ResNet50 with a CIFAR stem (the "resnetv2" definition of the CRD / mdistiller code bases).

A 3x3 stride-1 ``conv1``/``bn1`` + ReLU stem (no max pool), four stages ``layer1..layer4`` of 3/4/6/3
bottleneck blocks with 64/128/256/512 mid channels (x4 expansion, strides 1/2/2/2), a global average pool and
the classifier ``linear`` (2048 -> classes). A bottleneck is 1x1-BN-ReLU, 3x3(stride)-BN-ReLU, 1x1-BN, plus a
shortcut, then ReLU; the shortcut is the identity or ``shortcut`` = 1x1 conv (stride) + BN wherever the stride
or channel count changes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import ZooModel, init_conv_bn_


class Bottleneck(nn.Module):
    """Bottleneck block with expansion 4 and a projection shortcut where shapes change."""

    expansion = 4

    def __init__(self, in_channels: int, mid_channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = self.expansion * mid_channels
        self.conv1 = nn.Conv2d(in_channels, mid_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNetV2(ZooModel):
    """Bottleneck ResNet for 32x32 inputs; ``blocks`` = number of bottlenecks in each of the four stages."""

    def __init__(self, blocks: tuple[int, int, int, int] = (3, 4, 6, 3), num_classes: int = 100) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        stages = []
        for index, (mid_channels, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            stride = 1 if index == 0 else 2
            layer = []
            for block_index in range(count):
                layer.append(Bottleneck(in_channels, mid_channels, stride if block_index == 0 else 1))
                in_channels = mid_channels * Bottleneck.expansion
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feature_dim = in_channels
        self.linear = nn.Linear(in_channels, num_classes)
        init_conv_bn_(self)

    def forward_features(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.linear(features)


def resnet50(num_classes: int = 100) -> ResNetV2:
    """ResNet50 (3/4/6/3 bottlenecks), the CIFAR-100 teacher of the ResNet50 -> MobileNetV2 / ShuffleNet pairs."""
    return ResNetV2((3, 4, 6, 3), num_classes)
