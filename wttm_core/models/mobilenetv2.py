"""MobileNetV2 (Sandler et al., 2018), the CIFAR "half" variant used as a student: expansion 6, width 0.5.

``conv1`` = Sequential(3x3 stride-2 conv, BN, ReLU); ``blocks`` = seven Sequentials of inverted residual
blocks with (expansion, channels, count, stride) = (1, 16, 1, 1), (t, 24, 2, 1), (t, 32, 3, 2), (t, 64, 4, 2),
(t, 96, 3, 1), (t, 160, 3, 2), (t, 320, 1, 1), channels scaled by the width multiplier; ``conv2`` =
Sequential(1x1 conv to 1280, BN, ReLU) (1280 is kept for widths <= 1); a 2x2 average pool with
``ceil_mode=True`` (the reference's ``AvgPool2d(32 // 16, ceil_mode=True)`` for 32x32 inputs) and
``classifier`` = Sequential(Linear(1280, classes)).

An inverted residual block's ``.conv`` Sequential is: 1x1 expand (0), BN (1), ReLU (2), depthwise 3x3 with the
block's stride (3), BN (4), ReLU (5), 1x1 linear projection (6), BN (7). The expand convolution is present
even at expansion 1. The input is added back when the stride is 1 and the channel count is unchanged.
Activations are plain ReLU, as in the reference (not ReLU6).
"""

from __future__ import annotations

from torch import Tensor, nn

from .common import ZooModel, init_conv_bn_, init_linear_

#: (expansion or None for "use the network's expansion", output channels, blocks, first stride) per stage.
STAGES: tuple[tuple[int | None, int, int, int], ...] = (
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
)
LAST_CHANNELS = 1280
POOL_KERNEL = 2  # 32x32 input -> 2x2 map after conv2


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3, stride) -> project (1x1, linear), residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(ZooModel):
    """MobileNetV2 for 32x32 inputs with the given expansion ``t`` and width multiplier."""

    def __init__(self, expansion: int = 6, width_mult: float = 0.5, num_classes: int = 100) -> None:
        super().__init__()
        self.num_classes = num_classes
        in_channels = int(32 * width_mult)
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, in_channels, 3, 2, 1, bias=False), nn.BatchNorm2d(in_channels), nn.ReLU()
        )
        self.blocks = nn.ModuleList()
        for stage_expansion, channels, count, stride in STAGES:
            out_channels = int(channels * width_mult)
            t = expansion if stage_expansion is None else stage_expansion
            stage = []
            for index in range(count):
                stage.append(InvertedResidual(in_channels, out_channels, stride if index == 0 else 1, t))
                in_channels = out_channels
            self.blocks.append(nn.Sequential(*stage))
        last = int(LAST_CHANNELS * width_mult) if width_mult > 1.0 else LAST_CHANNELS
        self.conv2 = nn.Sequential(nn.Conv2d(in_channels, last, 1, 1, 0, bias=False), nn.BatchNorm2d(last), nn.ReLU())
        self.pool = nn.AvgPool2d(POOL_KERNEL, ceil_mode=True)
        self.feature_dim = last
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        init_conv_bn_(self)
        init_linear_(self, std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        x = self.conv2(x)
        return self.pool(x).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.classifier(features)


def mobilenetv2_half(num_classes: int = 100) -> MobileNetV2:
    """The zoo's ``MobileNetV2``: expansion 6, width multiplier 0.5 (the reference's ``mobile_half``)."""
    return MobileNetV2(expansion=6, width_mult=0.5, num_classes=num_classes)
