"""Pieces shared by every family of the CIFAR-100 zoo.

- :class:`ZooModel`, the small base class that gives all 22 architectures one calling convention:
  ``model(x)`` returns logits and ``model(x, return_features=True)`` returns ``(logits, features)``, where
  ``features`` is the pooled, flattened penultimate representation that feeds the classifier. The notebooks
  use these features to look at what a teacher "knows" beyond its logits.
- :func:`channel_shuffle`, used by both ShuffleNet families.
- The weight initialisations of the reference code bases (CRD / RepDistiller, mdistiller), so freshly built
  students start from the same distribution as in the published experiments.

The models themselves are plain ``torch.nn`` code; knowledge distillation (KD Eq. 1, TTM Eq. 2, WTTM Eq. 23 of
Zheng & Yang, ICLR 2024) only ever sees their logits.
"""

from __future__ import annotations

from torch import Tensor, nn


class ZooModel(nn.Module):
    """Base class of the zoo: ``forward(x, return_features=False)``.

    Subclasses implement :meth:`forward_features` (input -> pooled, flattened penultimate features of width
    :attr:`feature_dim`) and :meth:`classify` (features -> logits, the final linear layer). The split adds no
    parameters and changes no computation, so state_dicts stay identical to the reference definitions.
    """

    num_classes: int
    feature_dim: int

    def forward_features(self, x: Tensor) -> Tensor:
        """Return the pooled, flattened penultimate features, shape ``[batch, feature_dim]``."""
        raise NotImplementedError

    def classify(self, features: Tensor) -> Tensor:
        """Map penultimate features to logits with the classifier layer."""
        raise NotImplementedError

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Return logits ``[batch, num_classes]``; with ``return_features=True`` return ``(logits, features)``.

        ``features`` is the classifier's input (after the final pooling and flattening), width
        :attr:`feature_dim`.
        """
        features = self.forward_features(x)
        logits = self.classify(features)
        if return_features:
            return logits, features
        return logits


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle: view channels as ``[groups, C/groups]``, transpose, flatten back.

    Output channel ``j * groups + i`` is input channel ``i * (C / groups) + j``; with ``groups=1`` it is the
    identity.
    """
    n, c, h, w = x.shape
    if c % groups != 0:
        raise ValueError(f"groups must divide the channel count {c}, got {groups}")
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def init_conv_bn_(model: nn.Module) -> None:
    """Reference initialisation of convolutions and batch norms (in place).

    Convolutions: He normal with fan-out, i.e. N(0, 2 / (k * k * out_channels)), bias zero. This is both
    ``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` (CIFAR ResNets, ResNet50) and the explicit
    ``normal_(0, sqrt(2 / n))`` of the WRN / VGG / MobileNetV2 definitions. BatchNorm: weight 1, bias 0.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def init_linear_(model: nn.Module, *, std: float | None) -> None:
    """Reference initialisation of linear layers (in place): bias zero; weight N(0, std^2) unless ``std`` is
    None, in which case PyTorch's default weight initialisation is kept."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if std is not None:
                nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable and frozen parameters (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())
