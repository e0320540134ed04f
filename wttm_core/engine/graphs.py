"""The training step replayed as one CUDA graph.

At the recipe's batch of 64 the CIFAR networks are far too small to keep a GPU busy: a distillation step is a few
hundred kernels of a few microseconds each, and the time goes to launching them from Python, one by one. Capturing
the whole step once (teacher forward, student forward, loss, backward, SGD update; PyTorch's "whole-network
capture") and replaying it per batch launches them all with one call.

A capture freezes addresses and constants, so :class:`GraphedStep` keeps the training exactly what the eager loop
computes:

* the inputs live in static buffers; each batch is copied in before the replay, and the outputs (loss parts,
  logits, sample weights) are static tensors that the caller reads before the next call;
* every batch is trained once: the warm-up steps that a capture needs are real steps on the first batches (run
  eagerly on a side stream), and the batch that triggers a capture is trained by the first replay;
* the learning rate is a constant of the captured SGD kernels, so the step is captured again whenever a
  parameter group's learning rate differs from the one captured (at the recipe's milestones);
* a batch of another size than ``batch_size`` (the last, partial batch of an epoch) runs eagerly;
* after the optimizer's state is replaced (``load_state_dict`` makes new momentum tensors), :meth:`reset`
  makes the next call capture again.

The step itself must not read values back to the host (the engine's loss terms call the functional core's
unchecked kernels, see :mod:`wttm_core.loss_terms`) and, under autocast, must not use autocast's weight cache. fp16
with its loss scaler (which reads the gradients' finiteness back), DistributedDataParallel and torch.compile are
not supported: :func:`wttm_core.engine.config.resolve_config` turns graphs off for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch
from torch import Tensor

from wttm_core._checks import check_int

__all__ = ["GraphedStep"]

Out = TypeVar("Out")


class GraphedStep(Generic[Out]):
    """Call ``step(images, labels)`` through a CUDA graph; see the module docstring for what is kept exact.

    ``step`` performs one full training step (including ``optimizer.step()``) and returns tensors (or objects
    holding tensors) that stay valid until the next call. ``optimizer`` is the optimizer that ``step`` updates:
    its learning rates decide when to capture again. Only batches of ``batch_size`` images are replayed (all
    batches of the first batch's size when it is ``None``). ``warmup`` eager steps precede the first capture.
    """

    def __init__(
        self,
        step: Callable[[Tensor, Tensor], Out],
        optimizer: torch.optim.Optimizer,
        *,
        batch_size: int | None = None,
        warmup: int = 3,
    ) -> None:
        self.step = step
        self.optimizer = optimizer
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, low=1)
        self.warmup = check_int("warmup", warmup, low=1)  # a capture needs warmed-up kernels
        self.captures = 0
        self.replays = 0
        self.eager_steps = 0
        self._warmed = 0
        self._shape: tuple[object, ...] | None = None
        self._lrs: tuple[float, ...] | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_images: Tensor | None = None
        self._static_labels: Tensor | None = None
        self._static_out: Out | None = None

    def _learning_rates(self) -> tuple[float, ...]:
        return tuple(float(group["lr"]) for group in self.optimizer.param_groups)

    def __call__(self, images: Tensor, labels: Tensor) -> Out:
        if not images.is_cuda:
            raise ValueError(f"GraphedStep needs CUDA tensors, got images on {images.device}")
        shape = (tuple(images.shape), images.stride(), images.dtype, tuple(labels.shape), labels.dtype)
        if self._shape is None and (self.batch_size is None or images.shape[0] == self.batch_size):
            self._shape = shape  # the first full batch fixes the captured shape
        if shape != self._shape:
            self.eager_steps += 1
            return self.step(images, labels)
        if self._warmed < self.warmup:
            self._warmed += 1
            return self._warm_up(images, labels)
        if self._graph is None or self._lrs != self._learning_rates():
            self._capture(images, labels)
        assert self._static_images is not None and self._static_labels is not None and self._graph is not None
        self._static_images.copy_(images)
        self._static_labels.copy_(labels)
        self._graph.replay()
        self.replays += 1
        return self._static_out  # type: ignore[return-value]

    def reset(self) -> None:
        """Capture again at the next call (for example after the optimizer's state was loaded)."""
        self._graph, self._static_out, self._lrs = None, None, None

    def _warm_up(self, images: Tensor, labels: Tensor) -> Out:
        """One real step on a side stream, as capture asks (lazy cuDNN / autograd setup happens outside it)."""
        main = torch.cuda.current_stream(images.device)
        side = torch.cuda.Stream(images.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            out = self.step(images, labels)
        main.wait_stream(side)
        torch.cuda.synchronize(images.device)  # the outputs were allocated on the side stream: settle them
        self.eager_steps += 1
        return out

    def _capture(self, images: Tensor, labels: Tensor) -> None:
        # drop the previous graph and its outputs first, so its private memory pool can be released
        self._graph, self._static_out = None, None
        self.optimizer.zero_grad(set_to_none=True)  # backward then makes .grad in the graph's own pool
        self._static_images = images.clone()  # same strides (channels_last stays channels_last)
        self._static_labels = labels.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._static_out = self.step(self._static_images, self._static_labels)
        self._graph = graph
        self._lrs = self._learning_rates()
        self.captures += 1
