"""Data-parallel training across processes (``torchrun --nproc_per_node N``), keeping the recipe's global batch.

Design (so that N processes compute what one process computes, up to float rounding):

* Every rank builds the same loader with the same seed and therefore sees the same global batch of 64 images;
  rank ``r`` takes the ``r``-th of N contiguous slices (:func:`shard`). The union of the slices is exactly the
  single-process batch - a DistributedSampler-equivalent split that keeps the augmentation stream identical.
* Each rank's loss is scaled by ``N * b_r / B`` (:func:`loss_scale`), so DistributedDataParallel's gradient
  average equals the gradient of the global batch mean also for an uneven last batch.
* BatchNorm: per-rank statistics over 64 / N images would change the recipe. With ``sync_bn`` (the default)
  every BatchNorm layer normalises with statistics over the global batch: torch's ``SyncBatchNorm`` on CUDA and
  :class:`GlobalBatchNorm2d` (an autograd-aware all-reduce of per-channel sums, any backend) on the CPU, where
  torch's version is not available. Running statistics then also match the single-process run.
* Only rank 0 writes files and shows progress; metrics are reduced over all ranks.

The backend is NCCL on CUDA and gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "DistContext",
    "context_from_environment",
    "process_group",
    "shard",
    "loss_scale",
    "all_reduce_sum",
    "broadcast_object",
    "barrier",
    "GlobalBatchNorm2d",
    "convert_sync_batchnorm",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly one-process) data-parallel job."""

    rank: int = 0  # this process among all of the job's (torchrun's RANK)
    world_size: int = 1  # processes in the job (WORLD_SIZE)
    local_rank: int = 0  # this process among its machine's: the GPU it drives (LOCAL_RANK)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_environment() -> DistContext:
    """Read ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` as set by ``torchrun``; one process when they are absent."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return DistContext(rank, world, local)


@contextlib.contextmanager
def process_group(ctx: DistContext, device: str) -> Iterator[None]:
    """Join the job's process group for the duration of the block (nothing to do for one process)."""
    if not ctx.enabled or dist.is_initialized():
        yield
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend, rank=ctx.rank, world_size=ctx.world_size, timeout=timedelta(minutes=30))
    try:
        yield
    finally:
        dist.destroy_process_group()


def shard(images: Tensor, labels: Tensor, ctx: DistContext) -> tuple[Tensor, Tensor]:
    """Rank ``ctx.rank``'s contiguous slice of a global batch (all of it for one process)."""
    if not ctx.enabled:
        return images, labels
    return images.tensor_split(ctx.world_size)[ctx.rank], labels.tensor_split(ctx.world_size)[ctx.rank]


def loss_scale(local_size: int, global_size: int, ctx: DistContext) -> float:
    """Factor turning a rank's batch-mean loss into its share of the global batch mean (DDP averages ranks)."""
    return ctx.world_size * local_size / global_size


def all_reduce_sum(tensor: Tensor, ctx: DistContext) -> Tensor:
    """Sum ``tensor`` over the ranks (in place) and return it; identity for one process."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(value: object, ctx: DistContext) -> object:
    """Rank 0's ``value`` on every rank."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    """Wait for every rank."""
    if ctx.enabled:
        dist.barrier()


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce(SUM)`` with a gradient: every rank's output is the sum, so d(loss)/d(input) is the sum of the
    ranks' d(loss)/d(output) - itself an all-reduce."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics cover the whole global batch across all ranks.

    Per channel, the ranks all-reduce ``sum x`` and the element count, then ``sum (x - mean)^2`` (two passes, as
    accurate as one process's variance), through an autograd-aware all-reduce, so gradients flow through the
    shared mean and variance exactly as in one process holding the whole batch. Statistics are computed in
    float32 (float64 for float64 input). Outside a process group, or in eval mode, it is a plain ``BatchNorm2d``.
    """

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        x = input.to(torch.promote_types(input.dtype, torch.float32))
        channels, dims = x.shape[1], (0, 2, 3)
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
        total = _SumOverRanks.apply(torch.cat([x.sum(dim=dims), count]))
        n = total[-1]
        mean = total[:channels] / n
        centred = x - mean.view(1, channels, 1, 1)
        var = _SumOverRanks.apply((centred * centred).sum(dim=dims)) / n  # second pass: no cancellation
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n.detach() / (n.detach() - 1).clamp_min(1.0))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = (1, channels, 1, 1)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, device: str) -> nn.Module:
    """Replace every ``BatchNorm2d`` by a global-batch version: torch's SyncBatchNorm on CUDA, ours elsewhere."""
    if device.startswith("cuda"):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlobalBatchNorm2d):
        replaced = GlobalBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        floats = [t for t in module.state_dict().values() if t.is_floating_point()]
        if floats:
            replaced.to(device=floats[0].device, dtype=floats[0].dtype)
        replaced.load_state_dict(module.state_dict())
        replaced.train(module.training)
        return replaced
    for name, child in module.named_children():
        setattr(module, name, _convert(child))
    return module
