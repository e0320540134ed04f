"""Argument checks and small helpers shared by the theory modules (private)."""

from __future__ import annotations

import torch
from torch import Tensor

from wttm_core._checks import check_scalar


def _f64(x: Tensor) -> Tensor:
    return x.detach().to(torch.float64)


def _check_labels(labels: object, batch: int, num_classes: int) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    if batch and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.long()


def _check_lambda(lam: object) -> float:
    lam = check_scalar("lam", lam)
    if lam > 1.0:
        raise ValueError(f"lam must lie in (0, 1], got {lam}")
    return lam


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
