"""The speed paths of the training loop, kept apart from what it computes.

None of these changes a result beyond float rounding; each is chosen by the configuration (:mod:`.config`):

* the device-resident loader (:class:`~wttm_core.data.DeviceLoader`, batched augmentation on the training device)
  or the reference ``DataLoader`` with per-image PIL transforms (:func:`train_loader`, :func:`test_loader`);
* channels_last memory format (:func:`memory_format`);
* ``torch.compile`` of the student and the teacher, and DistributedDataParallel under ``torchrun``
  (:func:`student_forward`, :func:`teacher_forward`);
* the training step replayed as one CUDA graph (:func:`graphed`, :class:`Optimizers` for a cohort's step;
  :mod:`wttm_core.engine.graphs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from wttm_core.engine import distributed as D
from wttm_core.engine.config import TrainConfig
from wttm_core.engine.graphs import GraphedStep

__all__ = [
    "memory_format",
    "train_loader",
    "test_loader",
    "loader_generators",
    "to_device",
    "shards",
    "student_forward",
    "teacher_forward",
    "graphed",
    "Optimizers",
    "sync",
]

Out = TypeVar("Out")


def memory_format(cfg: TrainConfig) -> torch.memory_format:
    """channels_last where the configuration asks for it (bf16 / CUDA convolutions), else contiguous."""
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def train_loader(train_set: Any, cfg: TrainConfig, seed: int) -> Any:
    """The training loader whose shuffle order and augmentation follow ``seed``."""
    from wttm_core.data import DeviceLoader, reference_loader

    if cfg.loader == "reference":
        return reference_loader(train_set, cfg.batch_size, train=True, num_workers=cfg.num_workers, seed=seed)
    device, fmt = torch.device(cfg.device), memory_format(cfg)
    return DeviceLoader(train_set, cfg.batch_size, train=True, device=device, seed=seed, memory_format=fmt)


def test_loader(test_set: Any, cfg: TrainConfig) -> Any:
    """The test loader (data set order, no augmentation)."""
    from wttm_core.data import DeviceLoader, reference_loader

    batch_size = int(cfg.test_batch_size)  # type: ignore[arg-type]
    if cfg.loader == "reference":
        return reference_loader(test_set, batch_size, train=False)
    device = torch.device(cfg.device)
    return DeviceLoader(test_set, batch_size, train=False, device=device, memory_format=memory_format(cfg))


def loader_generators(loader: Any) -> dict[str, torch.Generator]:
    """Stateful generators of a training loader (the device loader draws per epoch from its seed: none)."""
    found = {}
    if isinstance(getattr(loader, "generator", None), torch.Generator):
        found["loader"] = loader.generator
    dataset_generator = getattr(getattr(loader, "dataset", None), "generator", None)
    if isinstance(dataset_generator, torch.Generator):
        found["dataset"] = dataset_generator
    return found


def to_device(images: Tensor, labels: Tensor, cfg: TrainConfig) -> tuple[Tensor, Tensor]:
    """A batch on the training device in the configured memory format (a no-op for the device loader)."""
    images = images.to(cfg.device, non_blocking=True).contiguous(memory_format=memory_format(cfg))
    return images, labels.to(cfg.device, non_blocking=True)


def shards(
    loader: Iterable[tuple[Tensor, Tensor]], cfg: TrainConfig, ctx: D.DistContext
) -> Iterator[tuple[Tensor, Tensor]]:
    """This process's slice of every batch of ``loader`` (all of it in one process)."""
    for images, labels in loader:
        yield D.shard(*to_device(images, labels, cfg), ctx)


def student_forward(student: nn.Module, cfg: TrainConfig, ctx: D.DistContext) -> Callable[[Tensor], Tensor]:
    """The student as the step calls it: wrapped in DistributedDataParallel under torchrun, compiled on request."""
    trained: nn.Module = student
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        device = torch.device(cfg.device)
        ids = [device.index] if device.type == "cuda" else None
        trained = DistributedDataParallel(student, device_ids=ids)
    return torch.compile(trained) if cfg.compile else trained


def teacher_forward(teacher: nn.Module | None, cfg: TrainConfig) -> Callable[[Tensor], Tensor] | None:
    """The frozen teacher as the step calls it (compiled on request)."""
    return torch.compile(teacher) if cfg.compile and teacher is not None else teacher


class Optimizers:
    """Several optimizers seen as one by :class:`~wttm_core.engine.graphs.GraphedStep` (a cohort's step): their
    parameter groups decide when to capture again, and ``zero_grad`` clears them all."""

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)


def graphed(step: Callable[[Tensor, Tensor], Out], optimizer: Any, cfg: TrainConfig) -> GraphedStep[Out] | None:
    """``step`` replayed as one CUDA graph when the configuration has graphs on, else ``None`` (eager)."""
    return GraphedStep(step, optimizer, batch_size=cfg.batch_size) if cfg.cuda_graphs else None


def sync(device: torch.device) -> None:
    """Wait for the device (so that a clock reading covers the work queued before it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
