"""ShuffleNet V2 (Ma et al., 2018) for CIFAR: ``ShuffleV2`` (width 1: outputs 116/232/464, 3/7/3 basic units).

A 1x1 stem ``conv1`` (3 -> 24) + ``bn1`` + ReLU (no max pool); three stages ``layer1..layer3``, each a
down-sampling unit followed by basic units; a 1x1 ``conv2`` to 1024 + ``bn2`` + ReLU; a 4x4 average pool and
the classifier ``linear``.

- Down unit (``conv1..conv5``): left branch = depthwise 3x3 stride 2 + BN (no ReLU), 1x1 + BN + ReLU; right
  branch = 1x1 + BN + ReLU, depthwise 3x3 stride 2 + BN, 1x1 + BN + ReLU; each branch gives out / 2 channels;
  concatenate [left, right], then channel shuffle with 2 groups.
- Basic unit (``conv1..conv3``): split the channels in half; the first half passes through unchanged, the
  second goes through 1x1 + BN + ReLU, depthwise 3x3 + BN, 1x1 + BN + ReLU; concatenate [first half,
  processed half], then channel shuffle with 2 groups.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import ZooModel, channel_shuffle

STEM_CHANNELS = 24
SHUFFLE_GROUPS = 2


def _depthwise3x3(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, groups=channels, bias=False)


def _pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class BasicUnit(nn.Module):
    """Stride-1 unit with a 0.5 channel split."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.split = half
        self.conv1 = _pointwise(channels - half, channels - half)
        self.bn1 = nn.BatchNorm2d(channels - half)
        self.conv2 = _depthwise3x3(channels - half, 1)
        self.bn2 = nn.BatchNorm2d(channels - half)
        self.conv3 = _pointwise(channels - half, channels - half)
        self.bn3 = nn.BatchNorm2d(channels - half)

    def forward(self, x: Tensor) -> Tensor:
        kept, processed = x[:, : self.split], x[:, self.split :]
        out = F.relu(self.bn1(self.conv1(processed)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([kept, out], dim=1), SHUFFLE_GROUPS)


class DownUnit(nn.Module):
    """Stride-2 unit: two branches of ``out_channels // 2`` channels each, concatenated and shuffled."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = _depthwise3x3(in_channels, 2)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = _pointwise(in_channels, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = _pointwise(in_channels, mid)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = _depthwise3x3(mid, 2)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = _pointwise(mid, mid)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = self.bn1(self.conv1(x))
        left = F.relu(self.bn2(self.conv2(left)))
        right = F.relu(self.bn3(self.conv3(x)))
        right = self.bn4(self.conv4(right))
        right = F.relu(self.bn5(self.conv5(right)))
        return channel_shuffle(torch.cat([left, right], dim=1), SHUFFLE_GROUPS)


class ShuffleNetV2(ZooModel):
    """ShuffleNet V2 for 32x32 inputs."""

    def __init__(
        self,
        stage_channels: tuple[int, int, int] = (116, 232, 464),
        stage_blocks: tuple[int, int, int] = (3, 7, 3),
        last_channels: int = 1024,
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = _pointwise(3, STEM_CHANNELS)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        in_channels = STEM_CHANNELS
        stages = []
        for out_channels, count in zip(stage_channels, stage_blocks, strict=True):
            units: list[nn.Module] = [DownUnit(in_channels, out_channels)]
            units += [BasicUnit(out_channels) for _ in range(count)]
            stages.append(nn.Sequential(*units))
            in_channels = out_channels
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = _pointwise(in_channels, last_channels)
        self.bn2 = nn.BatchNorm2d(last_channels)
        self.feature_dim = last_channels
        self.linear = nn.Linear(last_channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, 4).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.linear(features)


def shufflenet_v2(num_classes: int = 100) -> ShuffleNetV2:
    """The zoo's ``ShuffleV2`` (net size 1: outputs 116/232/464, final 1024; PyTorch default initialisation)."""
    return ShuffleNetV2(num_classes=num_classes)
