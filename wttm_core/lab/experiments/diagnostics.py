"""Per-epoch test-set distributions that the engine's epoch means do not keep: ``diagnostics.jsonl``.

The engine logs *means* over the test set (``student_entropy`` = mean H(q), ``kl_transformed_teacher`` = mean
D(p^t_T || q)). Two of the paper's views need more:

* Fig. 3 is a *histogram* of the student's per-sample output entropy H(q) (CE vs label smoothing vs KD with
  T = 1 and T = 4): KD with T = 4 moves the whole distribution *down* relative to CE;
* the teacher-student divergence per superclass (the 20 CIFAR-100 superclasses) shows where the student still
  disagrees with the transformed teacher p^t_T (Eqs. 7-9).

:class:`DiagnosticsRecorder` is an engine epoch callback that evaluates the student on the test set after every
epoch and appends one compact row (a fixed-bin entropy histogram, per-superclass means; a few kB) to
``<run>/diagnostics.jsonl``, so that example runs stay far below a megabyte and carry no checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wttm_core import functional as WF
from wttm_core._checks import check_int
from wttm_core.runs import read_jsonl

__all__ = [
    "ENTROPY_BINS",
    "entropy_histogram",
    "superclass_breakdown",
    "diagnostics_row",
    "DiagnosticsRecorder",
]

ENTROPY_BINS = 40


def _round(value: float, digits: int = 5) -> float:
    """``value`` to ``digits`` significant digits (keeps the JSON lines short)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def entropy_histogram(entropy: Tensor, num_classes: int, bins: int = ENTROPY_BINS) -> dict[str, list[float]]:
    """Counts of per-sample entropies (nats) in ``bins`` equal bins over ``[0, log K]`` (Fig. 3).

    Returns ``{"edges": [bins + 1 floats], "counts": [bins ints]}``; values at ``log K`` fall in the last bin.
    """
    if not isinstance(entropy, Tensor) or entropy.dim() != 1:
        raise TypeError("entropy must be a 1-D tensor of per-sample entropies")
    check_int("num_classes", num_classes, low=2)
    check_int("bins", bins, low=1)
    top = math.log(num_classes)
    values = entropy.detach().double().cpu().clamp(0.0, top)
    counts = torch.histc(values, bins=bins, min=0.0, max=top)
    edges = [_round(top * i / bins) for i in range(bins + 1)]
    return {"edges": edges, "counts": [int(c) for c in counts.tolist()]}


def superclass_breakdown(
    student_logits: Tensor,
    teacher_logits: Tensor | None,
    labels: Tensor,
    fine_to_coarse: Tensor,
    gamma: float,
) -> dict[str, list[float]]:
    """Per-superclass test-set means: accuracy (%), H(q), and D(p^t_T || q) with ``p^t_T = sigma(gamma v)``.

    Samples are grouped by the superclass of their *true* label; lists are indexed by superclass. The divergence
    (the TTM term, Eq. 2) is ``None``-free only when ``teacher_logits`` is given, otherwise it is omitted.
    """
    coarse = fine_to_coarse.to(labels.device)[labels]
    groups = int(fine_to_coarse.max()) + 1
    count = torch.bincount(coarse, minlength=groups).double().clamp_min(1)

    def mean_by_group(values: Tensor) -> list[float]:
        sums = torch.zeros(groups, dtype=torch.float64, device=values.device).index_add_(0, coarse, values.double())
        return [_round(v) for v in (sums / count).tolist()]

    z = student_logits.float()
    out = {
        "accuracy": mean_by_group(100.0 * (z.argmax(-1) == labels).double()),
        "student_entropy": mean_by_group(WF.shannon_entropy(torch.softmax(z, -1))),
        "count": [int(c) for c in torch.bincount(coarse, minlength=groups).tolist()],
    }
    if teacher_logits is not None:
        out["kl_transformed_teacher"] = mean_by_group(WF.ttm_loss(z, teacher_logits.float(), gamma, reduction="none"))
    return out


def diagnostics_row(
    epoch: int,
    student_logits: Tensor,
    teacher_logits: Tensor | None,
    labels: Tensor,
    fine_to_coarse: Tensor,
    gamma: float,
    bins: int = ENTROPY_BINS,
) -> dict[str, Any]:
    """One ``diagnostics.jsonl`` row: the student's entropy histogram and the per-superclass breakdown."""
    num_classes = student_logits.shape[-1]
    entropy = WF.shannon_entropy(torch.softmax(student_logits.float(), -1))
    return {
        "epoch": int(epoch),
        "gamma": gamma,
        "entropy_histogram": entropy_histogram(entropy, num_classes, bins),
        "superclass": superclass_breakdown(student_logits, teacher_logits, labels, fine_to_coarse, gamma),
    }


class DiagnosticsRecorder:
    """Engine epoch callback writing :func:`diagnostics_row` for every epoch to ``<out>/diagnostics.jsonl``.

    Built from a prepared :class:`wttm_core.engine.loop.Trainer` (``wttm_core.engine.prepare``): in a single
    process it reuses the student and teacher test logits of the engine's own evaluation. The first row also
    holds the teacher's own entropy histogram (``teacher_entropy_histogram``, at T = 1).
    """

    def __init__(self, trainer: Any, *, bins: int = ENTROPY_BINS) -> None:
        if trainer.cfg.out is None:
            raise ValueError("trainer: the run has no output directory (config.out) to write diagnostics to")
        self.trainer = trainer
        self.bins = bins
        self.path = Path(trainer.cfg.out) / "diagnostics.jsonl"
        self.gamma = 1.0 / float(trainer.cfg.metric_temperature)
        # a resumed run keeps the rows of the epochs it already finished
        self.rows: list[dict[str, Any]] = read_jsonl(self.path) if self.path.is_file() else []
        self._teacher_logits: Tensor | None = None

    def _logits(self, model: Any) -> tuple[Tensor, Tensor]:
        from wttm_core.engine.metrics import predict_logits

        cfg = self.trainer.cfg
        return predict_logits(
            model,
            self.trainer.test_loader,
            device=cfg.device,
            amp=self.trainer.shared.eval_amp(),  # the engine's evaluation precision
            channels_last=bool(cfg.channels_last),
        )

    def __call__(self, record: dict[str, Any]) -> None:
        from wttm_core.engine.state import write_jsonl

        trainer = self.trainer
        fine_to_coarse = trainer.test_set.fine_to_coarse
        # a single process reuses the engine's own evaluation (one pass over the test set per epoch, not two);
        # under DDP the engine holds only this process's shard, so the whole test set is predicted here
        whole = trainer.ctx.world_size == 1
        if trainer.teacher is not None and self._teacher_logits is None:
            self._teacher_logits = trainer.teacher_test_logits() if whole else self._logits(trainer.teacher)[0]
        engine_logits = trainer.last_test_logits() if whole else None
        student_logits, labels = engine_logits or self._logits(trainer.student)
        row = diagnostics_row(
            record["epoch"], student_logits, self._teacher_logits, labels, fine_to_coarse, self.gamma, self.bins
        )
        self.rows = [r for r in self.rows if r["epoch"] < record["epoch"]]
        if not self.rows and self._teacher_logits is not None:
            teacher_entropy = WF.shannon_entropy(torch.softmax(self._teacher_logits.float(), -1))
            row["teacher_entropy_histogram"] = entropy_histogram(teacher_entropy, student_logits.shape[-1], self.bins)
        self.rows.append(row)
        write_jsonl(self.path, self.rows)
