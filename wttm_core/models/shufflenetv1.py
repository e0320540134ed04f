"""ShuffleNet V1 (Zhang et al., 2018) for CIFAR: ``ShuffleV1`` (groups 3, stage outputs 240/480/960, 4/8/4 blocks).

A 1x1 stem ``conv1`` (3 -> 24) + ``bn1`` + ReLU at full resolution (no max pool), three stages
``layer1..layer3``, a 4x4 average pool and the classifier ``linear``.

A bottleneck unit: grouped 1x1 ``conv1`` -> BN -> ReLU -> channel shuffle -> depthwise 3x3 ``conv2`` (stride)
-> BN -> ReLU -> grouped 1x1 ``conv3`` -> BN, with mid channels = out / 4. The first unit of a stage has
stride 2 and a 3x3 average-pool (stride 2, padding 1) shortcut that is *concatenated*, so its branch only
produces ``out - in`` channels; the other units add the identity. ReLU follows the concatenation / sum. The
very first unit's ``conv1`` (24 stem channels, not divisible into the group structure) uses one group and
its shuffle is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import ZooModel, channel_shuffle

STEM_CHANNELS = 24


class ShuffleUnit(nn.Module):
    """ShuffleNet V1 unit; ``first_groups`` is the group count of ``conv1`` (and of the shuffle after it)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int, first_groups: int) -> None:
        super().__init__()
        mid = out_channels // 4
        self.stride = stride
        self.first_groups = first_groups
        self.conv1 = nn.Conv2d(in_channels, mid, kernel_size=1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], dim=1))
        return F.relu(out + x)


class ShuffleNetV1(ZooModel):
    """ShuffleNet V1 for 32x32 inputs."""

    def __init__(
        self,
        stage_channels: tuple[int, int, int] = (240, 480, 960),
        stage_blocks: tuple[int, int, int] = (4, 8, 4),
        groups: int = 3,
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        in_channels = STEM_CHANNELS
        stages = []
        for out_channels, count in zip(stage_channels, stage_blocks, strict=True):
            units = []
            for index in range(count):
                if index == 0:  # stride 2, the pooled input is concatenated
                    first_groups = 1 if in_channels == STEM_CHANNELS else groups
                    units.append(ShuffleUnit(in_channels, out_channels - in_channels, 2, groups, first_groups))
                else:
                    units.append(ShuffleUnit(out_channels, out_channels, 1, groups, groups))
                in_channels = out_channels
            stages.append(nn.Sequential(*units))
        self.layer1, self.layer2, self.layer3 = stages
        self.feature_dim = in_channels
        self.linear = nn.Linear(in_channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return F.avg_pool2d(x, 4).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.linear(features)


def shufflenet_v1(num_classes: int = 100) -> ShuffleNetV1:
    """The zoo's ``ShuffleV1``: groups 3, outputs 240/480/960, 4/8/4 units (PyTorch default initialisation)."""
    return ShuffleNetV1(num_classes=num_classes)
