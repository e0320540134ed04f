"""The CIFAR-100 model zoo: 22 architectures whose state_dicts match the published teacher checkpoints."""

from .common import ZooModel, count_parameters
from .registry import MODEL_NAMES, build_model

__all__ = ["MODEL_NAMES", "ZooModel", "build_model", "count_parameters"]
