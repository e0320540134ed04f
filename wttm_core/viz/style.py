"""Shared look of every figure: a colour-blind-safe palette, layout defaults and the figure specification type.

Colours are the Okabe-Ito palette (distinguishable under the common colour-vision deficiencies); each role in
the paper's story has one fixed colour, so "TTM" is the same blue in every notebook.

Figures are first described as a :class:`FigureSpec` - plain dicts of trace and layout properties, cheap to
build - and turned into a validated ``plotly.graph_objects.Figure`` only when shown. Slider callbacks use the
specs directly (see :mod:`wttm_core.viz.widgets`), which keeps an update to a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from wttm_core.viz import export as _export

__all__ = [
    "OKABE_ITO",
    "COLORS",
    "TEMPLATE",
    "FigureSpec",
    "as_array",
    "base_layout",
    "LOG_AXIS",
]

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

# One colour per role of the paper's story.
COLORS: dict[str, str] = {
    "teacher": OKABE_ITO["black"],
    "transformed": OKABE_ITO["orange"],
    "student": OKABE_ITO["bluish_green"],
    "kd": OKABE_ITO["vermillion"],
    "ttm": OKABE_ITO["blue"],
    "wttm": OKABE_ITO["reddish_purple"],
    "renyi": OKABE_ITO["sky_blue"],
    "bound": "#7F7F7F",
}

TEMPLATE = "plotly_white"

#: A logarithmic axis whose minor ticks are labelled in full ("20", "0.05"): plotly's default small digits put a
#: "2" to the right of "10" that a reader takes for 2, not 20.
LOG_AXIS: dict[str, str] = {"type": "log", "minorloglabels": "complete"}


def as_array(x: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Convert a tensor, array or sequence to a float64 numpy array (the figures' plain data)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric (tensor, array or sequence), got {type(x).__name__}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def base_layout(
    title: str,
    xaxis_title: str,
    yaxis_title: str,
    *,
    height: int = 420,
    legend_title: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Layout defaults: a title, axis titles (with units), a legend below the plot, the shared template.

    The legend sits under the x axis: a legend that wraps onto several rows above the plot would cover the title.
    """
    layout: dict[str, Any] = {
        "template": TEMPLATE,
        "title": {"text": title, "x": 0.02, "xanchor": "left"},
        "xaxis": {"title": {"text": xaxis_title}},
        "yaxis": {"title": {"text": yaxis_title}},
        "height": height,
        "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
        "legend": {
            "orientation": "h",
            "yanchor": "top",
            "y": -0.18,
            "x": 0.0,
            "title": {"text": legend_title or ""},
        },
        "showlegend": True,
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


@dataclass
class FigureSpec:
    """A figure as plain data: ``traces`` (dicts with a ``"type"``) and ``layout`` (a dict)."""

    traces: list[dict[str, Any]]
    layout: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.traces, Sequence) or any(not isinstance(t, dict) for t in self.traces):
            raise TypeError("traces must be a list of dicts")
        for trace in self.traces:
            if "type" not in trace:
                raise ValueError(f"every trace needs a 'type', got keys {sorted(trace)}")
        if not isinstance(self.layout, dict):
            raise TypeError(f"layout must be a dict, got {type(self.layout).__name__}")

    def to_figure(self) -> go.Figure:
        """The validated plotly figure."""
        return go.Figure(data=self.traces, layout=self.layout)


# Executed by the notebook runner: every figure also carries a static image (see wttm_core.viz.export).
_export.enable_from_environment()
