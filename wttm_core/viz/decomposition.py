"""Figures of the KD/TTM identity (Eq. 15), the lambda-beta map (Eq. 19) and the per-sample optimal students."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from wttm_core._checks import check_int
from wttm_core.functional import renyi_entropy, shannon_entropy
from wttm_core.theory import (
    decomposition_over_temperature,
    eq15_terms,
    lambda_from_beta,
    optimal_student_kd,
    optimal_student_ttm,
    sharpness_profile,
)
from wttm_core.viz.distributions import distribution_bars_spec
from wttm_core.viz.panels import NOTICE_MARGIN_TOP, SYM, notice
from wttm_core.viz.style import COLORS, LOG_AXIS, FigureSpec, as_array, base_layout
from wttm_core.viz.widgets import readout_table

__all__ = [
    "eq15_waterfall_spec",
    "tradeoff_spec",
    "optimal_students_spec",
    "optimal_students_readout",
    "sharpness_spec",
]


def _logits(x: Any, name: str) -> torch.Tensor:
    arr = as_array(x, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[-1] < 2:
        raise ValueError(f"{name} must be [K] or [N, K] logits with K >= 2, got shape {arr.shape}")
    return torch.from_numpy(arr)


def _eq15_note(kd: float, renyi: float, teacher: float, ttm: float) -> str:
    if renyi == 0.0 and teacher == 0.0:
        return "at T = 1 the Rényi term and the constant vanish: TTM's divergence equals KD's."
    both = teacher - renyi
    how = "nearly cancel" if abs(both) < 0.2 * max(renyi, teacher) else "partly cancel"
    return (
        f"the Rényi and constant bars {how} ({-renyi:.2f} + {teacher:.2f} = {both:.2f}); with the KD term {kd:.2f} "
        f"they add up to TTM's {ttm:.2f}."
    )


def eq15_waterfall_spec(student_logits: Any, teacher_logits: Any, temperature: float) -> FigureSpec:
    """Eq. 15 as bars of batch means, one colour per role: ``T D(p^t_T||q_T)`` (KD), ``-(T-1) H_{1/T}(q)`` (Renyi),
    ``+(T-1) H(p^t_T)`` (constant in the student, grey) and their sum ``D(p^t_T||q)`` (TTM)."""
    t = float(temperature)
    terms = eq15_terms(_logits(student_logits, "student_logits"), _logits(teacher_logits, "teacher_logits"), t)
    kd = float((t * terms["kd"]).mean())
    renyi = float(((t - 1.0) * terms["renyi"]).mean())
    teacher = float(((t - 1.0) * terms["teacher_entropy"]).mean())
    ttm = float(terms["ttm"].mean())
    trace = {
        "type": "bar",
        "name": "Eq. 15 (batch mean)",
        "x": [
            f"T·{SYM['D_kd']}<br>(KD term)",
            f"−(T−1)·{SYM['H_1/T']}(q)<br>(Rényi term)",
            f"+(T−1)·H({SYM['ptT']})<br>(constant)",
            f"= {SYM['D_ttm']}<br>(TTM)",
        ],
        "y": [kd, -renyi, teacher, ttm],
        "text": [f"{kd:.3f}", f"{-renyi:.3f}", f"+{teacher:.3f}", f"{ttm:.3f}"],
        "textposition": "outside",
        "marker": {"color": [COLORS["kd"], COLORS["renyi"], COLORS["bound"], COLORS["ttm"]]},
    }
    low, high = min(0.0, -renyi), max(kd, teacher, ttm, 0.0)
    layout = base_layout(
        f"TTM = KD − Rényi + constant (Eq. 15) at T = {t:.3g}",
        "term of Eq. 15",
        "batch mean (nats)",
        showlegend=False,
        yaxis={"range": [1.2 * low - 0.1, 1.2 * high + 0.1]},
        annotations=[notice(_eq15_note(kd, renyi, teacher, ttm))],
        margin={"t": NOTICE_MARGIN_TOP},
    )
    return FigureSpec([trace], layout)


@lru_cache(maxsize=16)
def _cached_curves(
    z_bytes: bytes, z_shape: tuple[int, ...], v_bytes: bytes, v_shape: tuple[int, ...], temps: tuple[float, ...]
) -> dict[str, torch.Tensor]:
    """The curves of :func:`tradeoff_spec` depend on the batch only, not on the slider: compute them once."""
    z = torch.frombuffer(bytearray(z_bytes), dtype=torch.float64).reshape(z_shape)
    v = torch.frombuffer(bytearray(v_bytes), dtype=torch.float64).reshape(v_shape)
    return decomposition_over_temperature(z, v, temps)


def _kd_term_note(kd_curve: np.ndarray, temps: np.ndarray) -> str:
    """What to notice in :func:`tradeoff_spec`: where the KD term peaks and where it ends, against the growing
    Rényi term and constant (the y axis is logarithmic, so a term near 1 stays readable next to terms near 20)."""
    peak = int(np.argmax(kd_curve))
    rises = f"rises to {kd_curve[peak]:.2f} near T = {temps[peak]:.2g}, then " if 0 < peak < len(kd_curve) - 1 else ""
    ends = "lower" if kd_curve[-1] < kd_curve[0] else "higher"
    return (
        f"the KD term {rises}ends {ends} ({kd_curve[0]:.2f} at T = {temps[0]:.3g}, {kd_curve[-1]:.2f} at "
        f"T = {temps[-1]:.3g}), while the Rényi term and the constant grow with T − 1 (log y axis: both are 0 "
        "at T = 1)."
    )


def tradeoff_spec(
    student_logits: Any,
    teacher_logits: Any,
    temperature: float,
    *,
    temperatures: Sequence[float] | None = None,
) -> FigureSpec:
    """The weighted terms of Eq. 15 (batch means) against T, with the current T marked."""
    temps = as_array(np.geomspace(1.0, 10.0, 37) if temperatures is None else temperatures, "temperatures", ndim=1)
    z = _logits(student_logits, "student_logits")
    v = _logits(teacher_logits, "teacher_logits")
    curves = _cached_curves(z.numpy().tobytes(), tuple(z.shape), v.numpy().tobytes(), tuple(v.shape), tuple(temps))
    t = float(temperature)
    here = decomposition_over_temperature(z, v, [t])
    styles = {
        "kd": (f"T·{SYM['D_kd']}  (KD term)", COLORS["kd"], "solid"),
        "renyi": (f"(T−1)·{SYM['H_1/T']}(q)  (Rényi term, subtracted)", COLORS["renyi"], "solid"),
        "teacher": (f"(T−1)·H({SYM['ptT']})  (constant in the student)", COLORS["bound"], "dash"),
        "ttm": (f"{SYM['D_ttm']}  (TTM)", COLORS["ttm"], "solid"),
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
        "How the terms of Eq. 15 change with T",
        "temperature T",
        "batch mean (nats)",
        xaxis=dict(LOG_AXIS),
        yaxis=dict(LOG_AXIS),
        margin={"t": NOTICE_MARGIN_TOP},
        annotations=[notice(_kd_term_note(curves["kd"].numpy(), temps))],
    )
    return FigureSpec(traces, layout)


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
    label = check_int("label", label, low=0, high=v.size - 1)
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
            named("transformed teacher p<sup>t</sup><sub>T</sub>", p_t): p_t,
            named("optimal student, KD", q_kd): q_kd,
            named("optimal student, TTM", q_ttm): q_ttm,
        },
        title=(
            f"Optimal students at T = {float(temperature):.3g}, β = {float(beta):.3g} "
            f"(KD λ = {lam:.3f}); label = class {int(label)}"
        ),
        class_names=class_names,
        colors=[COLORS["teacher"], COLORS["transformed"], COLORS["kd"], COLORS["ttm"]],
    )
    spec.layout["yaxis"] = {**spec.layout["yaxis"], "range": [0.0, 1.0]}
    spec.layout["legend"] = {**spec.layout["legend"], "title": {"text": "entropy H in nats"}}
    kd_y, teacher_y = float(q_kd[label]), float(p[label])
    compared = "more than" if kd_y > teacher_y + 0.005 else "less than" if kd_y < teacher_y - 0.005 else "about"
    spec.layout["margin"] = {**spec.layout["margin"], "t": NOTICE_MARGIN_TOP}
    spec.layout["annotations"] = [
        notice(
            f"on the label class KD's best student gives {kd_y:.2f}, {compared} the teacher's {teacher_y:.2f}; "
            f"TTM's gives {float(q_ttm[label]):.2f} and follows {SYM['ptT']} on the other classes."
        )
    ]
    return spec


def optimal_students_readout(teacher_logits: Any, label: int, temperature: float, beta: float) -> str:
    """HTML readout: T, beta, lambda (Eq. 19) and the Shannon / Renyi-1/T entropies of both optimal students."""
    _, _, q_ttm, q_kd, lam = _solve(teacher_logits, label, temperature, beta)
    gamma = 1.0 / float(temperature)
    rows = [
        ("T / β / KD λ (Eq. 19)", f"{float(temperature):.3g} / {float(beta):.3g} / {lam:.4f}"),
        ("Shannon H(q*), KD / TTM, nats", f"{float(shannon_entropy(q_kd)):.4f} / {float(shannon_entropy(q_ttm)):.4f}"),
        (
            "Rényi H of order 1/T of q*, KD / TTM, nats",
            f"{float(renyi_entropy(q_kd, gamma)):.4f} / {float(renyi_entropy(q_ttm, gamma)):.4f}",
        ),
    ]
    return readout_table(rows)


def _sharpness_note(kd_best: float, ttm_best: float, t: float) -> str:
    def relation(s: float) -> str:
        return "sharper than the teacher" if s > 1.005 else "smoother than the teacher" if s < 0.995 else "the teacher"

    return (
        f"KD's best student sits at s = {kd_best:.2f} ({relation(kd_best)}), TTM's at s = {ttm_best:.2f} "
        f"({relation(ttm_best)}; 1/T = {1 / t:.2f})."
    )


def sharpness_spec(teacher_logits: Any, label: int, temperature: float, beta: float) -> FigureSpec:
    """KD's and TTM's objectives along the student sharpness ``s`` (student logits ``s v``) at fixed T, each minus its
    minimum, with each objective's minimiser marked and the teacher (``s = 1``) and ``p^t_T`` (``s = 1/T``) as
    reference lines (see :func:`wttm_core.theory.sharpness_profile`)."""
    v = torch.from_numpy(as_array(teacher_logits, "teacher_logits", ndim=1))
    t = float(temperature)
    scales = np.geomspace(0.02, 20.0, 121)
    prof = sharpness_profile(v, int(label), t, float(beta), torch.from_numpy(scales))
    top = float(max(prof["kd"].max(), prof["ttm"].max()))
    span = min(top, 3.0)
    traces: list[dict[str, Any]] = []
    for key, name in (("kd", f"KD objective ÷ (1 − λ), λ = {prof['lam']:.3f}"), ("ttm", "TTM objective (CE + β TTM)")):
        best = float(prof[f"{key}_best"])
        traces.append(
            {
                "type": "scatter",
                "x": scales,
                "y": prof[key].numpy(),
                "mode": "lines",
                "name": name,
                "line": {"color": COLORS[key], "width": 3},
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": [best],
                "y": [0.0],
                "mode": "markers+text",
                "name": f"{key.upper()}'s best student: s = {best:.2f}",
                "text": [f"s = {best:.2f}"],  # TTM's optimum is the smoother (smaller s): labels apart when close
                "textposition": "top right" if key == "kd" else "top left",
                "textfont": {"color": COLORS[key]},
                "marker": {"color": COLORS[key], "size": 14, "symbol": "star"},
            }
        )
    for x, name, color in (
        (1.0, "s = 1: the teacher's own sharpness", COLORS["teacher"]),
        (1.0 / t, f"s = 1/T: q = {SYM['ptT']}", COLORS["transformed"]),
    ):
        traces.append(
            {
                "type": "scatter",
                "x": [x, x],
                "y": [0.0, span],
                "mode": "lines",
                "name": name,
                "line": {"color": color, "dash": "dot", "width": 2},
            }
        )
    layout = base_layout(
        f"Student sharpness: logits s·v at T = {t:.3g}, β = {float(beta):.3g}",
        "student sharpness s (log scale; s·v are the student's logits)",
        "objective minus its minimum (nats)",
        xaxis=dict(LOG_AXIS),
        yaxis={"range": [-0.05 * span, span]},
        annotations=[notice(_sharpness_note(float(prof["kd_best"]), float(prof["ttm_best"]), t))],
        margin={"t": NOTICE_MARGIN_TOP},
    )
    return FigureSpec(traces, layout)
