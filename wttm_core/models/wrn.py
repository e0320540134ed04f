"""Wide residual networks WRN-d-k (Zagoruyko & Komodakis, 2016): wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2.

Pre-activation layout: a 3x3 stem ``conv1`` (16 channels, no BN/ReLU after it), three stages
``block1..block3`` (``blockK.layer`` holds ``n = (d - 4) / 6`` blocks) with 16k/32k/64k channels and strides
1/2/2, then a final ``bn1`` + ReLU, an 8x8 average pool and the classifier ``fc``.

A block computes ``a = relu(bn1(x))``, ``out = conv2(relu(bn2(conv1(a))))`` and adds a shortcut: the raw input
``x`` when input and output channels are equal, otherwise ``convShortcut(a)`` - a 1x1 convolution (no BN)
applied to the *pre-activated* input ``a``. Dropout is 0 in every published configuration and is omitted.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from wttm_core._checks import check_int

from .common import ZooModel, init_conv_bn_, init_linear_


class WideBasicBlock(nn.Module):
    """Pre-activation block; ``convShortcut`` exists only where the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if in_channels == out_channels and stride != 1:
            raise ValueError("stride must be 1 when in_channels == out_channels (identity shortcut)")
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.convShortcut: nn.Conv2d | None = None  # name fixed by the published state_dicts
        if in_channels != out_channels:
            self.convShortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(F.relu(self.bn2(out)))
        shortcut = x if self.convShortcut is None else self.convShortcut(activated)
        return out + shortcut


class WideStage(nn.Module):
    """A stage of ``count`` blocks, kept under ``.layer`` so the keys read ``blockK.layer.i.*``."""

    def __init__(self, count: int, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(
                WideBasicBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
                for i in range(count)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(ZooModel):
    """WRN-``depth``-``widen_factor`` for 32x32 inputs (depth = 6n + 4)."""

    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        check_int("widen_factor", widen_factor, low=1)
        count = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.num_classes = num_classes
        self.feature_dim = widths[3]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = WideStage(count, widths[0], widths[1], 1)
        self.block2 = WideStage(count, widths[1], widths[2], 2)
        self.block3 = WideStage(count, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        init_conv_bn_(self)
        init_linear_(self, std=None)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = F.relu(self.bn1(x))
        return F.avg_pool2d(x, 8).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.fc(features)


#: name -> (depth, widen factor)
WRN_CONFIGS: dict[str, tuple[int, int]] = {
    "wrn_16_1": (16, 1),
    "wrn_16_2": (16, 2),
    "wrn_40_1": (40, 1),
    "wrn_40_2": (40, 2),
}


def wide_resnet(name: str, num_classes: int = 100) -> WideResNet:
    """Build one of the WRNs listed in :data:`WRN_CONFIGS`."""
    depth, widen_factor = WRN_CONFIGS[name]
    return WideResNet(depth, widen_factor, num_classes)
