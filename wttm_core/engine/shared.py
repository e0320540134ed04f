"""What the students of a run share: the data, the frozen teacher, its test-set logits and the loaders.

One student alone (``wttm distill``) and a cohort of students (:func:`wttm_core.engine.train_cohort`) are built
the same way: first the shared part, once, then each student. Students with the same ``seed`` draw their batches
from one training loader, so they see the same batches in the same order (a paired design); the teacher runs
once per step for all of them (:meth:`Shared.teacher_logits`) and once per run on the test set
(:meth:`Shared.teacher_test_logits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wttm_core.engine import distributed as D
from wttm_core.engine import speed, step
from wttm_core.engine.config import TrainConfig
from wttm_core.engine.metrics import finish_evaluation, predict_logits

__all__ = ["Shared", "load_data", "load_teacher"]


def load_data(cfg: TrainConfig, data: tuple[Any, Any] | None) -> tuple[Any, Any]:
    """The ``(train, test)`` data sets: ``data`` when given, else ``cfg.dataset`` loaded as configured."""
    from wttm_core.data import load_dataset

    if data is not None:
        return data
    if cfg.dataset == "cifar100" and not cfg.download and not Path(cfg.data_dir).is_dir():
        raise ValueError(f"data_dir: {cfg.data_dir} does not exist (CIFAR-100 is read from there)")
    common = {"data_dir": cfg.data_dir, "seed": cfg.data_seed, "download": cfg.download}
    if cfg.dataset == "synthetic":
        common["similarity"] = cfg.synthetic_similarity
    train_set = load_dataset(cfg.dataset, "train", size=cfg.train_size, **common)
    test_set = load_dataset(cfg.dataset, "test", size=cfg.test_size, **common)
    return train_set, test_set


def load_teacher(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """The frozen teacher: a standard teacher's file (however it was reached) is checked against its digest."""
    from wttm_core.teachers import load_resolved_teacher, resolve_teacher  # the one resolve_teacher (issue 12)

    choice = resolve_teacher(cfg.teacher_arch, cfg.teacher_checkpoint, teacher_dir=cfg.teacher_dir)
    return load_resolved_teacher(choice, num_classes=num_classes)


class Shared:
    """The data, the frozen teacher and the loaders of one run or one cohort (built from its first config)."""

    def __init__(self, cfg: TrainConfig, ctx: D.DistContext, data: tuple[Any, Any] | None = None) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.device = torch.device(cfg.device)
        self.train_set, self.test_set = load_data(cfg, data)
        self.data_given = data is not None
        self.num_classes = int(self.train_set.num_classes)
        self.teacher: nn.Module | None = None
        if cfg.teacher_checkpoint is not None:
            teacher = load_teacher(cfg, self.num_classes)
            fmt = speed.memory_format(cfg)
            self.teacher = teacher.to(self.device, memory_format=fmt).eval().requires_grad_(False)
        self.teacher_forward = speed.teacher_forward(self.teacher, cfg)
        self.test_loader = speed.test_loader(self.test_set, cfg)
        self._train_loaders: dict[int, Any] = {}
        self._teacher_test_logits: Tensor | None = None
        self.teacher_test_acc: float | None = None

    def train_loader(self, seed: int) -> Any:
        """The training loader of ``seed`` (one per seed: students sharing it see the same batches)."""
        if seed not in self._train_loaders:
            self._train_loaders[seed] = speed.train_loader(self.train_set, self.cfg, seed)
        return self._train_loaders[seed]

    def teacher_logits(self, images: Tensor) -> Tensor | None:
        """The frozen teacher's logits, under ``inference_mode`` in the students' autocast (``None`` without one)."""
        cfg = self.cfg
        return step.teacher_logits(self.teacher_forward, images, cfg.device, cfg.amp, cache=not cfg.cuda_graphs)

    def teacher_logits_of(self, batches: Sequence[Tensor]) -> list[Tensor | None]:
        """The teacher's logits of several batches from one forward pass over their concatenation."""
        if len(batches) == 1:
            return [self.teacher_logits(batches[0])]
        logits = self.teacher_logits(torch.cat(list(batches)))
        if logits is None:
            return [None] * len(batches)
        with torch.inference_mode():
            return list(logits.split([b.shape[0] for b in batches]))

    def eval_amp(self) -> str:
        """The autocast mode of test-set evaluation: ``"off"`` (float32) unless ``eval_precision`` is ``"amp"``."""
        return self.cfg.amp if self.cfg.eval_precision == "amp" else "off"

    def predict(self, model: nn.Module) -> tuple[Tensor, Tensor]:
        """Float32 logits and labels of ``model`` on this process's share of the test set."""
        return predict_logits(
            model,
            speed.shards(self.test_loader, self.cfg, self.ctx),
            device=self.cfg.device,
            amp=self.eval_amp(),
            channels_last=bool(self.cfg.channels_last),
        )

    def teacher_test_logits(self) -> Tensor | None:
        """The teacher's logits on the test set (this process's shard), computed once per run."""
        if self.teacher is None:
            return None
        if self._teacher_test_logits is None:
            logits, labels = self.predict(self.teacher)
            self._teacher_test_logits = logits
            sums = {
                "count": torch.tensor(float(labels.numel()), dtype=torch.float64, device=logits.device),
                "acc": (logits.argmax(-1) == labels).sum().double(),
            }
            self.teacher_test_acc = finish_evaluation(sums, self.ctx)["acc"] * 100.0
        return self._teacher_test_logits
