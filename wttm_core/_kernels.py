"""The kernels of :mod:`wttm_core.functional`: the maths of each term, per sample, without checks.

The public functions of :mod:`wttm_core.functional` check their arguments and values, then call these; the
training step's loss terms (:mod:`wttm_core.loss_terms`) call them directly, so a step reads nothing back from the
device. Notation and equation numbers are the paper's (Zheng & Yang, ICLR 2024): teacher logits ``v``, student
logits ``z``, ``gamma = 1 / T``. Everything is computed in the log domain; losses compute in float64 when either
input is float64 and in float32 otherwise; the teacher is detached on entry.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from wttm_core._fused import match

# Below this distance from alpha = 1 the Renyi entropy is evaluated as log1p(sum p * expm1((alpha-1) log p)),
# which has no cancellation (all terms share one sign); farther away the plain log-sum-exp form is exact and
# cannot overflow.
_NEAR_ONE = 0.5


# --------------------------------------------------------------------------------------------------------------
# A distribution given by its logarithm (finite gradients for finite log-probabilities)
# --------------------------------------------------------------------------------------------------------------


def _log_power_sum(log_p: Tensor, gamma: float, dim: int = -1) -> Tensor:
    """``log sum_j p_j^gamma`` (Eq. 22) as a log-sum-exp."""
    return torch.logsumexp(gamma * log_p, dim=dim)


def _shannon_from_log(log_p: Tensor, dim: int = -1) -> Tensor:
    """``-sum p log p`` with ``0 log 0 = 0``; a ``-inf`` entry (an exact zero) contributes no gradient."""
    present = log_p > -math.inf
    safe_log_p = torch.where(present, log_p, torch.zeros_like(log_p))
    return -torch.where(present, torch.exp(safe_log_p) * safe_log_p, torch.zeros_like(log_p)).sum(dim=dim)


def _renyi_from_log(log_p: Tensor, alpha: float, dim: int = -1) -> Tensor:
    """Renyi entropy of order ``alpha`` (Eq. 4) of a normalised distribution given by its logarithm."""
    if alpha == 1.0:
        return _shannon_from_log(log_p, dim)
    if alpha == 0.0:
        support = (log_p > -math.inf).sum(dim=dim)
        return torch.log(support.to(log_p.dtype))
    if math.isinf(alpha):
        return -log_p.amax(dim=dim)
    if abs(alpha - 1.0) < _NEAR_ONE:
        present = log_p > -math.inf
        safe_log_p = torch.where(present, log_p, torch.zeros_like(log_p))
        terms = torch.exp(safe_log_p) * torch.expm1((alpha - 1.0) * safe_log_p)
        log_power = torch.log1p(torch.where(present, terms, torch.zeros_like(terms)).sum(dim=dim))
    else:
        log_power = _log_power_sum(log_p, alpha, dim)
    return log_power / (1.0 - alpha)


def _kl_from_logs(log_target: Tensor, log_input: Tensor) -> Tensor:
    """Per-row ``D(target || input)`` from the logs of both distributions (``[N, K] -> [N]``)."""
    return F.kl_div(log_input, log_target, reduction="none", log_target=True).sum(dim=-1)


# --------------------------------------------------------------------------------------------------------------
# Distillation terms: per-sample values [N]
# --------------------------------------------------------------------------------------------------------------


def _upcast(student_logits: Tensor, teacher_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Both logits in the compute dtype (float64 if either is, else float32); the teacher detached."""
    dtype = torch.float64 if torch.float64 in (student_logits.dtype, teacher_logits.dtype) else torch.float32
    return student_logits.to(dtype), teacher_logits.detach().to(dtype)


def _teacher(teacher_logits: Tensor) -> Tensor:
    return teacher_logits.detach().to(torch.float64 if teacher_logits.dtype == torch.float64 else torch.float32)


def _weighted_teacher(teacher: Tensor, gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(p^t)^gamma = U p^t_T``, ``log p^t_T`` and ``U = U_gamma(p^t)`` as ``[N, 1]`` (Eqs. 8-9, 22).

    ``(p^t_j)^gamma = exp(gamma log p^t_j)`` is WTTM's target as it stands: its row sum is the weight ``U``
    and dividing by ``U`` gives ``p^t_T``. For ``gamma <= 1`` the largest power is at least ``1/K``, so the plain
    sum cannot underflow; for ``gamma > 1`` the log of ``U`` is taken with a log-sum-exp instead.
    """
    log_power = torch.log_softmax(teacher, dim=-1).mul_(gamma)
    powered = torch.exp(log_power)
    if gamma > 1:
        log_weight = torch.logsumexp(log_power, dim=-1, keepdim=True)
        weight = torch.exp(log_weight)
    else:
        weight = powered.sum(dim=-1, keepdim=True)
        log_weight = torch.log(weight)
    return powered, log_power.sub_(log_weight), weight


def _kd(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``T^2 D(p^t_T || q_T)`` per sample (Eq. 1)."""
    student, teacher = _upcast(student_logits, teacher_logits)
    log_pt = torch.log_softmax(teacher / temperature, dim=-1)
    return match(student, torch.exp(log_pt), log_pt, scale=1.0 / temperature, factor=temperature**2)


def _ttm(student_logits: Tensor, teacher_logits: Tensor, gamma: float) -> Tensor:
    """``D(p^t_T || q)`` per sample (Eq. 2), ``T = 1 / gamma``."""
    student, teacher = _upcast(student_logits, teacher_logits)
    log_pt = torch.log_softmax(gamma * teacher, dim=-1)
    return match(student, torch.exp(log_pt), log_pt)


def _wttm(student_logits: Tensor, teacher_logits: Tensor, gamma: float) -> Tensor:
    """``U_gamma(p^t) D(p^t_T || q)`` per sample (Eq. 23)."""
    student, teacher = _upcast(student_logits, teacher_logits)
    powered, log_pt, weight = _weighted_teacher(teacher, gamma)
    return match(student, powered, log_pt, mass=weight)


def _wttm_weights(teacher_logits: Tensor, gamma: float) -> Tensor:
    """``U_gamma(p^t)`` per sample (Eq. 22), no gradient."""
    return torch.exp(_log_power_sum(torch.log_softmax(_teacher(teacher_logits), dim=-1), gamma))


# --------------------------------------------------------------------------------------------------------------
# Baselines the paper compares against
# --------------------------------------------------------------------------------------------------------------

# The authors' CIFAR-100 settings, the defaults of the public losses and of the loss-term table alike.
DKD_ALPHA, DKD_BETA, DKD_TEMPERATURE = 1.0, 8.0, 4.0  # Zhao et al. (mdistiller): TCKD weight, NCKD weight, T
LSKD_TEMPERATURE = 2.0  # Sun et al.: the base temperature of their CIFAR-100 runs


def _dkd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, alpha: float, beta: float, temperature: float):
    """``T^2 (alpha TCKD + beta NCKD)`` per sample (Zhao et al., CVPR 2022), in the log domain."""
    student, teacher = _upcast(student_logits, teacher_logits)
    target = F.one_hot(labels, student.shape[-1]).bool()
    log_q, log_p = torch.log_softmax(student / temperature, -1), torch.log_softmax(teacher / temperature, -1)
    # TCKD: KL of the binary (target, rest) distributions; log(1 - p_t) as a log-sum-exp over the other classes
    index = labels.unsqueeze(-1)
    binary_p = torch.cat([log_p.gather(-1, index), torch.logsumexp(log_p.masked_fill(target, -math.inf), -1, True)], -1)
    binary_q = torch.cat([log_q.gather(-1, index), torch.logsumexp(log_q.masked_fill(target, -math.inf), -1, True)], -1)
    tckd = _kl_from_logs(binary_p, binary_q)
    # NCKD: KL of the distributions over the non-target classes (the target logit removed before the softmax)
    other_p = torch.log_softmax((teacher / temperature).masked_fill(target, -math.inf), -1)
    other_q = torch.log_softmax((student / temperature).masked_fill(target, -math.inf), -1)
    nckd = torch.where(target, 0.0, other_p.exp() * (other_p - other_q)).sum(-1)
    return temperature**2 * (alpha * tckd + beta * nckd)


def _standardise(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """Z-score of each row: ``(l - mean(l)) / (std(l) + eps)``, std with Bessel's correction (the authors' code)."""
    return (logits - logits.mean(-1, keepdim=True)) / (logits.std(-1, keepdim=True) + eps)


def _lskd(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KD's ``T^2 D(p^t_T || q_T)`` per sample on z-scored logits (Sun et al., CVPR 2024)."""
    student, teacher = _upcast(student_logits, teacher_logits)
    return _kd(_standardise(student), _standardise(teacher), temperature)
