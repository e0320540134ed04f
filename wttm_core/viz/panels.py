"""Typeset symbols, "what to notice" notes and side-by-side panels, shared by the teaching figures.

- :data:`SYM`: the paper's symbols as plotly HTML (``γ``, ``p^t_T`` with real sub/superscripts), so every label
  reads like the equations;
- :func:`notice`: the annotation that tells a reader what to look at in a figure (one line under the title);
- :func:`side_by_side`: several :class:`~wttm_core.viz.style.FigureSpec` s as one wide figure of panels, so related
  panels sit next to each other and next to their slider (a live panel updates it like any other figure).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wttm_core.viz.style import FigureSpec

__all__ = ["NOTICE_MARGIN_TOP", "PANELS_WIDTH", "SYM", "add_notice", "notice", "notes_of", "side_by_side", "typeset"]

SYM: dict[str, str] = {
    "gamma": "γ",
    "alpha": "α",
    "beta": "β",
    "lambda": "λ",
    "pt": "p<sup>t</sup>",
    "ptT": "p<sup>t</sup><sub>T</sub>",
    "q": "q",
    "qT": "q<sub>T</sub>",
    "U": "U<sub>γ</sub>(p<sup>t</sup>)",
    "H_alpha": "H<sub>α</sub>",
    "H_gamma": "H<sub>γ</sub>",
    "H_1/T": "H<sub>1/T</sub>",
    "D_ttm": "D(p<sup>t</sup><sub>T</sub> ‖ q)",
    "D_kd": "D(p<sup>t</sup><sub>T</sub> ‖ q<sub>T</sub>)",
}


# ASCII spellings in run labels and generated sentences ("TTM (beta=36)", "KD + 10.8 Renyi(alpha=0.25)") and what a
# student reads instead. Run labels themselves stay ASCII: they name run folders (orchestrate.slug) and cached runs.
_TYPESET = (
    (re.compile(r"\bRenyi\b"), "Rényi"),
    (re.compile(r"\bbeta\b"), "β"),
    (re.compile(r"\balpha\b"), "α"),
    (re.compile(r"\bgamma\b"), "γ"),
    (re.compile(r"\blambda\b"), "λ"),
    (re.compile(r"\+- ?std\b"), "± s.d."),
    (re.compile(r"\+-"), "±"),
    (re.compile(r" -> "), " → "),
    (re.compile(r"p\^t_T\b"), "pᵗ_T"),
    (re.compile(r"p\^t\b"), "pᵗ"),
)


def typeset(text: str) -> str:
    """``text`` as a student should read it: Greek letters for ``beta``/``alpha``/``gamma``/``lambda``, "Rényi",
    "± s.d.", "±", "→" and "pᵗ" - for run labels and generated sentences shown in tables, legends and notes. Only
    display text goes through this; labels used as keys (run folders, lookups) stay as they are."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for pattern, replacement in _TYPESET:
        text = pattern.sub(replacement, text)
    return text


PANELS_WIDTH = 1100  # px: side-by-side panels, about the width of a JupyterLab main area at 1400 px
NOTICE_MARGIN_TOP = 105  # room above the plot for the title and a notice of up to two lines


def _wrap(text: str, width: int) -> str:
    """Break ``text`` into lines of at most ``width`` visible characters (HTML tags do not count) with ``<br>``."""
    lines: list[str] = []
    line, visible = "", 0
    for word in text.split(" "):
        size = len(re.sub(r"<[^>]+>", "", word))
        if line and visible + 1 + size > width:
            lines.append(line)
            line, visible = word, size
        else:
            line, visible = (f"{line} {word}" if line else word), visible + (1 if line else 0) + size
    lines.append(line)
    return "<br>".join(lines)


def notice(text: str, *, y: float = 1.0, width: int = 105) -> dict[str, Any]:
    """A layout annotation (paper coordinates, just under the title) saying what to notice in the figure; long
    notes wrap after ``width`` characters (plotly does not wrap text itself). Leave :data:`NOTICE_MARGIN_TOP`
    pixels above the plot."""
    return {
        "text": _wrap(f"<i>Notice:</i> {text}", width),
        "xref": "paper",
        "yref": "paper",
        "x": 0.0,
        "y": y,
        "xanchor": "left",
        "yanchor": "bottom",
        "showarrow": False,
        "align": "left",
        "font": {"size": 12, "color": "#444444"},
    }


def notes_of(specs: Sequence[FigureSpec], where: Sequence[str] = ("left", "middle", "right")) -> str:
    """The :func:`notice` texts of ``specs`` as one note for :func:`side_by_side` ("left: ...; right: ..."), so the
    panels keep what each single figure told the reader. Two panels are "left" and "right", three add "middle"."""
    specs = list(specs)
    names = [where[0], where[-1]] if len(specs) == 2 else list(where)[: len(specs)]
    parts = []
    for name, spec in zip(names, specs, strict=False):
        for annotation in spec.layout.get("annotations", []):
            text = str(annotation.get("text", ""))
            if text.startswith("<i>Notice:</i> "):
                parts.append(f"{name.capitalize()}: " + text.removeprefix("<i>Notice:</i> ").replace("<br>", " "))
    return " ".join(parts)


def add_notice(figure: Any, text: str) -> Any:
    """Add a :func:`notice` to a plotly figure (or ``FigureWidget``) that is already built, with room above the
    plot for it; slider updates that only move data or the title keep it. Returns ``figure``."""
    figure.add_annotation(notice(text))
    figure.update_layout(margin={"t": NOTICE_MARGIN_TOP})
    return figure


def _axis_key(kind: str, index: int) -> str:
    return kind if index == 1 else f"{kind}{index}"


def _panel_title(text: str, x: float) -> dict[str, Any]:
    """A bold title centred at ``x`` (paper coordinates) just above the panels."""
    return {
        "text": f"<b>{text}</b>",
        "xref": "paper",
        "yref": "paper",
        "x": x,
        "y": 1.02,
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 13},
    }


def side_by_side(
    specs: Sequence[FigureSpec],
    *,
    title: str,
    note: str = "",
    titles: Sequence[str] | None = None,
    height: int = 430,
    width: int | None = PANELS_WIDTH,
    gap: float = 0.07,
) -> FigureSpec:
    """Place ``specs`` next to each other as panels of one figure (equal widths, one shared legend below).

    Each panel keeps its axes (titles, ranges, log types) and shows its own title (or ``titles[i]``) above it;
    the traces keep their names, and the legend lists each name once. ``note`` becomes a :func:`notice`
    under the main title. ``width`` (pixels) fills a JupyterLab main area: a live ``FigureWidget`` does not grow to
    its output area by itself (it stays at plotly's 700 px, which squeezes three panels and cuts the note off);
    ``None`` leaves the width to plotly.
    """
    specs = list(specs)
    if not specs or any(not isinstance(s, FigureSpec) for s in specs):
        raise TypeError("specs must be a non-empty sequence of FigureSpec")
    n = len(specs)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per panel ({n}), got {len(titles)}")
    share = (1.0 - gap * (n - 1)) / n  # of the plot width, per panel
    traces: list[dict[str, Any]] = []
    seen: set[Any] = set()
    layout: dict[str, Any] = {**specs[0].layout}
    annotations: list[dict[str, Any]] = [notice(note, y=1.1, width=170)] if note else []
    for i, spec in enumerate(specs, start=1):
        lo = (i - 1) * (share + gap)
        x_key, y_key = _axis_key("xaxis", i), _axis_key("yaxis", i)
        xaxis = {**spec.layout.get("xaxis", {}), "domain": [lo, lo + share], "anchor": _axis_key("y", i)}
        yaxis = {**spec.layout.get("yaxis", {}), "anchor": _axis_key("x", i)}
        yaxis.pop("scaleanchor", None)
        layout[x_key], layout[y_key] = xaxis, yaxis
        for trace in spec.traces:
            placed = {**trace, "xaxis": _axis_key("x", i), "yaxis": _axis_key("y", i)}
            if trace.get("name") in seen or not spec.layout.get("showlegend", True):  # one legend entry per name
                placed["showlegend"] = False  # (panels often show the same runs), none for a panel without a legend
            seen.add(trace.get("name"))
            traces.append(placed)
        panel_title = titles[i - 1] if titles is not None else spec.layout.get("title", {}).get("text", "")
        annotations.append(_panel_title(panel_title, lo + share / 2))
    layout["showlegend"] = any(spec.layout.get("showlegend", True) for spec in specs)
    layout["legend"] = {**layout.get("legend", {}), "y": -0.22}  # below two-line tick labels and the axis titles
    layout["title"] = {"text": title, "x": 0.02, "xanchor": "left"}
    layout["annotations"] = annotations
    layout["height"] = height
    if width is not None:
        layout["width"] = width
    layout["margin"] = {"l": 60, "r": 20, "t": 130 if note else 80, "b": 60}
    layout.pop("barmode", None)
    if any(s.layout.get("barmode") for s in specs):
        layout["barmode"] = "group"
    return FigureSpec(traces, layout)
