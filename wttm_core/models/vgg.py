"""VGG with batch norm for CIFAR (Simonyan & Zisserman, 2015; fully connected layers removed): vgg8 ... vgg19.

Five blocks ``block0..block4``; each is a Sequential of ``[conv3x3 (with bias), BN, ReLU] * m`` whose last
ReLU is applied by the network instead (so convolutions sit at indices 0, 3, 6, 9 and BNs at 1, 4, 7, 10).
After blocks 0, 1 and 2 comes a 2x2 max pool. The pool after block 3 runs only for 64x64 inputs, so at 32x32
blocks 3 and 4 both work at 4x4 - a rule of the reference definition that the published teachers were
trained with. Block 4 is followed by a global average pool and the classifier ``classifier`` (512 -> classes).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import ZooModel, init_conv_bn_, init_linear_

#: Output channels of the convolutions in each of the five blocks.
VGG_CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg8": ((64,), (128,), (256,), (512,), (512,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}

#: Input height at which the max pool after block 3 is applied (the reference's rule).
POOL3_INPUT_SIZE = 64


def _vgg_block(in_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers[:-1])  # the block's last ReLU is applied in forward


class VGG(ZooModel):
    """VGG-BN over five blocks of 3x3 convolutions; ``config`` gives each block's output channels."""

    def __init__(self, config: tuple[tuple[int, ...], ...], num_classes: int = 100) -> None:
        super().__init__()
        if len(config) != 5 or any(len(block) == 0 for block in config):
            raise ValueError(f"config must list five non-empty blocks, got {config!r}")
        self.num_classes = num_classes
        in_channels = 3
        blocks = []
        for widths in config:
            blocks.append(_vgg_block(in_channels, widths))
            in_channels = widths[-1]
        self.block0, self.block1, self.block2, self.block3, self.block4 = blocks
        self.feature_dim = in_channels
        self.classifier = nn.Linear(in_channels, num_classes)
        init_conv_bn_(self)
        init_linear_(self, std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        height = x.shape[2]
        x = F.max_pool2d(F.relu(self.block0(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.block1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.block2(x)), 2, 2)
        x = F.relu(self.block3(x))
        if height == POOL3_INPUT_SIZE:
            x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.block4(x))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def classify(self, features: Tensor) -> Tensor:
        return self.classifier(features)


def vgg(name: str, num_classes: int = 100) -> VGG:
    """Build one of the VGG-BN networks listed in :data:`VGG_CONFIGS`."""
    return VGG(VGG_CONFIGS[name], num_classes)
