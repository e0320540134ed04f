"""The CIFAR-100 model zoo: 22 architectures whose state_dicts match the published teacher checkpoints.

``build_model(name, num_classes=100)`` builds one; ``model(x)`` returns logits and
``model(x, return_features=True)`` returns ``(logits, penultimate features)``. ``load_checkpoint`` /
``save_checkpoint`` / ``read_checkpoint`` handle the standard checkpoint layout safely (no code execution).
"""

from .checkpoint import (
    CheckpointMismatchError,
    DigestMismatchError,
    UnsafeCheckpointError,
    infer_arch,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    stored_accuracy,
)
from .common import ZooModel, count_parameters
from .registry import MODEL_NAMES, build_model

__all__ = [
    "MODEL_NAMES",
    "CheckpointMismatchError",
    "DigestMismatchError",
    "UnsafeCheckpointError",
    "ZooModel",
    "build_model",
    "count_parameters",
    "infer_arch",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "stored_accuracy",
]
