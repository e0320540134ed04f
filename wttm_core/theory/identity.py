"""The KD/TTM identity: Eqs. 11-15 one checkable step at a time, the lambda <-> beta map of Eq. 19 and the full
per-sample objectives of Eqs. 1-2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from wttm_core._checks import check_labels, check_logit_pair, check_scalar
from wttm_core.functional import (
    kd_loss,
    kd_ttm_decomposition,
    log_power_sum,
    log_power_transform,
    renyi_entropy,
    shannon_entropy,
    transformed_teacher_log_probs,
    ttm_loss,
)
from wttm_core.theory._common import _check_lambda, _f64

__all__ = [
    "DerivationStep",
    "beta_from_lambda",
    "lambda_from_beta",
    "kd_objective",
    "ttm_objective",
    "derivation_steps",
    "eq15_terms",
    "decomposition_over_temperature",
]


def beta_from_lambda(lam: float, temperature: float) -> float:
    """TTM's ``beta`` that matches KD's ``lambda`` at temperature ``T`` (Eq. 19): ``beta = lambda T / (1 - lambda)``.

    With this ``beta``, ``L_TTM = [L_KD - lambda T (T - 1) H_{1/T}(q)] / (1 - lambda) + const``.
    Example (Fig. 1): ``T = 4, lambda = 0.9`` gives ``beta = 36``.
    """
    lam = check_scalar("lam", lam)
    temperature = check_scalar("temperature", temperature)
    if lam >= 1.0:
        raise ValueError(f"lam must lie in (0, 1) (beta is infinite at lam = 1), got {lam}")
    return lam * temperature / (1.0 - lam)


def lambda_from_beta(beta: float, temperature: float) -> float:
    """Inverse of :func:`beta_from_lambda` (Eq. 19): ``lambda = beta / (T + beta)``."""
    beta = check_scalar("beta", beta)
    temperature = check_scalar("temperature", temperature)
    return beta / (temperature + beta)


def _cross_entropy(labels: Tensor, log_q: Tensor) -> Tensor:
    return -log_q.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def kd_objective(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, lam: float, temperature: float
) -> Tensor:
    """Per-sample KD objective (Eq. 1): ``(1 - lambda) H(y, q) + lambda T^2 D(p^t_T || q_T)``, ``[N]`` float64.

    Differentiable in ``student_logits`` (autograd reaches them); the teacher is treated as a constant.
    """
    lam = _check_lambda(lam)
    check_logit_pair(student_logits, teacher_logits)
    labels = check_labels(labels, student_logits).long()
    z = student_logits.to(torch.float64)  # not detached: the objective is differentiable in the student
    ce = _cross_entropy(labels, torch.log_softmax(z, dim=-1))
    return (1.0 - lam) * ce + lam * kd_loss(z, teacher_logits, temperature, reduction="none")


def ttm_objective(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, beta: float, gamma: float) -> Tensor:
    """Per-sample TTM objective (Eq. 2): ``H(y, q) + beta D(p^t_T || q)``, ``T = 1 / gamma``, ``[N]`` float64.

    Differentiable in ``student_logits``; the teacher is treated as a constant.
    """
    beta = check_scalar("beta", beta, allow_zero=True)
    check_logit_pair(student_logits, teacher_logits)
    labels = check_labels(labels, student_logits).long()
    z = student_logits.to(torch.float64)  # not detached: the objective is differentiable in the student
    ce = _cross_entropy(labels, torch.log_softmax(z, dim=-1))
    return ce + beta * ttm_loss(z, teacher_logits, gamma, reduction="none")


@dataclass(frozen=True)
class DerivationStep:
    """One equality of the derivation, evaluated two independent ways on a batch (``lhs``, ``rhs``: ``[N]``)."""

    name: str
    equation: str
    lhs: Tensor
    rhs: Tensor

    @property
    def residual(self) -> float:
        """Largest absolute difference between the two sides over the batch."""
        return float((self.lhs - self.rhs).abs().max())


def _derivation_routes(z: Tensor, v: Tensor, temperature: float) -> dict[str, Tensor]:
    """The quantities of :func:`derivation_steps` computed directly from their definitions (not via Eq. 15)."""
    gamma = 1.0 / temperature
    p = transformed_teacher_log_probs(v, gamma).exp()
    log_q = torch.log_softmax(z, dim=-1)
    log_qt = torch.log_softmax(z / temperature, dim=-1)
    return {
        "h_p": shannon_entropy(p),
        "ce_p_qt": -(p * log_qt).sum(-1),
        "ce_p_q": -(p * log_q).sum(-1),
        "log_u": log_power_sum(log_q, gamma),
        "renyi": renyi_entropy(log_q.exp(), gamma),
        "row_gap": (log_qt - log_power_transform(log_q, gamma)).abs().amax(-1),
    }


def derivation_steps(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> list[DerivationStep]:
    """The derivation of Eq. 15 from Eqs. 11-14 as a list of equalities, each side computed by a different route.

    All in float64. With ``p = p^t_T``, ``gamma = 1 / T``:

    1. KL as cross-entropy minus entropy: ``D(p || q_T) = H(p, q_T) - H(p)``.
    2. Temperature scaling is a power transform (Eqs. 8-9): ``log q_T = gamma log q - log U_gamma(q)``
       (compared element-wise; the row's largest difference is reported).
    3. Hence the cross-entropy splits: ``H(p, q_T) = gamma H(p, q) + log U_gamma(q)``.
    4. The power sum is a Renyi entropy (Eqs. 4, 22): ``log U_gamma(q) = (1 - gamma) H_gamma(q)``.
    5. Cross-entropy is entropy plus KL: ``H(p, q) = H(p) + D(p || q)``.
    6. Eq. 14: ``D(p || q_T) = gamma D(p || q) + (1 - gamma) H_gamma(q) - (1 - gamma) H(p)``.
    7. Eq. 15: ``D(p || q) = T D(p || q_T) - (T - 1) H_gamma(q) + (T - 1) H(p)``.
    """
    temperature = check_scalar("temperature", temperature)
    check_logit_pair(student_logits, teacher_logits)
    z, v = _f64(student_logits), _f64(teacher_logits)
    gamma = 1.0 / temperature
    terms = kd_ttm_decomposition(z, v, temperature)  # ttm = D(p||q), kd = D(p||q_T), renyi, teacher_entropy
    r = _derivation_routes(z, v, temperature)
    return [
        DerivationStep(
            "KL = cross-entropy − entropy", "D(p‖q_T) = H(p, q_T) − H(p)", terms["kd"], r["ce_p_qt"] - r["h_p"]
        ),
        DerivationStep(
            "temperature = power transform (Eqs. 8-9)",
            "log q_T = γ log q − log U_γ(q)",
            r["row_gap"],
            torch.zeros_like(r["row_gap"]),
        ),
        DerivationStep(
            "cross-entropy splits",
            "H(p, q_T) = γ H(p, q) + log U_γ(q)",
            r["ce_p_qt"],
            gamma * r["ce_p_q"] + r["log_u"],
        ),
        DerivationStep(
            "power sum is a Rényi entropy (Eqs. 4, 22)",
            "log U_γ(q) = (1−γ) H_γ(q)",
            r["log_u"],
            (1.0 - gamma) * r["renyi"],
        ),
        DerivationStep("cross-entropy = entropy + KL", "H(p, q) = H(p) + D(p‖q)", r["ce_p_q"], r["h_p"] + terms["ttm"]),
        DerivationStep(
            "Eq. 14",
            "D(p‖q_T) = γ D(p‖q) + (1−γ) H_γ(q) − (1−γ) H(p)",
            terms["kd"],
            gamma * terms["ttm"] + (1.0 - gamma) * terms["renyi"] - (1.0 - gamma) * terms["teacher_entropy"],
        ),
        DerivationStep(
            "Eq. 15",
            "D(p‖q) = T D(p‖q_T) − (T−1) H_γ(q) + (T−1) H(p)",
            terms["ttm"],
            _eq15_rhs(terms, temperature),
        ),
    ]


def _eq15_rhs(terms: dict[str, Tensor], temperature: float) -> Tensor:
    t = temperature
    return t * terms["kd"] - (t - 1.0) * terms["renyi"] + (t - 1.0) * terms["teacher_entropy"]


def eq15_terms(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> dict[str, Tensor]:
    """The core's Eq. 15 decomposition in float64, plus its right-hand side and residual (all ``[N]``).

    Keys: ``"ttm"``, ``"kd"``, ``"renyi"``, ``"teacher_entropy"`` (see
    :func:`wttm_core.functional.kd_ttm_decomposition`), ``"rhs"`` = ``T kd - (T-1) renyi + (T-1) teacher_entropy``
    and ``"residual"`` = ``ttm - rhs``.
    """
    check_logit_pair(student_logits, teacher_logits)
    terms = kd_ttm_decomposition(_f64(student_logits), _f64(teacher_logits), temperature)
    rhs = _eq15_rhs(terms, float(temperature))
    return {**terms, "rhs": rhs, "residual": terms["ttm"] - rhs}


def decomposition_over_temperature(
    student_logits: Tensor, teacher_logits: Tensor, temperatures: Sequence[float] | Tensor
) -> dict[str, Tensor]:
    """Batch means of the weighted terms of Eq. 15 for each temperature, each ``[len(temperatures)]``.

    Keys: ``"kd"`` = ``T D(p^t_T || q_T)``, ``"renyi"`` = ``(T - 1) H_{1/T}(q)`` (the term TTM subtracts, i.e. the
    Renyi entropy it rewards), ``"teacher"`` = ``(T - 1) H(p^t_T)`` (constant in the student) and ``"ttm"`` =
    ``D(p^t_T || q) = kd - renyi + teacher``.
    """
    check_logit_pair(student_logits, teacher_logits)
    temps = [check_scalar("temperatures", float(t)) for t in torch.as_tensor(temperatures).flatten().tolist()]
    if not temps:
        raise ValueError("temperatures must not be empty")
    z, v = _f64(student_logits), _f64(teacher_logits)
    out: dict[str, list[float]] = {"kd": [], "renyi": [], "teacher": [], "ttm": []}
    for t in temps:
        terms = kd_ttm_decomposition(z, v, t)
        out["kd"].append(float((t * terms["kd"]).mean()))
        out["renyi"].append(float(((t - 1.0) * terms["renyi"]).mean()))
        out["teacher"].append(float(((t - 1.0) * terms["teacher_entropy"]).mean()))
        out["ttm"].append(float(terms["ttm"].mean()))
    return {k: torch.tensor(vals, dtype=torch.float64) for k, vals in out.items()}
