"""Cohorts: which students can share a teacher and a data set, whether they fit the machine, and ``cohort.json``.

A cohort (:func:`wttm_core.engine.train_cohort`) is several students - of the same or different architectures,
methods, hyper-parameters and learning rates - distilled from one frozen teacher on one data set. Everything
that decides the shared part must agree (:data:`SHARED_FIELDS`); a student's own fields (architecture, method
and its hyper-parameters, seed, learning-rate schedule, epochs, output directory) may differ.

Memory: before a cohort starts, :func:`check_memory` estimates what it needs - per student its weights,
gradients and momentum buffers (float32) and the activations a training step keeps for backward (the outputs of
every layer at the batch size, counted on the ``meta`` device without allocating), plus the teacher's weights and
inference activations and, on a GPU, the data sets each loader copies there - and refuses, in one line, a cohort
that would not fit the available RAM (CPU) or free device memory (CUDA).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from wttm_core.engine.config import TrainConfig
from wttm_core.engine.state import write_json

__all__ = [
    "SHARED_FIELDS",
    "MANIFEST_FORMAT",
    "CohortTooLarge",
    "check_cohort",
    "estimate_memory",
    "available_memory",
    "check_memory",
    "write_manifest",
]

SHARED_FIELDS = (
    "teacher",
    "teacher_checkpoint",
    "teacher_arch",
    "dataset",
    "data_dir",
    "train_size",
    "test_size",
    "data_seed",
    "synthetic_similarity",
    "download",
    "loader",
    "num_workers",
    "batch_size",
    "test_batch_size",
    "deterministic",
    "device",
    "amp",
    "channels_last",
    "compile",
    "cuda_graphs",
    "eval_precision",
    "world_size",
)
MANIFEST_FORMAT = "wttm-cohort/1"
_STUDENT_STATE_COPIES = 3  # weights, gradients, momentum buffers
_ACTIVATION_FACTOR = 1.5  # saved layer outputs plus the gradient buffers alive during backward
_TEACHER_PEAK_LAYERS = 3  # an inference pass holds a few layer outputs at a time


class CohortTooLarge(ValueError):
    """The cohort would not fit the machine's memory (raised before anything starts)."""


def check_cohort(configs: Sequence[TrainConfig]) -> None:
    """Raise ``ValueError`` naming the field when resolved ``configs`` cannot train as one cohort."""
    first = configs[0]
    for index, cfg in enumerate(configs[1:], start=1):
        for name in SHARED_FIELDS:
            if getattr(cfg, name) != getattr(first, name):
                raise ValueError(
                    f"{name}: the students of a cohort share it, but student {index} has {getattr(cfg, name)!r} "
                    f"and student 0 {getattr(first, name)!r}"
                )
    if len(configs) > 1 and first.loader != "device":
        raise ValueError("loader: a cohort of several students needs the device loader (loader='device')")
    if len(configs) > 1 and first.world_size > 1:
        raise ValueError("world_size: a cohort of several students trains in one process (not under torchrun)")
    outs = [str(Path(cfg.out).resolve()) for cfg in configs if cfg.out is not None]
    if len(set(outs)) != len(outs):
        raise ValueError("out: the students of a cohort need distinct output directories")


def _model_bytes(
    arch: str, num_classes: int, image_shape: tuple[int, ...], batch: int, element: int
) -> tuple[int, int, int]:
    """``(parameter bytes, sum of layer-output bytes, largest layer-output bytes)`` of ``arch`` at ``batch``
    images (float32 parameters, ``element`` bytes per activation), measured on the ``meta`` device (nothing is
    allocated)."""
    from wttm_core.models import build_model

    with torch.device("meta"):
        model = build_model(arch, num_classes=num_classes)
    sizes: list[int] = []
    hooks = [
        module.register_forward_hook(lambda module, inputs, output: sizes.append(output.numel() * element))
        for module in model.modules()
        if not list(module.children())
    ]
    with torch.no_grad():
        model(torch.empty(batch, *image_shape, device="meta"))
    for hook in hooks:
        hook.remove()
    return sum(p.numel() * 4 for p in model.parameters()), sum(sizes), max(sizes, default=0)


def estimate_memory(configs: Sequence[TrainConfig], shared: Any) -> int:
    """Bytes a cohort of resolved ``configs`` on ``shared`` (data, teacher) needs beyond what is already held."""
    image_shape = tuple(shared.train_set.images.shape[1:])
    batch, classes = configs[0].batch_size, shared.num_classes
    element = 4 if configs[0].amp == "off" else 2  # autocast keeps most activations in bf16 / fp16
    total = 0.0
    for cfg in configs:
        params, activations, _ = _model_bytes(cfg.arch, classes, image_shape, batch, element)
        total += _STUDENT_STATE_COPIES * params + _ACTIVATION_FACTOR * activations
    if configs[0].teacher_arch is not None and configs[0].teacher_checkpoint is not None:
        streams = len({cfg.seed for cfg in configs})
        _, _, largest = _model_bytes(configs[0].teacher_arch, classes, image_shape, batch * streams, element)
        total += _TEACHER_PEAK_LAYERS * largest
    if configs[0].device.startswith("cuda"):  # each seed's loader holds the training images on the device
        seeds = len({cfg.seed for cfg in configs})
        total += seeds * shared.train_set.images.numel() + shared.test_set.images.numel()
    return int(total)


def available_memory(device: str) -> int:
    """Free device memory on CUDA; on the CPU the RAM the kernel reports available (``MemAvailable``)."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_memory(configs: Sequence[TrainConfig], shared: Any) -> None:
    """Refuse (:class:`CohortTooLarge`, one line with the estimate) a cohort of several students that would not
    fit the memory of its device."""
    if len(configs) < 2:
        return
    device = configs[0].device
    need, have = estimate_memory(configs, shared), available_memory(device)
    if need > have:
        where = "free memory on " + device if device.startswith("cuda") else "available RAM"
        raise CohortTooLarge(
            f"cohort: {len(configs)} students need about {need / 2**30:.2f} GiB (weights, gradients, momentum and "
            f"activations at batch {configs[0].batch_size}, the teacher, the data) but {have / 2**30:.2f} GiB of "
            f"{where} is available; train fewer students at once"
        )


def write_manifest(path: str | Path, members: Sequence[Any]) -> None:
    """``cohort.json``: the cohort's students and their run directories (relative to its folder when inside)."""
    path = Path(path)
    base = path.parent.resolve()
    students = []
    for member in members:
        cfg = member.cfg
        out = Path(cfg.out).resolve() if cfg.out is not None else None
        shown = None if out is None else str(out.relative_to(base)) if out.is_relative_to(base) else str(out)
        students.append(
            {
                "out": shown,
                "arch": cfg.arch,
                "method": cfg.method,
                "seed": cfg.seed,
                "lr": cfg.lr,
                "objective": member.method.describe(),
            }
        )
    first = members[0].cfg
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        path,
        {
            "format": MANIFEST_FORMAT,
            "teacher": first.teacher_arch,
            "teacher_checkpoint": first.teacher_checkpoint,
            "dataset": first.dataset,
            "students": students,
        },
    )
