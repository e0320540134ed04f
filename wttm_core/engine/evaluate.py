"""Test-set accuracy of a model (``wttm eval``): check a teacher before trusting its published number."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wttm_core.engine.distributed import DistContext
from wttm_core.engine.metrics import evaluation_sums, finish_evaluation, predict_logits
from wttm_core.engine.runtime import default_amp, default_channels_last, resolve_device

__all__ = ["evaluate_model"]


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    *,
    device: str = "auto",
    amp: str = "off",
    batch_size: int = 256,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy (percent) and mean cross-entropy of ``model`` on an ``ImageDataset``.

    ``amp="off"`` (the default) evaluates in float32, which is what published accuracies mean; ``"auto"`` uses
    the device's training default (faster; its effect on accuracy is not measured separately).
    """
    from wttm_core.data import DeviceLoader

    device = resolve_device(device)
    if amp == "auto":
        amp = default_amp(device)
    channels_last = default_channels_last(device, amp)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt).eval()
    loader = DeviceLoader(dataset, batch_size, train=False, device=device, memory_format=fmt)
    logits, labels = predict_logits(model, loader, device=device, amp=amp, channels_last=channels_last)
    metrics = finish_evaluation(evaluation_sums(logits, labels, None, 1.0), DistContext())
    return {
        "top1": metrics["test_acc"],
        "top5": metrics["test_top5"],
        "loss": metrics["test_loss"],
        "mean_entropy": metrics["student_entropy"],
        "images": float(labels.numel()),
    }
