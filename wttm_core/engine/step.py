"""One distillation step, top to bottom (Eq. 24: ``L = H(y, q) + beta U D(p^t_T || q) + mu L_other``).

1. the frozen teacher's logits, under ``torch.inference_mode()`` in the students' autocast (:func:`teacher_logits`);
2. the student's logits, in the same autocast;
3. the method's loss: a weighted sum of the terms of :data:`wttm_core.loss_terms.TERMS` (:class:`Method`), each
   computed in float32 by the unchecked kernels of :mod:`wttm_core._kernels`;
4. backward through the gradient scaler, then the optimizer's step (:func:`distillation_step`).

Nothing is read back to the host, so the host can queue the next step while a GPU runs this one. What is *around*
the step lives elsewhere: parsing and checking a method string (:mod:`.methods`, :mod:`.config`), building the
student (:mod:`.student`), the epoch loop, persistence and evaluation (:mod:`.loop`, :mod:`.persistence`,
:mod:`.metrics`) and the speed paths that wrap it (compile, DDP, CUDA graphs: :mod:`.speed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from wttm_core._checks import check_int
from wttm_core.engine.runtime import autocast
from wttm_core.loss_terms import LossTerm, sample_weights

if TYPE_CHECKING:  # the parsed method string; parsing is configuration, not the step
    from wttm_core.engine.methods import MethodSpec

__all__ = ["LossParts", "Method", "StepOutput", "teacher_logits", "distillation_step"]


@dataclass(frozen=True)
class LossParts:
    """The total loss of one batch and its weighted terms (``sum(parts.values()) == total``)."""

    total: Tensor
    parts: dict[str, Tensor]


class Method:
    """A weighted sum of loss terms; call it with ``(student_logits, teacher_logits, labels)``.

    Build one with :func:`~wttm_core.engine.methods.build_method`. ``terms`` maps each part name to its weight;
    ``needs_teacher`` says whether teacher logits must be passed (``None`` is accepted for teacher-free terms
    alone).
    """

    def __init__(self, spec: MethodSpec, parts: list[tuple[str, float, LossTerm, dict[str, Any]]]) -> None:
        self.spec = spec
        self.terms = {name: weight for name, weight, _, _ in parts}
        self._parts = parts
        self.needs_teacher = any(term.needs_teacher for _, _, term, _ in parts)
        self._factor_tensors: dict[tuple[str, torch.device], Tensor] = {}
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Set the 0-based epoch for the terms with a schedule (a warm-up); the training loop calls it per epoch.

        A term's factor lives in a device tensor that is updated in place, so a step captured as a CUDA graph
        replays with the current factor and nothing is read back.
        """
        epoch = check_int("epoch", epoch, low=0)
        self.factors = {name: term.schedule(epoch, hp) for name, _, term, hp in self._parts if term.schedule}
        for (name, _), tensor in self._factor_tensors.items():
            tensor.fill_(self.factors[name])

    def _factor(self, name: str, like: Tensor) -> Tensor:
        key = (name, like.device)
        if key not in self._factor_tensors:
            self._factor_tensors[key] = torch.tensor(self.factors[name], dtype=torch.float32, device=like.device)
        return self._factor_tensors[key]

    def __call__(self, student_logits: Tensor, teacher_logits: Tensor | None, labels: Tensor) -> LossParts:
        if self.needs_teacher and teacher_logits is None:
            raise ValueError(f"teacher_logits are required by method {self.describe()!r}")
        parts = {}
        for name, weight, term, hp in self._parts:
            value = weight * term.function(student_logits, teacher_logits, labels, hp)
            parts[name] = value * self._factor(name, value) if term.schedule is not None else value
        total = torch.stack(list(parts.values())).sum()
        return LossParts(total, parts)

    def hyperparameters(self) -> dict[str, dict[str, Any]]:
        """The resolved hyper-parameters of every part (what the run uses; recorded next to the config)."""
        return {name: dict(hp) for name, _, _, hp in self._parts}

    def describe(self) -> str:
        """The objective as text, e.g. ``1*ce + 1.5*wttm``."""
        return " + ".join(f"{weight:g}*{name}" for name, weight in self.terms.items())

    def __repr__(self) -> str:
        return f"Method({self.describe()})"


StepOutput = tuple[LossParts, Tensor, "Tensor | None"]  # loss parts, student logits, WTTM's weight U (a metric)


def teacher_logits(
    forward: Callable[[Tensor], Tensor] | None, images: Tensor, device: str, amp: str, *, cache: bool = True
) -> Tensor | None:
    """The frozen teacher's logits under ``inference_mode`` in the students' autocast (``None`` without one).

    ``cache=False`` (a step captured as a CUDA graph) turns off autocast's cache of cast weights.
    """
    if forward is None:
        return None
    with autocast(device, amp, cache=cache), torch.inference_mode():
        return forward(images)


def distillation_step(
    student_forward: Callable[[Tensor], Tensor],
    method: Method,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: tuple[Tensor, Tensor, Tensor | None],
    *,
    device: str,
    amp: str,
    cache: bool = True,
    loss_scale: float = 1.0,
    metric_gamma: float = 1.0,
) -> StepOutput:
    """Student forward, the method's loss parts (float32), backward, update, for ``batch = (images, labels,
    teacher_logits)``.

    ``loss_scale`` turns a rank's batch-mean loss into its share of the global batch (data-parallel training).
    Returns the detached loss parts, the student's logits and WTTM's weight ``U_gamma(p^t)`` at
    ``gamma = metric_gamma`` (Eq. 22, a metric; ``None`` without a teacher).
    """
    images, labels, teacher = batch
    with autocast(device, amp, cache=cache):
        student_logits = student_forward(images)
    parts = method(student_logits, teacher, labels)  # float32, unchecked kernels: no read-back
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(parts.total * loss_scale).backward()
    scaler.step(optimizer)
    scaler.update()
    weights = sample_weights(teacher, metric_gamma, "power-sum") if teacher is not None else None
    # detached, so that no output keeps this step's autograd graph (and its AccumulateGrad nodes) alive
    detached = LossParts(parts.total.detach(), {name: v.detach() for name, v in parts.parts.items()})
    return detached, student_logits.detach(), weights
