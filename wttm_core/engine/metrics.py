"""What the engine measures each epoch: training sums and the test-set quantities the paper's figures plot.

All distribution measures come from the functional core, none is re-derived here:

* ``student_entropy`` - mean Shannon entropy ``H(q)`` of the student on the test set (Fig. 1, Fig. 3);
* ``renyi_entropy`` - mean ``H_{1/T}(q)`` (Eq. 4), the regulariser that Eq. 15 finds inside TTM;
* ``kl_transformed_teacher`` - mean ``D(p^t_T || q)`` (the TTM term, Eq. 2; Fig. 2);
* ``kd_divergence`` - mean ``D(p^t_T || q_T)`` (KD's term without ``T^2``, Eq. 1);
* ``weight_mean`` / ``weight_std`` - WTTM's sample weight ``U_{1/T}(p^t)`` (Eq. 22) over the epoch's training
  samples (Fig. 1 uses ``beta = 36 / mean U``).

Sums are kept on the device (no host synchronisation per step) and reduced over ranks at the end of an epoch.
Accuracies are in percent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wttm_core import functional as WF
from wttm_core.engine.distributed import DistContext, all_reduce_sum
from wttm_core.engine.methods import LossParts
from wttm_core.engine.runtime import autocast

__all__ = ["TrainMeter", "predict_logits", "evaluation_sums", "finish_evaluation", "topk_correct"]


class TrainMeter:
    """Running sums over one epoch's training batches: each loss part, accuracy and the WTTM weight ``U``."""

    def __init__(self, part_names: Iterable[str], device: torch.device | str) -> None:
        self.part_names = list(part_names)
        # slots: total loss, each part, correct, weight sum, weight square sum
        self.sums = torch.zeros(len(self.part_names) + 4, dtype=torch.float64, device=device)
        self.count = 0
        self.weight_count = 0

    def update(self, parts: LossParts, logits: Tensor, labels: Tensor, weights: Tensor | None) -> None:
        """Add one batch (``parts`` are batch means, so they are weighted by the batch size)."""
        n = labels.shape[0]
        values = [parts.total.detach(), *(parts.parts[name].detach() for name in self.part_names)]
        row = [v.double() * n for v in values]
        row.append((logits.detach().argmax(dim=-1) == labels).sum().double())
        if weights is not None:
            w = weights.detach().double()
            row += [w.sum(), (w * w).sum()]
            self.weight_count += int(w.numel())
        else:
            row += [torch.zeros((), dtype=torch.float64, device=self.sums.device)] * 2
        self.sums += torch.stack(row)
        self.count += n

    def state_dict(self) -> dict[str, Any]:
        return {"sums": self.sums.cpu(), "count": self.count, "weight_count": self.weight_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums.copy_(state["sums"])
        self.count = int(state["count"])
        self.weight_count = int(state["weight_count"])

    def result(self, ctx: DistContext) -> dict[str, float | None]:
        """Epoch means over all ranks: ``train_loss``, ``train_<part>``, ``train_acc``, ``weight_mean/std``."""
        counts = torch.tensor([self.count, self.weight_count], dtype=torch.float64, device=self.sums.device)
        packed = all_reduce_sum(torch.cat([self.sums, counts]), ctx).cpu().tolist()
        sums, count, weight_count = packed[:-2], packed[-2], packed[-1]
        k = len(self.part_names)
        out: dict[str, float | None] = {"train_loss": sums[0] / max(count, 1)}
        for i, name in enumerate(self.part_names):
            out[f"train_{name}"] = sums[1 + i] / max(count, 1)
        out["train_acc"] = 100.0 * sums[1 + k] / max(count, 1)
        if weight_count:
            mean = sums[2 + k] / weight_count
            var = max(sums[3 + k] / weight_count - mean * mean, 0.0)
            out["weight_mean"], out["weight_std"] = mean, var**0.5
        else:
            out["weight_mean"] = out["weight_std"] = None
        return out


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    device: str,
    amp: str = "off",
    channels_last: bool = False,
) -> tuple[Tensor, Tensor]:
    """Float32 logits and labels of ``model`` (in eval mode) over ``batches``, on ``device``."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for images, y in batches:
        images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        with autocast(device, amp):
            logits.append(model(images).float())
        labels.append(y.to(device, non_blocking=True))
    model.train(was_training)
    if not logits:
        raise ValueError("batches is empty: nothing to evaluate")
    return torch.cat(logits), torch.cat(labels)


def topk_correct(logits: Tensor, labels: Tensor, k: int) -> Tensor:
    """Number of samples whose label is among the ``k`` largest logits (a 0-d tensor)."""
    k = min(k, logits.shape[-1])
    return (logits.topk(k, dim=-1).indices == labels.unsqueeze(-1)).any(dim=-1).sum()


def evaluation_sums(
    student_logits: Tensor, labels: Tensor, teacher_logits: Tensor | None, temperature: float
) -> dict[str, Tensor]:
    """Per-metric sums over a set of test samples (float64 0-d tensors; ``count`` included)."""
    z = student_logits.float()
    q = torch.softmax(z, dim=-1)
    sums = {
        "count": torch.tensor(float(labels.shape[0]), dtype=torch.float64, device=z.device),
        "test_loss": F.cross_entropy(z, labels, reduction="sum").double(),
        "test_acc": topk_correct(z, labels, 1).double(),
        "test_top5": topk_correct(z, labels, 5).double(),
        "student_entropy": WF.shannon_entropy(q).sum().double(),
    }
    if teacher_logits is None:
        sums["renyi_entropy"] = WF.renyi_entropy(q, 1.0 / temperature).sum().double()
        return sums
    terms = WF.kd_ttm_decomposition(z, teacher_logits.float(), temperature)
    sums["renyi_entropy"] = terms["renyi"].sum().double()
    sums["kl_transformed_teacher"] = terms["ttm"].sum().double()
    sums["kd_divergence"] = terms["kd"].sum().double()
    sums["teacher_agreement"] = (z.argmax(-1) == teacher_logits.argmax(-1)).sum().double()
    return sums


_PERCENT = frozenset({"test_acc", "test_top5", "teacher_agreement"})


def finish_evaluation(sums: dict[str, Tensor], ctx: DistContext) -> dict[str, float]:
    """Reduce :func:`evaluation_sums` over ranks and divide by the sample count (accuracies in percent)."""
    names = list(sums)
    packed = all_reduce_sum(torch.stack([sums[n] for n in names]), ctx).cpu().tolist()
    values = dict(zip(names, packed, strict=True))
    count = max(values.pop("count"), 1.0)
    return {n: (100.0 if n in _PERCENT else 1.0) * v / count for n, v in values.items()}
