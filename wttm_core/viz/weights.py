"""Figures of WTTM's sample weights ``U_gamma(p^t)`` (Eqs. 22-23) over a batch of teacher outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wttm_core._checks import check_int
from wttm_core.functional import shannon_entropy, wttm_weights
from wttm_core.viz.panels import NOTICE_MARGIN_TOP, SYM, notice
from wttm_core.viz.style import COLORS, LOG_AXIS, FigureSpec, as_array, base_layout
from wttm_core.viz.widgets import readout_table

__all__ = [
    "weights_and_entropy",
    "power_sum_scatter_spec",
    "power_sum_histogram_spec",
    "weight_share_spec",
    "weights_readout",
    "shared_student_spec",
]


def _batch(teacher_logits: Any) -> torch.Tensor:
    arr = as_array(teacher_logits, "teacher_logits", ndim=2)
    if arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(f"teacher_logits must be [N, K] with N >= 1 and K >= 2, got shape {arr.shape}")
    return torch.from_numpy(arr)


def weights_and_entropy(teacher_logits: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """``U_gamma(p^t)`` (Eq. 22) and the Shannon entropy ``H(p^t)`` in nats of every sample, as numpy arrays.

    Compute these once per slider move and pass them to the ``*_spec`` builders of this module.
    """
    v = _batch(teacher_logits)
    weights = wttm_weights(v, float(gamma)).numpy()
    entropy = shannon_entropy(torch.softmax(v, dim=-1)).numpy()
    return weights, entropy


def _pair(weights: Any, entropy: Any) -> tuple[np.ndarray, np.ndarray]:
    w = as_array(weights, "weights", ndim=1)
    h = as_array(entropy, "entropy", ndim=1)
    if w.shape != h.shape or w.size == 0:
        raise ValueError(f"weights and entropy must be non-empty and of the same length, got {w.size} and {h.size}")
    return w, h


def _num_classes(num_classes: int) -> int:
    return check_int("num_classes", num_classes, low=2)


def power_sum_scatter_spec(weights: Any, entropy: Any, gamma: float, num_classes: int) -> FigureSpec:
    """``U_gamma(p^t)`` against ``H(p^t)`` per sample, with the bounds 1 (one-hot) and ``K^(1-gamma)`` (uniform).

    ``weights`` and ``entropy`` come from :func:`weights_and_entropy` (one value per sample).
    """
    weights, entropy = _pair(weights, entropy)
    k = _num_classes(num_classes)
    upper = k ** (1.0 - float(gamma))
    h_max = float(np.log(k))
    traces = [
        {
            "type": "scattergl" if weights.size > 1000 else "scatter",
            "x": entropy,
            "y": weights,
            "mode": "markers",
            "name": "one teacher output",
            "marker": {"color": COLORS["wttm"], "size": 5, "opacity": 0.5},
        },
        {
            "type": "scatter",
            "x": [0.0, h_max],
            "y": [upper, upper],
            "mode": "lines",
            "name": f"max K<sup>1−γ</sup> = {upper:.3g} (uniform)",
            "line": {"color": COLORS["bound"], "dash": "dash"},
        },
        {
            "type": "scatter",
            "x": [0.0, h_max],
            "y": [1.0, 1.0],
            "mode": "lines",
            "name": "min 1 (one-hot)",
            "line": {"color": COLORS["teacher"], "dash": "dot"},
        },
    ]
    layout = base_layout(
        f"WTTM's weight {SYM['U']} grows with the teacher's entropy (γ = {float(gamma):.3g})",
        f"teacher entropy H({SYM['pt']}) (nats)",
        f"weight {SYM['U']} (unitless)",
        yaxis={"range": [0.0, 1.05 * upper]},
        annotations=[
            notice("sharp (low-entropy) teacher outputs get weights near 1, smooth ones up to K<sup>1−γ</sup>.")
        ],
        margin={"l": 70, "r": 30, "t": NOTICE_MARGIN_TOP, "b": 60},
    )
    return FigureSpec(traces, layout)


def power_sum_histogram_spec(weights: Any, gamma: float, num_classes: int, *, bins: int = 30) -> FigureSpec:
    """Histogram of ``U_gamma(p^t)`` over the batch on ``[1, K^(1-gamma)]``, with the batch mean marked."""
    check_int("bins", bins, low=1)
    weights = as_array(weights, "weights", ndim=1)
    if weights.size == 0:
        raise ValueError("weights must not be empty")
    k = _num_classes(num_classes)
    upper = k ** (1.0 - float(gamma))
    counts, edges = np.histogram(weights, bins=bins, range=(1.0, max(upper, 1.0 + 1e-9)))
    centres = 0.5 * (edges[:-1] + edges[1:])
    mean = float(weights.mean())
    traces = [
        {
            "type": "bar",
            "x": centres,
            "y": counts,
            "width": float(edges[1] - edges[0]),
            "name": "samples per bin",
            "marker": {"color": COLORS["wttm"]},
        },
        {
            "type": "scatter",
            "x": [mean, mean],
            "y": [0, int(counts.max()) if counts.size else 1],
            "mode": "lines",
            "name": f"batch mean U = {mean:.3g}",
            "line": {"color": COLORS["teacher"], "dash": "dash", "width": 3},
        },
    ]
    layout = base_layout(
        f"Distribution of {SYM['U']} over {weights.size} teacher outputs (γ = {float(gamma):.3g})",
        f"weight {SYM['U']} (unitless)",
        "number of samples",
        xaxis={"range": [0.0, upper * 1.02 + 0.5]},
    )
    return FigureSpec(traces, layout)


def _groups(entropy: np.ndarray, groups: int) -> list[np.ndarray]:
    order = np.argsort(entropy, kind="stable")
    return np.array_split(order, groups)


def weight_share_spec(weights: Any, entropy: Any, gamma: float, *, groups: int = 5) -> FigureSpec:
    """Share of the total distillation weight per teacher-entropy group: TTM (equal) against WTTM (``U``)."""
    check_int("groups", groups, low=1)
    weights, entropy = _pair(weights, entropy)
    if groups > weights.size:
        raise ValueError(f"groups ({groups}) must not exceed the number of samples ({weights.size})")
    parts = _groups(entropy, groups)
    labels = [f"{i + 1}<br>{entropy[idx].min():.2f}-{entropy[idx].max():.2f}" for i, idx in enumerate(parts)]
    ttm_share = [idx.size / weights.size for idx in parts]
    wttm_share = [float(weights[idx].sum() / weights.sum()) for idx in parts]
    traces = [
        {
            "type": "bar",
            "x": labels,
            "y": ttm_share,
            "name": "TTM (every sample weight 1)",
            "marker": {"color": COLORS["ttm"]},
        },
        {
            "type": "bar",
            "x": labels,
            "y": wttm_share,
            "name": f"WTTM (weight {SYM['U']})",
            "marker": {"color": COLORS["wttm"]},
        },
    ]
    layout = base_layout(
        f"WTTM moves weight to smooth teacher outputs (γ = {float(gamma):.3g})",
        f"fifths by teacher entropy H({SYM['pt']}) (nats)",
        "share of the total weight",
        barmode="group",
        yaxis={"rangemode": "tozero"},
    )
    return FigureSpec(traces, layout)


def weights_readout(weights: Any, gamma: float, num_classes: int) -> str:
    """HTML readout: gamma, T, the range and mean of U over the batch and its theoretical bounds (Eq. 22)."""
    weights = as_array(weights, "weights", ndim=1)
    k = _num_classes(num_classes)
    rows = [
        ("γ / T", f"{float(gamma):.3g} / {1.0 / float(gamma):.3g}"),
        ("U over the batch: min / mean / max", f"{weights.min():.3f} / {weights.mean():.3f} / {weights.max():.3f}"),
        ("bounds [1, K¹⁻ᵞ]", f"[1, {k ** (1.0 - float(gamma)):.3f}]"),
    ]
    return readout_table(rows)


_RUN_STYLE = {
    "ttm": ("TTM (every weight 1)", COLORS["ttm"], "solid"),
    "wttm": (f"WTTM (weights {SYM['U']}, the paper's loss)", COLORS["wttm"], "solid"),
    "wttm-mean": (f"WTTM at equal mean strength ({SYM['U']} / mean U)", COLORS["wttm"], "dash"),
}


def shared_student_spec(runs: dict[str, Any], *, split: str = "train", title: str = "", note: str = "") -> FigureSpec:
    """Mean ``D(p^t_T || q)`` against the step for the runs of :func:`wttm_core.theory.train_shared_student`
    (weighting -> run), on the training (``split="train"``) or held-out samples (``"test"``); log y axis."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    traces = []
    for weighting, run in runs.items():
        name, color, dash = _RUN_STYLE[weighting]
        traces.append(
            {
                "type": "scatter",
                "x": run.steps.numpy(),
                "y": getattr(run, split).numpy(),
                "mode": "lines",
                "name": name,
                "line": {"color": color, "dash": dash, "width": 3},
            }
        )
    where = "training samples" if split == "train" else "held-out samples"
    extra: dict[str, Any] = {"yaxis": dict(LOG_AXIS)}
    if note:
        extra["annotations"] = [notice(note)]
        extra["margin"] = {"l": 70, "r": 30, "t": NOTICE_MARGIN_TOP, "b": 60}
    layout = base_layout(
        title or f"Linear student, shared weights: mean {SYM['D_ttm']} on the {where}",
        "gradient step",
        f"mean {SYM['D_ttm']} (nats, log scale)",
        **extra,
    )
    return FigureSpec(traces, layout)
