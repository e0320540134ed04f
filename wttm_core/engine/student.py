"""One student: its model, optimizer, schedule, loss method, training step, evaluation, history and summary.

A student trains alone (:class:`wttm_core.engine.loop.Trainer`) or in a cohort that shares the data and the frozen
teacher (:mod:`wttm_core.engine.shared`); either way it owns everything that makes its result its own, so a
student in a cohort computes exactly what it computes alone with the same seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from wttm_core.engine import distributed as D
from wttm_core.engine import speed
from wttm_core.engine.config import TrainConfig, method_for
from wttm_core.engine.graphs import GraphedStep
from wttm_core.engine.methods import Method
from wttm_core.engine.metrics import TrainMeter, evaluation_sums, finish_evaluation
from wttm_core.engine.runtime import seed_everything
from wttm_core.engine.shared import Shared
from wttm_core.engine.step import StepOutput, distillation_step

__all__ = ["Student", "StepOutput"]


def _from_shared(name: str, doc: str) -> Any:
    """A read-only attribute that is the :class:`~wttm_core.engine.shared.Shared` object's ``name``."""
    return property(lambda self: getattr(self.shared, name), doc=doc)


class Student:
    """A student built on ``shared`` (data, teacher): model, SGD with momentum, step decay, gradient scaler."""

    def __init__(self, cfg: TrainConfig, ctx: D.DistContext, shared: Shared, requested: TrainConfig | None = None):
        from wttm_core.models import build_model

        self.cfg, self.ctx, self.shared = cfg, ctx, shared
        self.requested = requested if requested is not None else cfg  # as given, before resolution
        self.device = torch.device(cfg.device)
        self.method: Method = method_for(cfg)
        seed_everything(cfg.seed)  # the student's initial weights follow its own seed
        student = build_model(cfg.arch, num_classes=shared.num_classes)
        if ctx.enabled and cfg.sync_bn:
            student = D.convert_sync_batchnorm(student, cfg.device)
        self.student = student.to(self.device, memory_format=speed.memory_format(cfg))
        self.optimizer = torch.optim.SGD(
            self.student.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(cfg.milestones or ()), gamma=cfg.lr_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.student_forward: Callable[[Tensor], Tensor] = speed.student_forward(self.student, cfg, ctx)
        self.graphed_step: GraphedStep[StepOutput] | None = speed.graphed(self._train_step, self.optimizer, cfg)
        self.metric_gamma = 1.0 / float(cfg.metric_temperature)  # type: ignore[arg-type]
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"test_acc": None, "epoch": None}
        self.partial: dict[str, Any] | None = None  # a mid-epoch state to continue from
        self.stopped: str | None = None  # why this student stopped early (divergence)
        self._last_test_logits: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------------------------ what is shared
    teacher = _from_shared("teacher", "The frozen teacher (``None`` without a teacher checkpoint).")
    train_set = _from_shared("train_set", "The training set.")
    test_set = _from_shared("test_set", "The test set.")
    data_given = _from_shared("data_given", "Whether the data were passed in (``data=``) rather than loaded.")
    test_loader = _from_shared("test_loader", "The test loader (data set order, no augmentation).")
    teacher_test_acc = _from_shared("teacher_test_acc", "The teacher's test accuracy (``None`` without a teacher).")

    @property
    def train_loader(self) -> Any:
        """The training loader of this student's seed (shared by the students with the same seed)."""
        return self.shared.train_loader(self.cfg.seed)

    def teacher_test_logits(self) -> Tensor | None:
        """The teacher's logits on the test set (this process's shard), computed once per run."""
        return self.shared.teacher_test_logits()

    def last_test_logits(self) -> tuple[Tensor, Tensor] | None:
        """The student's logits and the labels of the last evaluation (this process's shard under DDP), for
        epoch callbacks that want more than the logged means without a second pass over the test set."""
        return self._last_test_logits

    # ------------------------------------------------------------------------------------ the step
    def _step(self, images: Tensor, labels: Tensor, global_size: int, meter: TrainMeter) -> None:
        """A whole step (teacher included), replayed as a CUDA graph where graphs are on; metrics into ``meter``."""
        if self.graphed_step is not None:  # single process: the global batch is the local one
            parts, student_logits, weights = self.graphed_step(images, labels)
        else:
            parts, student_logits, weights = self._train_step(images, labels, global_size)
        meter.update(parts, student_logits, labels, weights)

    def _train_step(self, images: Tensor, labels: Tensor, global_size: int | None = None) -> StepOutput:
        """One optimisation step: the teacher's logits, then :meth:`student_step`."""
        return self.student_step(images, labels, self.shared.teacher_logits(images), global_size)

    def student_step(
        self, images: Tensor, labels: Tensor, teacher_logits: Tensor | None, global_size: int | None = None
    ) -> StepOutput:
        """This student's :func:`~wttm_core.engine.step.distillation_step` (forward, loss parts, backward, update).

        Returns the detached loss parts, the student's logits and WTTM's weight ``U`` (Eq. 22, a metric). Reads
        nothing back to the host (divergence is checked at the epoch's end).
        """
        cfg = self.cfg
        return distillation_step(
            self.student_forward,
            self.method,
            self.optimizer,
            self.scaler,
            (images, labels, teacher_logits),
            device=cfg.device,
            amp=cfg.amp,
            cache=not cfg.cuda_graphs,
            loss_scale=D.loss_scale(labels.shape[0], global_size or labels.shape[0], self.ctx),
            metric_gamma=self.metric_gamma,
        )

    # ------------------------------------------------------------------------------------ the epoch's end
    def end_epoch(self, epoch: int, meter: TrainMeter, lr: float, train_seconds: float) -> dict[str, Any] | None:
        """The epoch's record (training means, test-set metrics, timings), or ``None`` when the training loss or
        the student's test-set outputs are not finite: the student then stops, with the reason in :attr:`stopped`
        and its summary."""
        train_part = meter.result(self.ctx)
        if not all(v is None or math.isfinite(v) for v in train_part.values()):
            self.stopped = f"epoch {epoch + 1}: the training loss is not finite ({train_part})"
            return None
        self.scheduler.step()
        eval_start = _clock(self.device)
        test_part = self.evaluate()
        eval_seconds = _clock(self.device) - eval_start
        if test_part is None:  # a step that left the weights non-finite: the loss was finite before it
            self.stopped = f"epoch {epoch + 1}: the student's test-set outputs are not finite (its weights diverged)"
            return None
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **train_part, **test_part}
        if self.best["test_acc"] is None or record["test_acc"] > self.best["test_acc"]:
            self.best = {"test_acc": record["test_acc"], "epoch": epoch + 1}
        images_seen = meter.count * self.ctx.world_size
        record.update(
            best_test_acc=self.best["test_acc"],
            teacher_test_acc=self.teacher_test_acc,
            images_per_s=images_seen / train_seconds if train_seconds > 0 else None,
            train_seconds=train_seconds,
            eval_seconds=eval_seconds,
            seconds=train_seconds + eval_seconds,
        )
        for key in ("kl_transformed_teacher", "kd_divergence", "teacher_agreement"):
            record.setdefault(key, None)
        self.history.append(record)
        return record

    def evaluate(self) -> dict[str, float] | None:
        """Test-set metrics (:mod:`wttm_core.engine.metrics`) in the evaluation precision (float32 by default);
        ``None`` when the student's logits are not finite (one read-back per evaluation)."""
        student_logits, labels = self.shared.predict(self.student)
        if not bool(torch.isfinite(student_logits).all()):
            return None
        self._last_test_logits = (student_logits, labels)
        teacher_logits = self.teacher_test_logits()
        sums = evaluation_sums(student_logits, labels, teacher_logits, float(self.cfg.metric_temperature))
        return finish_evaluation(sums, self.ctx)

    def summary(self) -> dict[str, Any]:
        """Best and last test accuracy (published tables mix both protocols) and what produced them."""
        last = self.history[-1] if self.history else {}
        summary = {
            "arch": self.cfg.arch,
            "teacher": self.cfg.teacher_arch,
            "method": self.cfg.method,
            "objective": self.method.describe(),
            "gamma": self.cfg.gamma,
            "beta": self.cfg.beta,
            "seed": self.cfg.seed,
            "dataset": self.cfg.dataset,
            "epochs": self.cfg.epochs,
            "epochs_completed": len(self.history),
            "complete": len(self.history) == self.cfg.epochs,
            "best_test_acc": self.best["test_acc"],
            "best_epoch": self.best["epoch"],
            "last_test_acc": last.get("test_acc"),
            "last_test_top5": last.get("test_top5"),
            "last_epoch": last.get("epoch"),
            "teacher_test_acc": self.teacher_test_acc,
            "train_seconds": sum(r["train_seconds"] for r in self.history),
            "seconds": sum(r["seconds"] for r in self.history),
        }
        if self.stopped is not None:
            summary["diverged"] = self.stopped
        return summary


def _clock(device: torch.device) -> float:
    """A clock reading after the device has finished what was queued."""
    speed.sync(device)
    return time.perf_counter()
