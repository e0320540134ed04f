"""Name -> architecture registry of the CIFAR-100 zoo (the 22 names used by the CRD / mdistiller code bases)."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from wttm_core._checks import check_int

from .common import ZooModel
from .mobilenetv2 import mobilenetv2_half
from .resnet import RESNET_CONFIGS, cifar_resnet
from .resnetv2 import resnet50
from .shufflenetv1 import shufflenet_v1
from .shufflenetv2 import shufflenet_v2
from .vgg import VGG_CONFIGS, vgg
from .wrn import WRN_CONFIGS, wide_resnet


def _builders() -> dict[str, Callable[[int], ZooModel]]:
    builders: dict[str, Callable[[int], ZooModel]] = {}
    for name in RESNET_CONFIGS:
        builders[name] = lambda num_classes, name=name: cifar_resnet(name, num_classes)
    builders["ResNet50"] = resnet50
    for name in WRN_CONFIGS:
        builders[name] = lambda num_classes, name=name: wide_resnet(name, num_classes)
    for name in VGG_CONFIGS:
        builders[name] = lambda num_classes, name=name: vgg(name, num_classes)
    builders["MobileNetV2"] = mobilenetv2_half
    builders["ShuffleV1"] = shufflenet_v1
    builders["ShuffleV2"] = shufflenet_v2
    return builders


_BUILDERS = _builders()

#: The 22 architecture names, spelled exactly as in the published code bases and checkpoint folders.
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def check_model_name(name: object, argument: str = "name") -> str:
    """Return ``name`` if it is one of :data:`MODEL_NAMES`, else raise a ValueError/TypeError naming
    ``argument``, listing the valid names and suggesting the closest spelling."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string (one of {', '.join(MODEL_NAMES)}), got {type(name).__name__}")
    if name not in _BUILDERS:
        by_lower = {valid.lower(): valid for valid in MODEL_NAMES}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
        hint = f" - did you mean {by_lower[close[0]]!r}?" if close else ""
        raise ValueError(f"{argument}: unknown architecture {name!r}{hint} Valid names: {', '.join(MODEL_NAMES)}")
    return name


def build_model(name: str, num_classes: int = 100) -> ZooModel:
    """Build the architecture ``name`` (one of :data:`MODEL_NAMES`) with a ``num_classes``-way classifier.

    The model is freshly initialised as in the reference code and in training mode. Its ``forward(x)`` returns
    logits; ``forward(x, return_features=True)`` returns ``(logits, features)`` with the pooled penultimate
    features of width ``model.feature_dim``. Parameter names and shapes equal those of the published
    CIFAR-100 checkpoints, so those load with ``strict=True``.
    """
    name = check_model_name(name, "name")
    return _BUILDERS[name](check_int("num_classes", num_classes, low=1))
