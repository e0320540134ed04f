"""Figures of single distributions: the power transform (Eqs. 7-9), Renyi entropies (Eq. 4), point-wise maps (Fig. 4).

Each ``*_spec`` function returns a :class:`~wttm_core.viz.style.FigureSpec` (cheap, used by slider callbacks);
``spec.to_figure()`` gives the ``go.Figure``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from wttm_core._checks import check_scalar
from wttm_core.functional import power_sum, power_transform, renyi_entropy, shannon_entropy
from wttm_core.theory import renyi_curve
from wttm_core.viz.panels import SYM, side_by_side
from wttm_core.viz.style import COLORS, LOG_AXIS, OKABE_ITO, FigureSpec, as_array, base_layout
from wttm_core.viz.widgets import readout_table

__all__ = [
    "distribution_bars",
    "distribution_bars_spec",
    "power_transform_spec",
    "power_transform_readout",
    "power_transform_note",
    "power_transform_panels_spec",
    "renyi_spec",
    "pointwise_map_spec",
]

_CYCLE = [COLORS["teacher"], COLORS["transformed"], COLORS["student"], COLORS["ttm"], COLORS["kd"], COLORS["wttm"]]


def _probs(p: Any, name: str) -> torch.Tensor:
    arr = as_array(p, name, ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return torch.from_numpy(arr)


def _class_labels(k: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names must have {k} entries, got {len(names)}")
    return names


def distribution_bars_spec(
    distributions: Mapping[str, Any],
    *,
    title: str = "Class probabilities",
    class_names: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> FigureSpec:
    """Grouped bars, one trace per named distribution (all of the same length ``K``)."""
    if not isinstance(distributions, Mapping) or not distributions:
        raise ValueError("distributions must be a non-empty mapping name -> probabilities")
    arrays = {str(name): as_array(p, f"distributions[{name!r}]", ndim=1) for name, p in distributions.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"all distributions must have the same number of classes, got sizes {sorted(sizes)}")
    labels = _class_labels(sizes.pop(), class_names)
    palette = list(colors) if colors is not None else _CYCLE
    traces = [
        {"type": "bar", "x": labels, "y": values, "name": name, "marker": {"color": palette[i % len(palette)]}}
        for i, (name, values) in enumerate(arrays.items())
    ]
    layout = base_layout(title, "class", "probability", barmode="group", yaxis={"rangemode": "tozero"})
    return FigureSpec(traces, layout)


def distribution_bars(
    distributions: Mapping[str, Any],
    *,
    title: str = "Class probabilities",
    class_names: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> go.Figure:
    """Grouped bar chart of named distributions over the same classes (probability on the y axis)."""
    return distribution_bars_spec(distributions, title=title, class_names=class_names, colors=colors).to_figure()


def power_transform_spec(
    teacher_probs: Any, temperature: float, *, class_names: Sequence[str] | None = None
) -> FigureSpec:
    """Bars of the teacher ``p^t`` and its power transform ``p^t_T`` with ``gamma = 1 / T`` (Eqs. 7-9)."""
    p = _probs(teacher_probs, "teacher_probs")
    gamma = 1.0 / float(temperature)
    transformed = power_transform(p, gamma)
    spec = distribution_bars_spec(
        {
            "teacher p<sup>t</sup>": p,
            # no gamma in the name (the title has it): side by side with renyi_spec, one legend entry for both
            "transformed p<sup>t</sup><sub>T</sub>": transformed,
        },
        title=f"Power transform with γ = 1/T = {gamma:.3g} (T = {float(temperature):.3g})",
        class_names=class_names,
    )
    spec.layout["yaxis"] = {**spec.layout["yaxis"], "range": [0.0, 1.0]}
    return spec


def power_transform_note(teacher_probs: Any, temperature: float) -> str:
    """A "what to notice" line for a teacher output and its power transform at ``temperature`` (Eqs. 7-9): the top
    class's share before and after, and which way the rest moves - flatter for T > 1, sharper for T < 1."""
    p = _probs(teacher_probs, "teacher_probs")
    t = float(temperature)
    top, after = float(p.max()), float(power_transform(p, 1.0 / t).max())
    start = f"the teacher's top class has {top:.2f}; at T = {t:.3g} the transformed teacher gives it {after:.2f}"
    if abs(t - 1.0) < 0.005:
        return f"{start}: at T = 1 the transform changes nothing."
    if t > 1:
        return f"{start} and spreads the rest over the other classes (flatter)."
    return f"{start} and takes probability from the other classes (sharper)."


def power_transform_readout(teacher_probs: Any, temperature: float) -> str:
    """HTML readout: T, gamma, H(p^t), H(p^t_T), H_gamma(p^t) and U_gamma(p^t) with its bounds (Eq. 22)."""
    p = _probs(teacher_probs, "teacher_probs")
    gamma = 1.0 / float(temperature)
    transformed = power_transform(p, gamma)
    k = p.numel()
    rows = [
        ("T / γ", f"{float(temperature):.3g} / {gamma:.3g}"),
        ("H(pᵗ)  Shannon, nats", f"{float(shannon_entropy(p)):.4f}"),
        ("H(pᵗ_T)  Shannon, nats", f"{float(shannon_entropy(transformed)):.4f}"),
        ("H_γ(pᵗ)  Rényi, nats", f"{float(renyi_entropy(p, gamma)):.4f}"),
        ("top probability pᵗ / pᵗ_T", f"{float(p.max()):.4f} / {float(transformed.max()):.4f}"),
        (
            "U_γ(pᵗ)  (bounds hold for γ < 1)",
            f"{float(power_sum(p, gamma)):.4f}  between 1 and K¹⁻ᵞ = {k ** (1 - gamma):.4f}",
        ),
    ]
    return readout_table(rows)


def _default_alphas() -> np.ndarray:
    return np.geomspace(0.01, 100.0, 41)


def _line(x: Any, y: Any, name: str, **line: Any) -> dict[str, Any]:
    """A scatter trace drawn as a line; ``line`` holds its style (colour, width, dash)."""
    return {"type": "scatter", "x": x, "y": y, "mode": "lines", "name": name, "line": line}


def renyi_spec(teacher_probs: Any, temperature: float, *, alphas: Sequence[float] | None = None) -> FigureSpec:
    """Renyi entropy ``H_alpha`` (Eq. 4) against the order alpha for ``p^t`` and ``p^t_T`` (log alpha axis).

    Dotted lines mark ``log K`` (the ``alpha -> 0`` limit), ``alpha = 1`` (Shannon) and ``alpha = gamma = 1/T``,
    the order of the Renyi term in Eq. 15.
    """
    p = _probs(teacher_probs, "teacher_probs")
    gamma = 1.0 / float(temperature)
    alpha_grid = as_array(_default_alphas() if alphas is None else alphas, "alphas", ndim=1)
    if alpha_grid.size == 0 or (alpha_grid <= 0).any():
        raise ValueError("alphas must be a non-empty list of positive orders (the axis is logarithmic)")
    transformed = power_transform(p, gamma)
    log_k = math.log(p.numel())
    curves = renyi_curve(torch.stack([p, transformed]), alpha_grid).numpy()
    traces = [
        _line(alpha_grid, curves[0], "teacher p<sup>t</sup>", color=COLORS["teacher"], width=3),
        _line(alpha_grid, curves[1], "transformed p<sup>t</sup><sub>T</sub>", color=COLORS["transformed"], width=3),
        _line([gamma, gamma], [0.0, log_k], f"α = γ = {gamma:.3g} (Eq. 15)", color=COLORS["renyi"], dash="dot"),
        _line(
            [float(alpha_grid.min()), float(alpha_grid.max())],
            [log_k, log_k],
            f"log K = {log_k:.3g} (α → 0)",
            color=COLORS["bound"],
            dash="dot",
        ),
        {
            "type": "scatter",
            "x": [1.0, 1.0],
            "y": [float(shannon_entropy(p)), float(shannon_entropy(transformed))],
            "mode": "markers",
            "name": "α = 1: Shannon entropy",
            "marker": {"color": OKABE_ITO["bluish_green"], "size": 10, "symbol": "diamond"},
        },
    ]
    layout = base_layout(
        f"Rényi entropy against its order (T = {float(temperature):.3g})",
        "order α (log scale)",
        "Rényi entropy H<sub>α</sub> (nats)",
        xaxis=dict(LOG_AXIS),
        yaxis={"range": [0.0, 1.05 * log_k]},
    )
    return FigureSpec(traces, layout)


def pointwise_map_spec(
    gamma: float, *, reference_gammas: Sequence[float] = (0.25, 0.5), points: int = 201
) -> FigureSpec:
    """Point-wise maps ``f(p) = p^gamma`` (Eq. 7, Fig. 4) for the current and reference gammas, and ``f(p) = p``.

    A good smoothing map has ``f(0) = 0``, ``f(1) = 1``, is non-decreasing and lies above the identity.
    """
    gamma = check_scalar("gamma", gamma)
    grid = np.linspace(0.0, 1.0, points)
    dashes = ["dash", "dashdot", "longdash"]
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": grid,
            "y": grid,
            "mode": "lines",
            "name": "identity f(p) = p",
            "line": {"color": COLORS["bound"], "dash": "dot"},
        }
    ]
    for i, ref in enumerate(reference_gammas):
        traces.append(
            {
                "type": "scatter",
                "x": grid,
                "y": grid ** float(ref),
                "mode": "lines",
                "name": f"p<sup>{float(ref):g}</sup>",
                "line": {"color": COLORS["renyi"], "dash": dashes[i % len(dashes)], "width": 1.5},
            }
        )
    traces.append(
        {
            "type": "scatter",
            "x": grid,
            "y": grid**gamma,
            "mode": "lines",
            "name": f"f(p) = p<sup>γ</sup>, γ = {gamma:.3g}",
            "line": {"color": COLORS["transformed"], "width": 4},
        }
    )
    layout = base_layout(
        f"Point-wise map f(p) = p<sup>{gamma:.3g}</sup> before renormalisation",
        "p (probability)",
        "f(p) (unnormalised weight)",
        xaxis={"range": [0.0, 1.0]},
        yaxis={"range": [0.0, 1.02]},
    )
    return FigureSpec(traces, layout)


def power_transform_panels_spec(teacher_probs: Any, temperature: float) -> FigureSpec:
    """The three views of notebook 01 side by side: the transform's bars (Eqs. 7-9), the Renyi curves (Eq. 4) and
    the point-wise map ``p^gamma`` (Fig. 4), with a note saying what to notice."""
    gamma = 1.0 / float(temperature)
    if gamma < 1:
        note = (
            f"γ = {gamma:.2g} < 1 lifts the small probabilities (the map lies above the diagonal), so "
            f"{SYM['ptT']} is flatter and every Rényi entropy grows."
        )
    elif gamma > 1:
        note = f"γ = {gamma:.2g} > 1 sharpens: the map lies below the diagonal and {SYM['ptT']} is more peaked."
    else:
        note = "at T = 1 the transform does nothing: the map is the diagonal."
    return side_by_side(
        [
            power_transform_spec(teacher_probs, temperature),
            renyi_spec(teacher_probs, temperature),
            pointwise_map_spec(gamma),
        ],
        title=f"The power transform at T = {float(temperature):.3g} (γ = {gamma:.3g})",
        note=note,
        titles=[
            "teacher and transformed teacher",
            "Rényi entropy against its order α",
            "point-wise map f(p) = p<sup>γ</sup>",
        ],
        height=470,
    )
