"""Figures of the KD and TTM gradients (Eqs. 20-21): the 3-class simplex view and toy gradient flows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from wttm_core.functional import kd_grad, power_transform, ttm_grad
from wttm_core.theory import SIMPLEX_VERTICES, FlowResult, gradient_flow, probability_velocity, simplex_xy
from wttm_core.viz.panels import NOTICE_MARGIN_TOP, SYM, notice
from wttm_core.viz.style import COLORS, LOG_AXIS, FigureSpec, as_array, base_layout

__all__ = [
    "simplex_spec",
    "simplex_notice",
    "flow_curves_spec",
    "QUANTITY_LABELS",
]

QUANTITY_LABELS = {
    "entropy": "H(q)",
    "divergence": SYM["D_ttm"],
    "tempered_divergence": SYM["D_kd"],
}
_METHOD_LABELS = {"kd": "KD", "ttm": "TTM", "wttm": "WTTM"}
_DASHES = ["solid", "dash", "dot", "dashdot"]
_ARROW_LENGTH = 0.22  # the longer of the two velocity arrows, in units of the triangle's side


def _three(x: Any, name: str) -> torch.Tensor:
    arr = as_array(x, name, ndim=1)
    if arr.size != 3:
        raise ValueError(f"{name} must hold 3 logits (the 3-class view), got {arr.size}")
    return torch.from_numpy(arr).unsqueeze(0)


def _xy(p: torch.Tensor) -> tuple[list[float], list[float]]:
    pts = simplex_xy(p).reshape(-1, 2)
    return pts[:, 0].tolist(), pts[:, 1].tolist()


def _frame_traces() -> list[dict[str, Any]]:
    """The triangle's outline and its corner labels."""
    corners = SIMPLEX_VERTICES.tolist()
    return [
        {
            "type": "scatter",
            "x": [c[0] for c in corners] + [corners[0][0]],
            "y": [c[1] for c in corners] + [corners[0][1]],
            "mode": "lines",
            "name": "probability simplex",
            "line": {"color": COLORS["bound"], "width": 1},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "x": [-0.04, 1.04, 0.5],
            "y": [-0.05, -0.05, math.sqrt(3) / 2 + 0.05],
            "mode": "text",
            "text": ["class 0", "class 1", "class 2"],
            "name": "corners",
            "hoverinfo": "skip",
            "showlegend": False,
        },
    ]


def _flow_path_traces(
    v: torch.Tensor, z: torch.Tensor, t: float, *, steps: int, lr: float
) -> dict[str, dict[str, Any]]:
    """The paths of ``q`` under KD's and TTM's flows, and of KD's ``q_T``, keyed ``kd``, ``ttm``, ``kd_t``."""
    # KD's flow is TTM's flow of z / T scaled by T: z_{k+1} / T = z_k / T - lr (q_T - p^t_T) (Eq. 21 vs Eq. 20). Both
    # paths therefore come out of one batched TTM flow; q along KD's path is q_T sharpened back (power T).
    flow = gradient_flow(
        torch.cat([v, v]), "ttm", t, steps=steps, lr=lr, student_logits=torch.cat([z, z / t]), record_probs=True
    )
    paths = {"ttm": flow.probs[:, 0, :], "kd": power_transform(flow.probs[:, 1, :], t), "kd_t": flow.probs[:, 1, :]}
    styles = {
        "kd": (f"KD: path of q ({steps} steps)", COLORS["kd"], "dot"),
        "ttm": (f"TTM: path of q ({steps} steps)", COLORS["ttm"], "dot"),
        "kd_t": (f"KD: path of q<sub>T</sub> (ends at {SYM['ptT']})", COLORS["kd"], "dash"),
    }
    traces = {}
    for key, (name, color, dash) in styles.items():
        xs, ys = _xy(paths[key])
        traces[key] = {
            "type": "scatter",
            "x": xs,
            "y": ys,
            "mode": "lines",
            "name": name,
            "line": {"color": color, "width": 2, "dash": dash},
        }
    return traces


def _step_arrow_traces(v: torch.Tensor, z: torch.Tensor, t: float) -> list[dict[str, Any]]:
    """Where one gradient step moves ``q`` for KD and for TTM, scaled together so that their lengths compare."""
    vel = {
        "kd": simplex_xy(probability_velocity(z, kd_grad(z, v, t)))[0],
        "ttm": simplex_xy(probability_velocity(z, ttm_grad(z, v, 1.0 / t)))[0],
    }
    longest = max(float(torch.linalg.vector_norm(d)) for d in vel.values())
    scale = _ARROW_LENGTH / longest if longest > 1e-12 else 0.0
    start = simplex_xy(torch.softmax(z, -1))[0]
    traces = []
    for method in ("kd", "ttm"):
        end = start + scale * vel[method]
        traces.append(
            {
                "type": "scatter",
                "x": [float(start[0]), float(end[0])],
                "y": [float(start[1]), float(end[1])],
                "mode": "lines+markers",
                "name": f"{_METHOD_LABELS[method]}: where one step moves q",
                "line": {"color": COLORS[method], "width": 4},
                "marker": {"symbol": ["circle", "arrow"], "size": [1, 16], "angleref": "previous"},
            }
        )
    return traces


def _distribution_traces(v: torch.Tensor, z: torch.Tensor, t: float) -> list[dict[str, Any]]:
    """Markers for the teacher ``p^t``, the transformed teacher ``p^t_T``, the student ``q`` and its ``q_T``."""
    points = [
        ("teacher p<sup>t</sup>", torch.softmax(v, -1), COLORS["teacher"], "circle"),
        (
            f"transformed p<sup>t</sup><sub>T</sub> (T = {t:.3g})",
            torch.softmax(v / t, -1),
            COLORS["transformed"],
            "diamond",
        ),
        ("student q", torch.softmax(z, -1), COLORS["student"], "circle"),
        ("student q<sub>T</sub>", torch.softmax(z / t, -1), COLORS["student"], "circle-open"),
    ]
    traces = []
    for name, dist, color, symbol in points:
        xs, ys = _xy(dist)
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "mode": "markers",
                "name": name,
                "marker": {"color": color, "size": 14, "symbol": symbol, "line": {"width": 2, "color": color}},
            }
        )
    return traces


def _simplex_layout(t: float) -> dict[str, Any]:
    return base_layout(
        f"KD and TTM on the 3-class simplex (T = {t:.3g})",
        "simplex plane (barycentric x)",
        "simplex plane (barycentric y)",
        height=560,
        xaxis={"visible": False, "range": [-0.12, 1.12]},
        yaxis={"visible": False, "range": [-0.12, 1.0], "scaleanchor": "x", "scaleratio": 1.0},
        legend={"orientation": "v", "x": 1.02, "y": 1.0, "yanchor": "top"},
        margin={"l": 20, "r": 20, "t": NOTICE_MARGIN_TOP, "b": 20},
        annotations=[notice(simplex_notice(t))],
    )


def simplex_notice(temperature: float) -> str:
    """The simplex figure's "what to notice" line at ``temperature``: at T = 1 (Eqs. 20-21 coincide, q_T = q and
    p^t_T = p^t) the two flows are one; above it KD's q ends on the sharper teacher, TTM's on p^t_T."""
    if abs(float(temperature) - 1.0) < 0.005:
        return (
            f"At T = 1, q<sub>T</sub> = q and {SYM['ptT']} = {SYM['pt']}: KD's step T (q<sub>T</sub> − {SYM['ptT']}) "
            f"and TTM's q − {SYM['ptT']} are the same, so the two paths coincide and end on the teacher."
        )
    return (
        f"KD's q<sub>T</sub> ends on {SYM['ptT']} but its q ends on the sharper teacher {SYM['pt']}; "
        f"TTM's q itself ends on {SYM['ptT']}."
    )


def simplex_spec(
    teacher_logits: Any, temperature: float, student_logits: Any, *, steps: int = 80, lr: float = 2.0
) -> FigureSpec:
    """The 3-class probability simplex: teacher, transformed teacher, student, gradient directions and flows.

    Arrows show where ``q`` moves under one gradient step on the logits for KD (``T (q_T - p^t_T)``, Eq. 21 with
    KD's ``T^2``) and TTM (``q - p^t_T``, Eq. 20), scaled together so that their lengths compare. Lines are the
    paths of ``q`` under ``steps`` steps of each flow: KD ends at the untempered teacher ``p^t``, TTM at ``p^t_T``.
    """
    t = float(temperature)
    v = _three(teacher_logits, "teacher_logits")
    z = _three(student_logits, "student_logits")
    paths = _flow_path_traces(v, z, t, steps=steps, lr=lr)
    traces = [
        *_frame_traces(),
        paths["kd"],
        paths["ttm"],
        *_step_arrow_traces(v, z, t),
        paths["kd_t"],
        *_distribution_traces(v, z, t),
    ]
    return FigureSpec(traces, _simplex_layout(t))


def _quantity_traces(
    results: Mapping[str, FlowResult], quantities: Sequence[str], log_y: bool
) -> tuple[list[dict[str, Any]], int]:
    """One line per (run, quantity) and the last step of all runs; the colour follows the method, the dash the
    quantity (or, with one quantity, the run among runs of the same method)."""
    traces: list[dict[str, Any]] = []
    last_step = 0
    seen: dict[str, int] = {}
    for label, result in results.items():
        if not isinstance(result, FlowResult):
            raise TypeError(f"results[{label!r}] must be a FlowResult, got {type(result).__name__}")
        steps = result.steps.numpy()
        last_step = max(last_step, int(steps[-1]))
        same_method = seen.get(result.method, 0)
        seen[result.method] = same_method + 1
        for i, quantity in enumerate(quantities):
            dash = _DASHES[(i if len(quantities) > 1 else same_method) % len(_DASHES)]
            values = getattr(result, quantity).mean(dim=-1).numpy()
            suffix = f": {QUANTITY_LABELS[quantity]}" if len(quantities) > 1 else ""
            traces.append(
                {
                    "type": "scatter",
                    "x": steps,
                    "y": np.maximum(values, 1e-12) if log_y else values,
                    "mode": "lines",
                    "name": f"{label}{suffix}",
                    "line": {"color": COLORS[result.method], "dash": dash, "width": 3},
                }
            )
    return traces, last_step


def _reference_traces(references: Mapping[str, float], last_step: int) -> list[dict[str, Any]]:
    """Horizontal dotted lines from step 0 to ``last_step``, one per (label, value)."""
    colors = [COLORS["teacher"], COLORS["transformed"], COLORS["bound"]]
    return [
        {
            "type": "scatter",
            "x": [0, last_step],
            "y": [float(value), float(value)],
            "mode": "lines",
            "name": label,
            "line": {"color": colors[j % len(colors)], "dash": "dot"},
        }
        for j, (label, value) in enumerate(references.items())
    ]


def flow_curves_spec(
    results: Mapping[str, FlowResult],
    quantities: Sequence[str] = ("divergence",),
    *,
    title: str,
    yaxis_title: str,
    references: Mapping[str, float] | None = None,
    log_y: bool = False,
    note: str = "",
) -> FigureSpec:
    """Batch means of recorded flow quantities against the step, one line per (run, quantity).

    ``results`` maps a legend label to a :class:`~wttm_core.theory.FlowResult`; the colour follows the run's
    method (KD vermillion, TTM blue, WTTM purple), the dash pattern the quantity - or, with one quantity, the run
    among runs of the same method (so two WTTM variants never share colour *and* dash). ``references`` adds
    horizontal dashed lines (label -> value); ``note`` a "what to notice" line under the title.
    """
    if not results:
        raise ValueError("results must not be empty")
    bad = [q for q in quantities if q not in QUANTITY_LABELS]
    if bad or not quantities:
        raise ValueError(f"quantities must be a non-empty subset of {sorted(QUANTITY_LABELS)}, got {list(quantities)}")
    traces, last_step = _quantity_traces(results, quantities, log_y)
    traces += _reference_traces(references or {}, last_step)
    extra: dict[str, Any] = {"yaxis": dict(LOG_AXIS)} if log_y else {}
    if note:
        extra["annotations"] = [notice(note)]
        extra["margin"] = {"l": 70, "r": 30, "t": NOTICE_MARGIN_TOP, "b": 60}
    layout = base_layout(title, "gradient step", yaxis_title, **extra)
    return FigureSpec(traces, layout)
