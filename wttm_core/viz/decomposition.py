"""Figures of the KD/TTM identity (Eq. 15), the lambda-beta map (Eq. 19) and the per-sample optimal students."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from wttm_core._checks import check_number
from wttm_core.functional import renyi_entropy, shannon_entropy
from wttm_core.theory import (
    decomposition_over_temperature,
    eq15_terms,
    lambda_from_beta,
    optimal_student_kd,
    optimal_student_ttm,
)
from wttm_core.viz.distributions import distribution_bars_spec
from wttm_core.viz.style import COLORS, FigureSpec, as_array, base_layout
from wttm_core.viz.widgets import readout_table

__all__ = [
    "eq15_waterfall_spec",
    "eq15_waterfall_figure",
    "tradeoff_spec",
    "tradeoff_figure",
    "optimal_students_spec",
    "optimal_students_figure",
    "optimal_students_readout",
]


def _logits(x: Any, name: str) -> torch.Tensor:
    arr = as_array(x, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[-1] < 2:
        raise ValueError(f"{name} must be [K] or [N, K] logits with K >= 2, got shape {arr.shape}")
    return torch.from_numpy(arr)


def eq15_waterfall_spec(student_logits: Any, teacher_logits: Any, temperature: float) -> FigureSpec:
    """Eq. 15 as a waterfall of batch means: ``T D(p^t_T||q_T) - (T-1) H_{1/T}(q) + (T-1) H(p^t_T) = D(p^t_T||q)``."""
    t = float(temperature)
    terms = eq15_terms(_logits(student_logits, "student_logits"), _logits(teacher_logits, "teacher_logits"), t)
    kd = float((t * terms["kd"]).mean())
    renyi = float(((t - 1.0) * terms["renyi"]).mean())
    teacher = float(((t - 1.0) * terms["teacher_entropy"]).mean())
    ttm = float(terms["ttm"].mean())
    trace = {
        "type": "waterfall",
        "name": "Eq. 15 (batch mean)",
        "orientation": "v",
        "measure": ["relative", "relative", "relative", "total"],
        "x": ["T·D(p_T‖q_T)  (KD)", "−(T−1)·H_1/T(q)  (Renyi)", "+(T−1)·H(p_T)  (constant)", "D(p_T‖q)  (TTM)"],
        "y": [kd, -renyi, teacher, ttm],
        "text": [f"{kd:.3f}", f"{-renyi:.3f}", f"{teacher:.3f}", f"{ttm:.3f}"],
        "textposition": "outside",
        "increasing": {"marker": {"color": COLORS["kd"]}},
        "decreasing": {"marker": {"color": COLORS["renyi"]}},
        "totals": {"marker": {"color": COLORS["ttm"]}},
        "connector": {"line": {"color": COLORS["bound"], "dash": "dot"}},
    }
    layout = base_layout(
        f"TTM = KD − Renyi + constant (Eq. 15) at T = {t:.3g}",
        "term of Eq. 15",
        "batch mean (nats)",
        showlegend=False,
    )
    return FigureSpec([trace], layout)


def eq15_waterfall_figure(student_logits: Any, teacher_logits: Any, temperature: float) -> go.Figure:
    """:func:`eq15_waterfall_spec` as a figure."""
    return eq15_waterfall_spec(student_logits, teacher_logits, temperature).to_figure()


@lru_cache(maxsize=16)
def _cached_curves(
    z_bytes: bytes, z_shape: tuple[int, ...], v_bytes: bytes, v_shape: tuple[int, ...], temps: tuple[float, ...]
) -> dict[str, torch.Tensor]:
    """The curves of :func:`tradeoff_spec` depend on the batch only, not on the slider: compute them once."""
    z = torch.frombuffer(bytearray(z_bytes), dtype=torch.float64).reshape(z_shape)
    v = torch.frombuffer(bytearray(v_bytes), dtype=torch.float64).reshape(v_shape)
    return decomposition_over_temperature(z, v, temps)


def tradeoff_spec(
    student_logits: Any,
    teacher_logits: Any,
    temperature: float,
    *,
    temperatures: Sequence[float] | None = None,
) -> FigureSpec:
    """The weighted terms of Eq. 15 (batch means) against T, with the current T marked."""
    temps = as_array(np.linspace(1.0, 10.0, 37) if temperatures is None else temperatures, "temperatures", ndim=1)
    z = _logits(student_logits, "student_logits")
    v = _logits(teacher_logits, "teacher_logits")
    curves = _cached_curves(z.numpy().tobytes(), tuple(z.shape), v.numpy().tobytes(), tuple(v.shape), tuple(temps))
    t = float(temperature)
    here = decomposition_over_temperature(z, v, [t])
    styles = {
        "kd": ("T·D(p_T‖q_T)  (KD term)", COLORS["kd"], "solid"),
        "renyi": ("(T−1)·H_1/T(q)  (Renyi term, subtracted)", COLORS["renyi"], "solid"),
        "teacher": ("(T−1)·H(p_T)  (constant in the student)", COLORS["bound"], "dash"),
        "ttm": ("D(p_T‖q)  (TTM)", COLORS["ttm"], "solid"),
    }
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": temps,
            "y": curves[key].numpy(),
            "mode": "lines",
            "name": name,
            "line": {"color": color, "dash": dash, "width": 3 if key != "teacher" else 2},
        }
        for key, (name, color, dash) in styles.items()
    ]
    traces.append(
        {
            "type": "scatter",
            "x": [t] * 4,
            "y": [float(here[k][0]) for k in styles],
            "mode": "markers",
            "name": f"current T = {t:.3g}",
            "marker": {"color": [styles[k][1] for k in styles], "size": 12, "line": {"color": "black", "width": 1}},
        }
    )
    layout = base_layout(
        "How the KD and Renyi terms trade off as T grows",
        "temperature T",
        "batch mean (nats)",
    )
    return FigureSpec(traces, layout)


def tradeoff_figure(
    student_logits: Any, teacher_logits: Any, temperature: float, *, temperatures: Sequence[float] | None = None
) -> go.Figure:
    """:func:`tradeoff_spec` as a figure."""
    return tradeoff_spec(student_logits, teacher_logits, temperature, temperatures=temperatures).to_figure()


@lru_cache(maxsize=64)
def _optimal_students(
    logits: tuple[float, ...], label: int, temperature: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """p^t, p^t_T, q*_TTM, q*_KD for one sample (cached: the spec and the readout share one Newton solve)."""
    v = torch.tensor([logits], dtype=torch.float64)
    y = torch.tensor([label])
    lam = lambda_from_beta(beta, temperature)
    q_ttm = optimal_student_ttm(v, y, beta, 1.0 / temperature)[0]
    q_kd = optimal_student_kd(v, y, lam, temperature)[0]
    return torch.softmax(v[0], -1), torch.softmax(v[0] / temperature, -1), q_ttm, q_kd, lam


def _solve(teacher_logits: Any, label: int, temperature: float, beta: float):
    v = as_array(teacher_logits, "teacher_logits", ndim=1)
    label = int(check_number("label", label, low=0, high=v.size, high_open=True, integer=True))
    return _optimal_students(tuple(float(x) for x in v), label, float(temperature), float(beta))


def optimal_students_spec(
    teacher_logits: Any,
    label: int,
    temperature: float,
    beta: float,
    *,
    class_names: Sequence[str] | None = None,
) -> FigureSpec:
    """Bars of ``p^t``, ``p^t_T`` and the students minimising CE + beta TTM and the matching KD (Eq. 19).

    The TTM optimum is ``(y + beta p^t_T) / (1 + beta)``; the KD optimum (with ``lambda = beta / (T + beta)``)
    is found numerically. Legend entries carry each distribution's Shannon entropy.
    """
    p, p_t, q_ttm, q_kd, lam = _solve(teacher_logits, label, temperature, beta)

    def named(text: str, q: torch.Tensor) -> str:
        return f"{text}  H = {float(shannon_entropy(q)):.2f}"

    spec = distribution_bars_spec(
        {
            named("teacher p<sup>t</sup>", p): p,
            named("p<sup>t</sup><sub>T</sub>", p_t): p_t,
            named("optimal student, KD", q_kd): q_kd,
            named("optimal student, TTM", q_ttm): q_ttm,
        },
        title=(
            f"Optimal students at T = {float(temperature):.3g}, beta = {float(beta):.3g} "
            f"(KD lambda = {lam:.3f}); label = class {int(label)}"
        ),
        class_names=class_names,
        colors=[COLORS["teacher"], COLORS["transformed"], COLORS["kd"], COLORS["ttm"]],
    )
    spec.layout["yaxis"] = {**spec.layout["yaxis"], "range": [0.0, 1.0]}
    spec.layout["legend"] = {**spec.layout["legend"], "title": {"text": "entropy H in nats"}}
    return spec


def optimal_students_figure(
    teacher_logits: Any, label: int, temperature: float, beta: float, *, class_names: Sequence[str] | None = None
) -> go.Figure:
    """:func:`optimal_students_spec` as a figure."""
    return optimal_students_spec(teacher_logits, label, temperature, beta, class_names=class_names).to_figure()


def optimal_students_readout(teacher_logits: Any, label: int, temperature: float, beta: float) -> str:
    """HTML readout: T, beta, lambda (Eq. 19) and the Shannon / Renyi-1/T entropies of both optimal students."""
    _, _, q_ttm, q_kd, lam = _solve(teacher_logits, label, temperature, beta)
    gamma = 1.0 / float(temperature)
    rows = [
        ("T / beta / KD lambda (Eq. 19)", f"{float(temperature):.3g} / {float(beta):.3g} / {lam:.4f}"),
        ("H(q*) KD / TTM, nats", f"{float(shannon_entropy(q_kd)):.4f} / {float(shannon_entropy(q_ttm)):.4f}"),
        (
            "H_1/T(q*) KD / TTM, nats",
            f"{float(renyi_entropy(q_kd, gamma)):.4f} / {float(renyi_entropy(q_ttm, gamma)):.4f}",
        ),
    ]
    return readout_table(rows)
