"""Theory helpers for the notebooks, built on :mod:`wttm_core.functional`.

Everything here is pure maths on tensors (float64 unless said otherwise) and cites the equations of Zheng & Yang,
"Knowledge Distillation Based on Transformed Teacher Matching" (ICLR 2024):

- the step-by-step derivation of the KD/TTM identity (Eqs. 11-15), each step checkable on its own;
- the lambda <-> beta correspondence of Eq. 19 and the full per-sample KD (Eq. 1) and TTM (Eq. 2) objectives;
- the per-sample optimal students of CE + beta TTM (closed form) and of KD (Newton's method);
- toy gradient flows of free student logits under KD, TTM and WTTM (Eqs. 20-21, 23);
- the probability-simplex geometry of the 3-class view, Renyi curves (Eq. 4), point-wise maps (Fig. 4);
- a seeded generative model of CIFAR-like teacher logits, for notebooks that have no trained teacher.

Notation: teacher logits ``v``, student logits ``z``, ``p^t = softmax(v)``, ``q = softmax(z)``, temperature ``T``,
``gamma = 1 / T``, ``p^t_T = softmax(v / T)``, ``q_T = softmax(z / T)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from wttm_core._checks import check_logit_pair, check_logits, check_scalar
from wttm_core.functional import (
    kd_grad,
    kd_loss,
    kd_ttm_decomposition,
    log_power_sum,
    log_power_transform,
    renyi_entropy,
    shannon_entropy,
    transformed_teacher_log_probs,
    ttm_grad,
    ttm_loss,
    wttm_grad,
    wttm_weights,
)

__all__ = [
    "DerivationStep",
    "FlowResult",
    "FLOW_METHODS",
    "SIMPLEX_VERTICES",
    "beta_from_lambda",
    "lambda_from_beta",
    "derivation_steps",
    "eq15_terms",
    "decomposition_over_temperature",
    "kd_objective",
    "ttm_objective",
    "optimal_student_ttm",
    "optimal_student_kd",
    "gradient_flow",
    "probability_velocity",
    "simplex_xy",
    "renyi_curve",
    "pointwise_map_properties",
    "sample_teacher_logits",
]

FLOW_METHODS = ("kd", "ttm", "wttm")

# Corners of the equilateral triangle used to draw a 3-class distribution: class 0 bottom left, class 1 bottom
# right, class 2 on top. A distribution p maps to the point p @ SIMPLEX_VERTICES (barycentric coordinates).
SIMPLEX_VERTICES = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]], dtype=torch.float64)


# --------------------------------------------------------------------------------------------------------------
# Small validation helpers
# --------------------------------------------------------------------------------------------------------------


def _f64(x: Tensor) -> Tensor:
    return x.detach().to(torch.float64)


def _check_labels(labels: object, batch: int, num_classes: int) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    if batch and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.long()


def _check_lambda(lam: object) -> float:
    lam = check_scalar("lam", lam)
    if lam > 1.0:
        raise ValueError(f"lam must lie in (0, 1], got {lam}")
    return lam


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


# --------------------------------------------------------------------------------------------------------------
# Eq. 19: the lambda <-> beta correspondence, and the full objectives of Eqs. 1-2
# --------------------------------------------------------------------------------------------------------------


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
    labels = _check_labels(labels, *student_logits.shape)
    z = student_logits.to(torch.float64)  # not detached: the objective is differentiable in the student
    ce = _cross_entropy(labels, torch.log_softmax(z, dim=-1))
    return (1.0 - lam) * ce + lam * kd_loss(z, teacher_logits, temperature, reduction="none")


def ttm_objective(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, beta: float, gamma: float) -> Tensor:
    """Per-sample TTM objective (Eq. 2): ``H(y, q) + beta D(p^t_T || q)``, ``T = 1 / gamma``, ``[N]`` float64.

    Differentiable in ``student_logits``; the teacher is treated as a constant.
    """
    beta = check_scalar("beta", beta, allow_zero=True)
    check_logit_pair(student_logits, teacher_logits)
    labels = _check_labels(labels, *student_logits.shape)
    z = student_logits.to(torch.float64)  # not detached: the objective is differentiable in the student
    ce = _cross_entropy(labels, torch.log_softmax(z, dim=-1))
    return ce + beta * ttm_loss(z, teacher_logits, gamma, reduction="none")


# --------------------------------------------------------------------------------------------------------------
# Eqs. 11-15: the KD/TTM identity, one checkable step at a time
# --------------------------------------------------------------------------------------------------------------


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
    log_p = transformed_teacher_log_probs(v, gamma)
    p = log_p.exp()
    log_q = torch.log_softmax(z, dim=-1)
    log_qt = torch.log_softmax(z / temperature, dim=-1)
    q = log_q.exp()
    h_p = shannon_entropy(p)
    ce_p_qt = -(p * log_qt).sum(-1)
    ce_p_q = -(p * log_q).sum(-1)
    log_u = log_power_sum(log_q, gamma)
    renyi = renyi_entropy(q, gamma)
    log_qt_as_power = log_power_transform(log_q, gamma)
    row_gap = (log_qt - log_qt_as_power).abs().amax(-1)
    return [
        DerivationStep("KL = cross-entropy - entropy", "D(p||q_T) = H(p,q_T) - H(p)", terms["kd"], ce_p_qt - h_p),
        DerivationStep(
            "temperature = power transform (Eqs. 8-9)",
            "log q_T = gamma log q - log U_gamma(q)",
            row_gap,
            torch.zeros_like(row_gap),
        ),
        DerivationStep(
            "cross-entropy splits", "H(p,q_T) = gamma H(p,q) + log U_gamma(q)", ce_p_qt, gamma * ce_p_q + log_u
        ),
        DerivationStep(
            "power sum is a Renyi entropy (Eqs. 4, 22)",
            "log U_gamma(q) = (1-gamma) H_gamma(q)",
            log_u,
            (1.0 - gamma) * renyi,
        ),
        DerivationStep("cross-entropy = entropy + KL", "H(p,q) = H(p) + D(p||q)", ce_p_q, h_p + terms["ttm"]),
        DerivationStep(
            "Eq. 14",
            "D(p||q_T) = gamma D(p||q) + (1-gamma) H_gamma(q) - (1-gamma) H(p)",
            terms["kd"],
            gamma * terms["ttm"] + (1.0 - gamma) * terms["renyi"] - (1.0 - gamma) * terms["teacher_entropy"],
        ),
        DerivationStep(
            "Eq. 15",
            "D(p||q) = T D(p||q_T) - (T-1) H_gamma(q) + (T-1) H(p)",
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


# --------------------------------------------------------------------------------------------------------------
# Per-sample optimal students
# --------------------------------------------------------------------------------------------------------------


def optimal_student_ttm(teacher_logits: Tensor, labels: Tensor, beta: float, gamma: float) -> Tensor:
    """The student distribution minimising ``H(y, q) + beta D(p^t_T || q)`` per sample (Eq. 2), ``[N, K]`` float64.

    Both terms are cross-entropies against ``q`` up to constants, so the minimiser is their normalised mixture
    ``q* = (y + beta p^t_T) / (1 + beta)`` - the label smoothed by the transformed teacher.
    """
    beta = check_scalar("beta", beta, allow_zero=True)
    check_logits("teacher_logits", teacher_logits)
    labels = _check_labels(labels, *teacher_logits.shape)
    p = transformed_teacher_log_probs(_f64(teacher_logits), gamma).exp()
    y = torch.nn.functional.one_hot(labels, teacher_logits.shape[-1]).to(torch.float64)
    return (y + beta * p) / (1.0 + beta)


def _kd_objective_value(z: Tensor, v: Tensor, y: Tensor, lam: float, temperature: float) -> Tensor:
    """The per-sample KD objective of Eq. 1 with a one-hot (or soft) label ``y`` given as a distribution."""
    ce = -(y * torch.log_softmax(z, dim=-1)).sum(-1)
    return (1.0 - lam) * ce + lam * kd_loss(z, v, temperature, reduction="none")


def _kd_objective_grad_hess(z: Tensor, v: Tensor, y: Tensor, lam: float, temperature: float) -> tuple[Tensor, Tensor]:
    """Gradient and Hessian (w.r.t. ``z``) of :func:`_kd_objective_value`."""
    q = torch.softmax(z, dim=-1)
    qt = torch.softmax(z / temperature, dim=-1)
    grad = (1.0 - lam) * (q - y) + lam * kd_grad(z, v, temperature)  # Eq. 21 with KD's T^2
    # d/dz of softmax(z) is diag(q) - q q^T; d/dz of T softmax(z / T) is diag(q_T) - q_T q_T^T.
    hess = (1.0 - lam) * (torch.diag_embed(q) - q.unsqueeze(-1) * q.unsqueeze(-2))
    hess = hess + lam * (torch.diag_embed(qt) - qt.unsqueeze(-1) * qt.unsqueeze(-2))
    return grad, hess


_MAX_NEWTON_STEP = 8.0


def _newton_direction(hess: Tensor, grad: Tensor) -> Tensor:
    """Solve ``hess @ step = grad`` per sample (pseudo-inverse where ``hess`` is numerically singular), with the
    step's largest entry capped at ``_MAX_NEWTON_STEP`` so that no iterate jumps into softmax saturation."""
    step, info = torch.linalg.solve_ex(hess, grad.unsqueeze(-1))
    step = step.squeeze(-1)
    bad = info != 0
    if bool(bad.any()):
        step[bad] = (torch.linalg.pinv(hess[bad]) @ grad[bad].unsqueeze(-1)).squeeze(-1)
    size = step.abs().amax(-1, keepdim=True)
    return step * torch.clamp(_MAX_NEWTON_STEP / size.clamp_min(1e-300), max=1.0)


def optimal_student_kd(
    teacher_logits: Tensor,
    labels: Tensor,
    lam: float,
    temperature: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-12,
) -> Tensor:
    """The student distribution minimising KD's ``(1 - lambda) H(y, q) + lambda T^2 D(p^t_T || q_T)`` (Eq. 1).

    There is no closed form; the objective is strictly convex in the logits up to a common shift, so a damped
    Newton method in float64 (started from the teacher's logits, the ``lambda = 1`` solution) converges in a few
    iterations. Returns ``q* = softmax(z*)``, ``[N, K]`` float64; raises ``RuntimeError`` if the largest gradient
    entry is still above ``tol`` after ``max_iter`` iterations. ``lam`` must lie in ``(0, 1]``: with ``lam = 0``
    the optimum is the one-hot label at infinite logits.
    """
    lam = _check_lambda(lam)
    temperature = check_scalar("temperature", temperature)
    max_iter = _check_int("max_iter", max_iter, 1)
    tol = check_scalar("tol", tol)
    check_logits("teacher_logits", teacher_logits)
    n, k = teacher_logits.shape
    labels = _check_labels(labels, n, k)
    v = _f64(teacher_logits)
    y = torch.nn.functional.one_hot(labels, k).to(torch.float64)
    # Start from the mixture (1 - lambda) y + lambda p^t: exact at T = 1 and at lambda = 1, close in between.
    log_y = torch.where(y > 0, 0.0, -math.inf).to(torch.float64)
    z = torch.logaddexp(math.log1p(-lam) + log_y, math.log(lam) + torch.log_softmax(v, dim=-1)) if lam < 1 else v
    z = z - z.mean(-1, keepdim=True)
    gauge = torch.full((k, k), 1.0 / k, dtype=torch.float64)  # fixes the free shift z -> z + c
    for _ in range(max_iter):
        grad, hess = _kd_objective_grad_hess(z, v, y, lam, temperature)
        active = grad.abs().amax(-1) > tol
        if not bool(active.any()):
            return torch.softmax(z, dim=-1)
        step = _newton_direction(hess + gauge, grad)
        value = _kd_objective_value(z, v, y, lam, temperature)
        slope = (grad * step).sum(-1)
        t = torch.ones(n, dtype=torch.float64)
        accepted = ~active
        for _ in range(40):  # backtracking line search (Armijo), vectorised over the batch
            trial_value = _kd_objective_value(z - t.unsqueeze(-1) * step, v, y, lam, temperature)
            # Close to the optimum the decrease drowns in rounding; Newton's full step is then safe (quadratic
            # convergence), so it is accepted without the Armijo test.
            ok = (trial_value <= value - 1e-4 * t * slope) | (grad.abs().amax(-1) < 1e-6)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = torch.where(accepted, t, t / 2)
        z = torch.where(active.unsqueeze(-1), z - t.unsqueeze(-1) * step, z)
        z = z - z.mean(-1, keepdim=True)
    grad, _ = _kd_objective_grad_hess(z, v, y, lam, temperature)
    worst = float(grad.abs().max())
    if worst > tol:
        raise RuntimeError(f"optimal_student_kd did not converge in {max_iter} iterations (gradient {worst:.3g})")
    return torch.softmax(z, dim=-1)


# --------------------------------------------------------------------------------------------------------------
# Toy gradient flows of free student logits
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowResult:
    """Records of a gradient flow at the step indices ``steps`` (``[R]``); the other records are ``[R, N]``.

    ``entropy`` = ``H(q)``, ``divergence`` = ``D(p^t_T || q)`` (what TTM and WTTM minimise),
    ``tempered_divergence`` = ``D(p^t_T || q_T)`` (what KD minimises), ``probs`` = ``q`` (``[R, N, K]``) when
    recorded, ``final_logits`` = the student logits after the last step.
    """

    method: str
    temperature: float
    steps: Tensor
    entropy: Tensor
    divergence: Tensor
    tempered_divergence: Tensor
    final_logits: Tensor
    probs: Tensor | None = None


def gradient_flow(
    teacher_logits: Tensor,
    method: str,
    temperature: float,
    *,
    steps: int = 200,
    lr: float = 0.5,
    student_logits: Tensor | None = None,
    normalize_weights: bool = False,
    record_probs: bool = False,
    record_every: int = 1,
) -> FlowResult:
    """Gradient descent of free per-sample student logits on one distillation term, without cross-entropy.

    ``method`` is ``"kd"`` (step ``T (q_T - p^t_T)``, Eq. 21 with KD's ``T^2``), ``"ttm"`` (step ``q - p^t_T``,
    Eq. 20) or ``"wttm"`` (step ``U_{1/T}(p^t) (q - p^t_T)``, Eqs. 20 and 23). ``normalize_weights`` divides the WTTM
    weights by their batch mean (the paper's Fig. 1 uses ``beta = 36 / mean U``), so WTTM and TTM take the same
    average step. KD drives ``q_T`` to ``p^t_T`` (so ``q`` to the untempered teacher ``p^t``); TTM drives ``q`` itself
    to the smoother ``p^t_T``. The student starts from ``student_logits`` (default: zeros, the uniform ``q``).
    Records are taken every ``record_every`` steps and after the last step.
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"method must be one of {FLOW_METHODS}, got {method!r}")
    temperature = check_scalar("temperature", temperature)
    steps = _check_int("steps", steps, 0)
    record_every = _check_int("record_every", record_every, 1)
    lr = check_scalar("lr", lr)
    check_logits("teacher_logits", teacher_logits)
    v = _f64(teacher_logits)
    z = torch.zeros_like(v) if student_logits is None else _f64(check_logit_pair(student_logits, v)[0]).clone()
    gamma = 1.0 / temperature
    scale = None
    if method == "wttm" and normalize_weights:
        weights = wttm_weights(v, gamma)
        scale = (1.0 / weights.mean()).item()

    path, recorded = [z], [0]
    for step in range(1, steps + 1):
        if method == "kd":
            grad = kd_grad(z, v, temperature)
        elif method == "ttm":
            grad = ttm_grad(z, v, gamma)
        else:
            grad = wttm_grad(z, v, gamma)
            if scale is not None:
                grad = grad * scale
        z = z - lr * grad
        if step % record_every == 0 or step == steps:
            path.append(z)
            recorded.append(step)
    # Evaluate the recorded steps in one batched call: [R, N, K] -> [R * N, K].
    logits = torch.stack(path)
    rows = len(recorded)
    terms = kd_ttm_decomposition(logits.reshape(-1, v.shape[-1]), v.repeat(rows, 1), temperature)
    probs = torch.softmax(logits, dim=-1)
    entropy = shannon_entropy(probs)
    divergence = terms["ttm"].reshape(rows, -1)
    tempered = terms["kd"].reshape(rows, -1)
    return FlowResult(
        method=method,
        temperature=temperature,
        steps=torch.tensor(recorded),
        entropy=entropy,
        divergence=divergence,
        tempered_divergence=tempered,
        final_logits=z,
        probs=probs if record_probs else None,
    )


def probability_velocity(student_logits: Tensor, logit_grad: Tensor) -> Tensor:
    """How ``q = softmax(z)`` moves under a gradient-descent step ``dz = -logit_grad``: ``dq = -(diag q - q q^T) g``.

    The result sums to zero along the class dimension, so for 3 classes it is a direction in the simplex plane
    (draw it with :func:`simplex_xy`).
    """
    check_logit_pair(student_logits, logit_grad)
    q = torch.softmax(_f64(student_logits), dim=-1)
    g = _f64(logit_grad)
    return -(q * g - q * (q * g).sum(-1, keepdim=True))


# --------------------------------------------------------------------------------------------------------------
# Geometry and curves for the figures
# --------------------------------------------------------------------------------------------------------------


def simplex_xy(p: Tensor) -> Tensor:
    """Map 3-class distributions (or zero-sum directions) ``[..., 3]`` to plane coordinates ``[..., 2]``.

    Linear (barycentric): ``p @ SIMPLEX_VERTICES``; one-hot vectors land on the triangle's corners.
    """
    if not isinstance(p, Tensor):
        raise TypeError(f"p must be a torch.Tensor, got {type(p).__name__}")
    if p.dim() == 0 or p.shape[-1] != 3:
        raise ValueError(f"p must have 3 entries in its last dimension, got shape {tuple(p.shape)}")
    return _f64(p) @ SIMPLEX_VERTICES


def renyi_curve(p: Tensor, alphas: Sequence[float] | Tensor) -> Tensor:
    """Renyi entropies ``H_alpha(p)`` (Eq. 4) for each order in ``alphas``, float64.

    ``p`` is one distribution ``[K]`` (result ``[len(alphas)]``) or a batch ``[M, K]`` (result
    ``[M, len(alphas)]``). Non-increasing in ``alpha``: ``log K`` (support size) at 0, Shannon at 1,
    ``-log max p`` as ``alpha -> inf``.
    """
    if not isinstance(p, Tensor) or p.dim() not in (1, 2):
        raise ValueError("p must be a tensor holding one distribution [K] or a batch [M, K]")
    alpha_list = torch.as_tensor(alphas, dtype=torch.float64).flatten().tolist()
    if not alpha_list:
        raise ValueError("alphas must not be empty")
    p64 = _f64(p)
    return torch.stack([renyi_entropy(p64, a) for a in alpha_list], dim=-1)


def pointwise_map_properties(f: Callable[[Tensor], Tensor], points: int = 1001) -> dict[str, bool]:
    """Check what a good smoothing map ``f`` of Eq. 6 needs (Fig. 4) on a grid of ``[0, 1]``.

    Returns ``{"f(0)=0", "f(1)=1", "non-decreasing", "f(p)>p"}`` -> bool; ``f(p) > p`` is tested on the open
    interval. The power map ``p^gamma`` with ``0 < gamma < 1`` satisfies all four.
    """
    points = _check_int("points", points, 3)
    grid = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    values = f(grid)
    if not isinstance(values, Tensor) or values.shape != grid.shape:
        raise ValueError("f must map a 1-D tensor to a tensor of the same shape")
    values = _f64(values)
    return {
        "f(0)=0": bool(abs(float(values[0])) <= 1e-12),
        "f(1)=1": bool(abs(float(values[-1]) - 1.0) <= 1e-12),
        "non-decreasing": bool((values[1:] >= values[:-1] - 1e-12).all()),
        "f(p)>p": bool((values[1:-1] > grid[1:-1]).all()),
    }


# --------------------------------------------------------------------------------------------------------------
# A generative model of CIFAR-like teacher outputs
# --------------------------------------------------------------------------------------------------------------


def sample_teacher_logits(
    n: int,
    num_classes: int = 100,
    *,
    num_superclasses: int = 20,
    confidence: float = 9.0,
    confidence_spread: float = 0.5,
    sibling_weight: float = 0.45,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Sample ``n`` realistic teacher outputs: logits ``[n, K]`` float32 and the true labels ``[n]`` int64.

    A seeded stand-in for a trained CIFAR-100 teacher, not a network: every sample has a true class ``y`` and a
    confidence scale ``s`` drawn log-normally (median ``confidence``, log-spread ``confidence_spread``); its logits
    are ``s`` on ``y``, ``s * sibling_weight`` on the other classes of ``y``'s superclass (consecutive blocks of
    ``K / num_superclasses`` classes, as in CIFAR-100's coarse labels) and Gaussian noise of scale ``noise * s / 4``
    everywhere. The mix of confident and ambiguous samples gives WTTM's weights (Eq. 22) a realistic spread;
    with the defaults the arg-max agrees with ``y`` on about 95% of samples.
    """
    n = _check_int("n", n, 1)
    num_classes = _check_int("num_classes", num_classes, 2)
    num_superclasses = _check_int("num_superclasses", num_superclasses, 1)
    if num_classes % num_superclasses:
        raise ValueError(f"num_classes ({num_classes}) must be a multiple of num_superclasses ({num_superclasses})")
    confidence = check_scalar("confidence", confidence)
    confidence_spread = check_scalar("confidence_spread", confidence_spread, allow_zero=True)
    sibling_weight = check_scalar("sibling_weight", sibling_weight, allow_zero=True)
    noise = check_scalar("noise", noise, allow_zero=True)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (n,), generator=gen)
    scale = confidence * torch.exp(confidence_spread * torch.randn(n, generator=gen, dtype=torch.float64))
    block = num_classes // num_superclasses
    superclass = torch.arange(num_classes) // block
    siblings = (superclass.unsqueeze(0) == (labels // block).unsqueeze(1)).to(torch.float64)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(torch.float64)
    pattern = one_hot + sibling_weight * (siblings - one_hot)
    noise_term = noise / 4.0 * torch.randn(n, num_classes, generator=gen, dtype=torch.float64)
    logits = scale.unsqueeze(1) * (pattern + noise_term)
    return logits.to(torch.float32), labels
