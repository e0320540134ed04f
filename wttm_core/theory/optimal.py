"""Per-sample optimal students: CE + beta TTM in closed form, KD (Eq. 1) by Newton's method."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wttm_core._checks import check_int, check_labels, check_logits, check_scalar
from wttm_core.functional import kd_grad, kd_loss, transformed_teacher_log_probs
from wttm_core.theory._common import _check_lambda, _f64

__all__ = ["optimal_student_ttm", "optimal_student_kd", "sharpness_profile"]


def optimal_student_ttm(teacher_logits: Tensor, labels: Tensor, beta: float, gamma: float) -> Tensor:
    """The student distribution minimising ``H(y, q) + beta D(p^t_T || q)`` per sample (Eq. 2), ``[N, K]`` float64.

    Both terms are cross-entropies against ``q`` up to constants, so the minimiser is their normalised mixture
    ``q* = (y + beta p^t_T) / (1 + beta)`` - the label smoothed by the transformed teacher.
    """
    beta = check_scalar("beta", beta, allow_zero=True)
    check_logits("teacher_logits", teacher_logits)
    labels = check_labels(labels, teacher_logits).long()
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
    max_iter = check_int("max_iter", max_iter, low=1)
    tol = check_scalar("tol", tol)
    check_logits("teacher_logits", teacher_logits)
    n, k = teacher_logits.shape
    labels = check_labels(labels, teacher_logits).long()
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


def _golden_minimum(f, lo: float, hi: float, iterations: int = 80) -> float:
    """The minimiser of a unimodal ``f`` on ``[lo, hi]`` by golden-section search."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def sharpness_profile(
    teacher_logits: Tensor, label: int, temperature: float, beta: float, scales: Tensor
) -> dict[str, Tensor | float]:
    """KD's and TTM's objectives for one sample along a line of student sharpness, with each one's minimiser.

    The student is ``z = s v``: the teacher's own logit pattern at sharpness ``s`` (``s = 1`` is the teacher,
    ``s = 1/T`` gives ``q = p^t_T``, small ``s`` a flat student). KD uses ``lambda = beta / (T + beta)``, the value
    Eq. 19 pairs with ``beta``, and is divided by ``1 - lambda`` so that the two objectives differ only by the Renyi
    term and a constant (Eq. 19). Both objectives are convex in ``z``, hence unimodal in ``s``; the minimisers are
    found by golden-section search on ``log s`` in ``[1e-3, 1e3]``.

    Returns ``"scales"``, ``"kd"``, ``"ttm"`` (objective minus its minimum over the search, ``[S]``),
    ``"kd_best"``, ``"ttm_best"`` (the minimising ``s``) and ``"lam"``.
    """
    temperature = check_scalar("temperature", temperature)
    beta = check_scalar("beta", beta)
    check_logits("teacher_logits", teacher_logits.unsqueeze(0) if teacher_logits.dim() == 1 else teacher_logits)
    v = _f64(teacher_logits).reshape(1, -1)
    y = torch.nn.functional.one_hot(torch.tensor([int(label)]), v.shape[-1]).to(torch.float64)
    lam = beta / (temperature + beta)
    p_t = transformed_teacher_log_probs(v, 1.0 / temperature).exp()

    def kd(s: float) -> float:
        return float(_kd_objective_value(s * v, v, y, lam, temperature)[0]) / (1.0 - lam)

    def ttm(s: float) -> float:
        log_q = torch.log_softmax(s * v, dim=-1)
        return float(-(y * log_q).sum() + beta * (p_t * (p_t.log() - log_q)).sum())

    best = {
        name: math.exp(_golden_minimum(lambda u, f=f: f(math.exp(u)), -3 * math.log(10), 3 * math.log(10)))
        for name, f in (("kd", kd), ("ttm", ttm))
    }
    s = _f64(scales).flatten()
    out: dict[str, Tensor | float] = {"scales": s, "lam": lam}
    for name, f in (("kd", kd), ("ttm", ttm)):
        floor = f(best[name])
        out[name] = torch.tensor([f(float(x)) - floor for x in s], dtype=torch.float64)
        out[f"{name}_best"] = best[name]
    return out
