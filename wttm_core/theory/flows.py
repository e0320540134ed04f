"""Toy gradient flows of free per-sample student logits under KD, TTM and WTTM (Eqs. 20-21, 23)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from wttm_core._checks import check_int, check_logit_pair, check_logits, check_scalar
from wttm_core.functional import kd_grad, kd_ttm_decomposition, shannon_entropy, ttm_grad, wttm_grad, wttm_weights
from wttm_core.theory._common import _f64

__all__ = ["FLOW_METHODS", "FlowResult", "gradient_flow", "probability_velocity"]

FLOW_METHODS = ("kd", "ttm", "wttm")


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
    steps = check_int("steps", steps, low=0)
    record_every = check_int("record_every", record_every, low=1)
    lr = check_scalar("lr", lr)
    check_logits("teacher_logits", teacher_logits)
    v = _f64(teacher_logits)
    z = torch.zeros_like(v) if student_logits is None else _f64(check_logit_pair(student_logits, v)[0]).clone()
    step_grad = _flow_step(method, v, temperature, normalize_weights)
    path, recorded = [z], [0]
    for step in range(1, steps + 1):
        z = z - lr * step_grad(z)
        if step % record_every == 0 or step == steps:
            path.append(z)
            recorded.append(step)
    return _flow_result(method, temperature, v, path, recorded, record_probs)


def _flow_step(method: str, v: Tensor, temperature: float, normalize_weights: bool) -> Callable[[Tensor], Tensor]:
    """The logit gradient of ``method``'s term as a function of the student logits (Eqs. 20, 21, 23)."""
    gamma = 1.0 / temperature
    if method == "kd":
        return lambda z: kd_grad(z, v, temperature)
    if method == "ttm":
        return lambda z: ttm_grad(z, v, gamma)
    scale = (1.0 / wttm_weights(v, gamma).mean()).item() if normalize_weights else None
    if scale is None:
        return lambda z: wttm_grad(z, v, gamma)
    return lambda z: wttm_grad(z, v, gamma) * scale


def _flow_result(
    method: str, temperature: float, v: Tensor, path: list[Tensor], recorded: list[int], record_probs: bool
) -> FlowResult:
    """Entropy, TTM divergence and tempered KD divergence at the recorded steps, evaluated in one batched call."""
    logits = torch.stack(path)  # [R, N, K] -> [R * N, K] for the decomposition
    rows = len(recorded)
    terms = kd_ttm_decomposition(logits.reshape(-1, v.shape[-1]), v.repeat(rows, 1), temperature)
    probs = torch.softmax(logits, dim=-1)
    return FlowResult(
        method=method,
        temperature=temperature,
        steps=torch.tensor(recorded),
        entropy=shannon_entropy(probs),
        divergence=terms["ttm"].reshape(rows, -1),
        tempered_divergence=terms["kd"].reshape(rows, -1),
        final_logits=path[-1],
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
