"""The mathematics of transformed teacher matching, as pure tensor functions.

Notation follows Zheng & Yang, "Knowledge Distillation Based on Transformed Teacher Matching" (ICLR 2024):
teacher logits ``v``, student logits ``z``, ``p^t = softmax(v)``, ``q = softmax(z)``, temperature ``T`` and
power ``gamma = 1 / T``. Equation numbers in the docstrings are the paper's.

Everything is computed in the log domain: the transformed teacher is ``log_softmax(gamma * v)`` (Eqs. 8-9),
never ``softmax(v) ** gamma``, so teacher logit gaps far beyond float32's ``exp`` range stay exact.

Each public function checks its arguments and values (:mod:`wttm_core._checks`) and calls a private kernel
(``_kd``, ``_ttm``, ``_wttm``, ``_renyi_from_log``, ...: :mod:`wttm_core._kernels`) that holds the maths
without checks. The training engine's loss terms call those kernels directly, by design: its step reads nothing
back from the device.

Dtypes: the losses and gradients compute in float64 when either input is float64 and in float32 otherwise
(float16 / bfloat16 inputs, also under ``torch.autocast``, are upcast); the result has that compute dtype.
The entropy and transform functions return the dtype of their input.

Teacher logits never receive a gradient: they are detached on entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from wttm_core._checks import (
    check_finite,
    check_labels,
    check_log_weights,
    check_logit_pair,
    check_logits,
    check_probabilities,
    check_reduction,
    check_scalar,
    raise_if_not_finite,
)
from wttm_core._kernels import (  # the kernels without checks (the engine's loss terms call them directly)
    DKD_ALPHA,
    DKD_BETA,
    DKD_TEMPERATURE,
    LSKD_TEMPERATURE,
    _dkd,
    _kd,
    _kl_from_logs,
    _log_power_sum,
    _lskd,
    _renyi_from_log,
    _shannon_from_log,
    _teacher,
    _ttm,
    _upcast,
    _weighted_teacher,
    _wttm,
    _wttm_weights,
)

__all__ = [
    "power_transform",
    "log_power_transform",
    "renyi_entropy",
    "renyi_entropy_from_logits",
    "shannon_entropy",
    "shannon_entropy_from_logits",
    "power_sum",
    "power_sum_from_logits",
    "log_power_sum",
    "transformed_teacher_log_probs",
    "wttm_weights",
    "kd_loss",
    "ttm_loss",
    "wttm_loss",
    "kd_ttm_decomposition",
    "kd_grad",
    "ttm_grad",
    "wttm_grad",
    "dkd_loss",
    "lskd_loss",
]


# --------------------------------------------------------------------------------------------------------------
# Transforms and entropies of a distribution
# --------------------------------------------------------------------------------------------------------------


def log_power_transform(log_p: Tensor, gamma: float, dim: int = -1) -> Tensor:
    """Log of the power transform (Eq. 7): ``gamma * log p - logsumexp(gamma * log p)``.

    ``log_p`` may be log-probabilities or any unnormalised log-weights (logits): the transform renormalises.
    With logits ``l`` this is ``log_softmax(gamma * l)``, i.e. temperature ``T = 1 / gamma`` (Eqs. 8-9).
    """
    gamma = check_scalar("gamma", gamma)
    log_p = check_log_weights("log_p", log_p, dim)
    return torch.log_softmax(gamma * log_p, dim=dim)


def power_transform(p: Tensor, gamma: float, dim: int = -1) -> Tensor:
    """Power transform of a distribution (Eqs. 6-7): ``p_i^gamma / sum_j p_j^gamma``.

    For ``0 < gamma < 1`` it smooths ``p`` (raises small probabilities), for ``gamma > 1`` it sharpens it;
    ``power_transform(softmax(l), gamma) == softmax(gamma * l)`` (Eqs. 8-9). Zero entries stay zero.
    """
    gamma = check_scalar("gamma", gamma)
    p = check_probabilities("p", p, dim)
    return torch.softmax(gamma * torch.log(p), dim=dim)


def log_power_sum(log_p: Tensor, gamma: float, dim: int = -1) -> Tensor:
    """``log U_gamma(p) = log sum_j p_j^gamma`` (Eq. 22) from log-probabilities, without leaving the log domain.

    Equals ``(1 - gamma) * H_gamma(p)`` for a normalised ``p``.
    """
    gamma = check_scalar("gamma", gamma)
    log_p = check_log_weights("log_p", log_p, dim)
    return _log_power_sum(log_p, gamma, dim)


def power_sum(p: Tensor, gamma: float, dim: int = -1) -> Tensor:
    """The power sum ``U_gamma(p) = sum_j p_j^gamma`` (Eq. 22), WTTM's sample weight.

    For ``0 < gamma < 1`` it lies in ``[1, K^(1 - gamma)]``: 1 for a one-hot ``p``, ``K^(1 - gamma)`` for the
    uniform distribution - a measure of how smooth ``p`` is. To differentiate it, use
    :func:`power_sum_from_logits` (``log p`` of an underflowed probability is ``-inf``).
    """
    gamma = check_scalar("gamma", gamma)
    p = check_probabilities("p", p, dim)
    return torch.exp(_log_power_sum(torch.log(p), gamma, dim))


def power_sum_from_logits(logits: Tensor, gamma: float, dim: int = -1) -> Tensor:
    """``U_gamma(softmax(l))`` (Eq. 22) from logits (or log-probabilities), with finite gradients at any gap."""
    gamma = check_scalar("gamma", gamma)
    logits = check_log_weights("logits", logits, dim)
    return torch.exp(_log_power_sum(torch.log_softmax(logits, dim=dim), gamma, dim))


def renyi_entropy(p: Tensor, alpha: float, dim: int = -1) -> Tensor:
    """Renyi entropy of order ``alpha`` in nats (Eq. 4): ``log(sum_i p_i^alpha) / (1 - alpha)``.

    Defined for every ``alpha`` in ``[0, inf]``: ``alpha = 0`` gives the log of the support size, ``alpha = 1``
    the Shannon entropy (the limit), ``alpha = float("inf")`` the min-entropy ``-log max_i p_i``. Near
    ``alpha = 1`` a cancellation-free form keeps float64 accuracy. To differentiate it, use
    :func:`renyi_entropy_from_logits`.
    """
    alpha = check_scalar("alpha", alpha, allow_zero=True, allow_inf=True)
    p = check_probabilities("p", p, dim)
    return _renyi_from_log(torch.log(p), alpha, dim)


def renyi_entropy_from_logits(logits: Tensor, alpha: float, dim: int = -1) -> Tensor:
    """``H_alpha(softmax(l))`` (Eq. 4) from logits (or log-probabilities), in the log domain throughout.

    ``softmax`` underflows to 0 once a logit gap exceeds about 104 in float32 and ``log 0`` has no useful
    gradient; ``log_softmax`` stays finite, so the gradient is finite at any gap.
    """
    alpha = check_scalar("alpha", alpha, allow_zero=True, allow_inf=True)
    logits = check_log_weights("logits", logits, dim)
    return _renyi_from_log(torch.log_softmax(logits, dim=dim), alpha, dim)


def shannon_entropy(p: Tensor, dim: int = -1) -> Tensor:
    """Shannon entropy ``H(p) = -sum_i p_i log p_i`` in nats, with ``0 log 0 = 0``."""
    p = check_probabilities("p", p, dim)
    return -torch.special.xlogy(p, p).sum(dim=dim)


def shannon_entropy_from_logits(logits: Tensor, dim: int = -1) -> Tensor:
    """``H(softmax(l))`` from logits (or log-probabilities), with finite gradients at any logit gap."""
    logits = check_log_weights("logits", logits, dim)
    return _shannon_from_log(torch.log_softmax(logits, dim=dim), dim)


# --------------------------------------------------------------------------------------------------------------
# Distillation terms on logits (public: checks, then the kernel)
# --------------------------------------------------------------------------------------------------------------


def _reduce_checked(per_sample: Tensor, reduction: str, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Apply ``reduction`` to the ``[N]`` per-sample values, then make sure the result is finite.

    Any NaN or Inf in the logits propagates into the result, so one scalar check replaces a scan of both
    ``[N, K]`` inputs on the common path; only a non-finite result triggers the scan that names the culprit.
    """
    result = per_sample.mean() if reduction == "mean" else per_sample.sum() if reduction == "sum" else per_sample
    raise_if_not_finite(result, student_logits=student_logits, teacher_logits=teacher_logits)
    return result


def _checked_term(
    kernel: Callable[..., Tensor],
    student_logits: Tensor,
    teacher_logits: Tensor,
    reduction: str,
    two_classes: str = "",
    **scalars: float,
) -> Tensor:
    """The public edge of a distillation term: check each positive hyper-parameter in ``scalars`` (by name, in
    the kernel's order), the reduction and the logit pair (at least two classes, if ``two_classes`` says what
    for), then reduce ``kernel(student_logits, teacher_logits, *scalars)``."""
    values = [check_scalar(name, value) for name, value in scalars.items()]
    reduction = check_reduction(reduction)
    check_logit_pair(student_logits, teacher_logits)
    if two_classes and student_logits.shape[1] < 2:
        raise ValueError(f"student_logits must have at least two classes {two_classes}")
    per_sample = kernel(student_logits, teacher_logits, *values)
    return _reduce_checked(per_sample, reduction, student_logits, teacher_logits)


def transformed_teacher_log_probs(teacher_logits: Tensor, gamma: float) -> Tensor:
    """``log p^t_T = log_softmax(gamma * v)``: the power-transformed teacher (Eqs. 7-9), detached."""
    gamma = check_scalar("gamma", gamma)
    check_logits("teacher_logits", teacher_logits)
    result = torch.log_softmax(gamma * _teacher(teacher_logits), dim=-1)
    raise_if_not_finite(result.sum(dim=-1), teacher_logits=teacher_logits)
    return result


def wttm_weights(teacher_logits: Tensor, gamma: float) -> Tensor:
    """Per-sample WTTM weights ``U_gamma(p^t)`` (Eq. 23) of the untempered teacher ``p^t = softmax(v)``, ``[N]``.

    The weight is the unnormalised power sum - the normaliser that builds ``p^t_T`` - and carries no gradient.
    """
    gamma = check_scalar("gamma", gamma)
    check_logits("teacher_logits", teacher_logits)
    weight = _wttm_weights(teacher_logits, gamma)
    raise_if_not_finite(weight, teacher_logits=teacher_logits)
    return weight


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, reduction: str = "mean") -> Tensor:
    """The distillation term of KD (Eq. 1): ``T^2 D(p^t_T || q_T)`` with both sides at temperature ``T``.

    ``reduction="mean"`` averages over the batch (the reference code's convention), ``"sum"`` adds, ``"none"``
    returns the ``[N]`` per-sample values. The full KD objective of Eq. 1 is
    ``(1 - lambda) * cross_entropy + lambda * kd_loss``.
    """
    return _checked_term(_kd, student_logits, teacher_logits, reduction, temperature=temperature)


def ttm_loss(student_logits: Tensor, teacher_logits: Tensor, gamma: float, reduction: str = "mean") -> Tensor:
    """The distillation term of TTM (Eq. 2): ``D(p^t_T || q)`` with ``T = 1 / gamma`` on the teacher only.

    No ``T^2`` factor (the reference convention). TTM = KD + a Renyi-entropy regulariser: see Eq. 15 and
    :func:`kd_ttm_decomposition`.
    """
    return _checked_term(_ttm, student_logits, teacher_logits, reduction, gamma=gamma)


def wttm_loss(student_logits: Tensor, teacher_logits: Tensor, gamma: float, reduction: str = "mean") -> Tensor:
    """The distillation term of weighted TTM (Eq. 23): ``U_gamma(p^t) D(p^t_T || q)``, ``T = 1 / gamma``.

    The sample weight ``U_gamma(p^t)`` (Eq. 22) is large for smooth teacher outputs and 1 for one-hot ones.
    It is the row sum of ``(p^t)^gamma``, which serves directly as the weighted target ``U p^t_T``, so WTTM
    costs one row sum more than TTM.
    """
    return _checked_term(_wttm, student_logits, teacher_logits, reduction, gamma=gamma)


def kd_ttm_decomposition(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> dict[str, Tensor]:
    """The terms of the KD/TTM identity (Eqs. 11-15), per sample (``[N]`` each).

    Returns ``"ttm"`` = ``D(p^t_T || q)``, ``"kd"`` = ``D(p^t_T || q_T)`` (without ``T^2``), ``"renyi"`` =
    ``H_{1/T}(q)`` and ``"teacher_entropy"`` = ``H(p^t_T)``, such that (Eq. 15)
    ``ttm = T * kd - (T - 1) * renyi + (T - 1) * teacher_entropy``.
    """
    temperature = check_scalar("temperature", temperature)
    check_logit_pair(student_logits, teacher_logits)
    student, teacher = _upcast(student_logits, teacher_logits)
    log_pt = torch.log_softmax(teacher / temperature, dim=-1)
    log_q = torch.log_softmax(student, dim=-1)
    log_qt = torch.log_softmax(student / temperature, dim=-1)
    terms = {
        "ttm": _kl_from_logs(log_pt, log_q),
        "kd": _kl_from_logs(log_pt, log_qt),
        "renyi": _renyi_from_log(log_q, 1.0 / temperature),
        "teacher_entropy": _shannon_from_log(log_pt),
    }
    raise_if_not_finite(sum(terms.values()), student_logits=student_logits, teacher_logits=teacher_logits)
    return terms


# --------------------------------------------------------------------------------------------------------------
# Closed-form gradients with respect to the student logits (of the reduction="sum" losses)
# --------------------------------------------------------------------------------------------------------------


def _checked_pair(student_logits: Tensor, teacher_logits: Tensor) -> tuple[Tensor, Tensor]:
    """The gradients' softmaxes hide a ``-inf`` logit, so they scan both inputs for NaN / Inf first."""
    check_logit_pair(student_logits, teacher_logits)
    check_finite("student_logits", student_logits)
    check_finite("teacher_logits", teacher_logits)
    return _upcast(student_logits, teacher_logits)


def kd_grad(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Gradient of ``kd_loss(..., reduction="sum")`` w.r.t. the student logits: ``T (q_T - p^t_T)`` (Eq. 21).

    Eq. 21 gives ``(q_T - p^t_T) / T`` for the bare divergence; KD's ``T^2`` factor makes it ``T (q_T - p^t_T)``.
    """
    temperature = check_scalar("temperature", temperature)
    student, teacher = _checked_pair(student_logits, teacher_logits)
    return temperature * (torch.softmax(student / temperature, -1) - torch.softmax(teacher / temperature, -1))


def ttm_grad(student_logits: Tensor, teacher_logits: Tensor, gamma: float) -> Tensor:
    """Gradient of ``ttm_loss(..., reduction="sum")`` w.r.t. the student logits: ``q - p^t_T`` (Eq. 20)."""
    gamma = check_scalar("gamma", gamma)
    student, teacher = _checked_pair(student_logits, teacher_logits)
    return torch.softmax(student, -1) - torch.softmax(gamma * teacher, -1)


def wttm_grad(student_logits: Tensor, teacher_logits: Tensor, gamma: float) -> Tensor:
    """Gradient of ``wttm_loss(..., reduction="sum")``: ``U_gamma(p^t) (q - p^t_T)`` (Eq. 20 weighted by Eq. 22)."""
    gamma = check_scalar("gamma", gamma)
    student, teacher = _checked_pair(student_logits, teacher_logits)
    powered, _, weight = _weighted_teacher(teacher, gamma)
    return weight * torch.softmax(student, -1) - powered


# --------------------------------------------------------------------------------------------------------------
# Baselines the paper compares against
# --------------------------------------------------------------------------------------------------------------


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    *,
    alpha: float = DKD_ALPHA,
    beta: float = DKD_BETA,
    temperature: float = DKD_TEMPERATURE,
    reduction: str = "mean",
) -> Tensor:
    """Decoupled KD (Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022): ``T^2 (alpha TCKD + beta NCKD)``.

    At temperature ``T``, ``TCKD = D(b^t || b^s)`` matches the binary distributions ``(p_y, 1 - p_y)`` of the
    target class ``y`` and ``NCKD = D(p_hat^t || p_hat^s)`` the distributions over the other classes
    (renormalised). KD's term is ``T^2 (TCKD + (1 - p^t_y) NCKD)``; DKD frees the two weights. Defaults are the
    authors' CIFAR-100 setting (their linear warm-up of the whole term over 20 epochs is the engine's schedule).
    """
    alpha = check_scalar("alpha", alpha, allow_zero=True)
    beta = check_scalar("beta", beta, allow_zero=True)
    temperature = check_scalar("temperature", temperature)
    reduction = check_reduction(reduction)
    check_logit_pair(student_logits, teacher_logits)
    if student_logits.shape[1] < 2:
        raise ValueError("student_logits must have at least two classes for DKD")
    check_labels(labels, student_logits)
    per_sample = _dkd(student_logits, teacher_logits, labels, alpha, beta, temperature)
    return _reduce_checked(per_sample, reduction, student_logits, teacher_logits)


def lskd_loss(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = LSKD_TEMPERATURE, reduction: str = "mean"
) -> Tensor:
    """KD with logit standardisation (Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024).

    Each sample's teacher and student logits are z-scored over the classes, ``Z(l) = (l - mean) / std``, before
    KD's tempered divergence: ``T^2 D(softmax(Z(v) / T) || softmax(Z(z) / T))`` with the base temperature ``T``
    (2 in the authors' CIFAR-100 runs). The student then matches the teacher's logit *relations*, not their
    range. The std uses Bessel's correction and ``1e-7`` guards a constant row, as in the authors' code (the
    paper writes the 1/K form: a factor ``sqrt(K / (K - 1))`` in the effective temperature, 1.005 at K = 100).
    """
    two_classes = "to be standardised"
    return _checked_term(_lskd, student_logits, teacher_logits, reduction, two_classes, temperature=temperature)
