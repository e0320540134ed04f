"""The fused target-matching term with its closed-form backward (private; used by :mod:`wttm_core.functional`).

All three distillation terms of the paper are one shape of computation, per row ``i``::

    factor * sum_j t_ij (log_t_ij - log softmax(scale * z_i)_j)

with a fixed (teacher-side) target ``t`` whose row masses are ``m_i = sum_j t_ij`` and ``log_t`` its normalised
log. ``t = p^t_T`` gives ``D(p^t_T || q)`` (TTM, Eq. 2); ``t = U p^t_T`` gives ``U D(p^t_T || q)`` (WTTM, Eq. 23);
the student at ``scale = 1/T`` with ``factor = T^2`` gives KD (Eq. 1). Its gradient in ``z`` is
``factor * scale * (m * softmax(scale z) - t)`` (Eqs. 20-21): one softmax instead of autograd's chain through
``kl_div`` and ``log_softmax``. :func:`match` is the only entry point.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["match"]


def _forward(student: Tensor, target: Tensor, log_target: Tensor, mass: Tensor | None, scale: float, factor: float):
    """The per-row value (see the module docstring); ``mass`` enters only the gradient."""
    scaled = student * scale if scale != 1.0 else student
    per_row = torch.sub(log_target, torch.log_softmax(scaled, dim=-1)).mul_(target).sum(dim=-1)
    return per_row.mul_(factor) if factor != 1.0 else per_row


def _gradient(student: Tensor, target: Tensor, mass: Tensor | None, scale: float, coefficient) -> Tensor:
    """``coefficient * scale * (mass * softmax(scale z) - target)``, in place unless autograd must trace it
    (double backward, ``torch.func``)."""
    q = torch.softmax(student * scale if scale != 1.0 else student, dim=-1)
    coefficient = coefficient * scale
    if torch.is_grad_enabled():
        scaled_q = q * mass if mass is not None else q
        return (scaled_q - target) * coefficient
    if mass is not None:
        q.mul_(mass)
    return q.sub_(target).mul_(coefficient)


def _save(ctx: Any, inputs: tuple[Any, ...]) -> None:
    student, target, _, mass, scale, factor = inputs
    ctx.save_for_backward(student, target, mass)
    ctx.scale, ctx.factor = scale, factor


def _backward(ctx: Any, grad_rows: Tensor) -> tuple[Tensor | None, ...]:
    student, target, mass = ctx.saved_tensors
    grad = _gradient(student, target, mass, ctx.scale, ctx.factor * grad_rows.unsqueeze(-1))
    return grad, None, None, None, None, None


class _Matching(torch.autograd.Function):
    """:func:`_forward` with the closed-form backward; the fast path for autograd."""

    @staticmethod
    def forward(ctx, *inputs):  # type: ignore[override]
        _save(ctx, inputs)
        return _forward(*inputs)

    backward = staticmethod(_backward)


class _TransformableMatching(torch.autograd.Function):
    """The same for ``torch.func`` (``grad``, ``vmap``, ``jvp``, ``hessian``): those need ``setup_context``,
    whose dispatch costs about 50 us a call on the CPU, so this twin is used only while a transform is active."""

    generate_vmap_rule = True
    forward = staticmethod(_forward)
    backward = staticmethod(_backward)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        _save(ctx, inputs)
        ctx.save_for_forward(*inputs[:2], inputs[3])

    @staticmethod
    def jvp(ctx, student_tangent, *_):  # type: ignore[override]
        student, target, mass = ctx.saved_tensors
        return (_gradient(student, target, mass, ctx.scale, ctx.factor) * student_tangent).sum(dim=-1)


_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def match(
    student: Tensor,
    target: Tensor,
    log_target: Tensor,
    *,
    mass: Tensor | None = None,
    scale: float = 1.0,
    factor: float = 1.0,
) -> Tensor:
    """Per-row ``factor * sum_j t_ij (log_t_ij - log softmax(scale z_i)_j)`` with the closed-form backward."""
    function = _TransformableMatching if _transforms_active() else _Matching
    return function.apply(student, target, log_target, mass, scale, factor)
