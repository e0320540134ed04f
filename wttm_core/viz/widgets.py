"""Bind ipywidgets sliders to plotly figures, with one code path for interactive and static notebooks.

A :class:`LivePanel` takes a ``build(**values)`` function returning one :class:`~wttm_core.viz.style.FigureSpec`
(or a list of them) and a list of :class:`Control` s. With ``interactive=True`` it shows sliders, an optional HTML
readout and one ``plotly.graph_objects.FigureWidget`` per figure; moving a slider calls :meth:`LivePanel.update`,
which rebuilds the specs and copies them into the existing widgets inside ``batch_update`` (in place: no new
widget, no flicker). With ``interactive=False`` it shows the same figures as static ``go.Figure`` s at the
controls' values and creates no widget at all, so executed notebooks stay small.

``observe`` callbacks never fire without a browser: tests call :meth:`LivePanel.update` directly and read
``last_update_seconds``.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from wttm_core._checks import check_number
from wttm_core.viz.style import FigureSpec

__all__ = ["Control", "LivePanel", "readout_table"]

Build = Callable[..., FigureSpec | Sequence[FigureSpec]]


@dataclass(frozen=True)
class Control:
    """One slider: its keyword ``name`` in ``build``, start ``value``, range, ``step`` and label.

    ``log=True`` gives a logarithmic slider (for T or gamma, whose interesting range is small): ``min``, ``max`` and
    ``value`` are still the values themselves, ``step`` is the step of ``log10(value)``.
    """

    name: str
    value: float
    min: float
    max: float
    step: float
    description: str = ""
    log: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier, got {self.name!r}")
        for attr in ("min", "max"):
            check_number(f"{attr} of control {self.name!r}", getattr(self, attr))
        if not self.min <= check_number(f"value of control {self.name!r}", self.value) <= self.max:
            raise ValueError(f"value of control {self.name!r} must lie in [{self.min}, {self.max}], got {self.value}")
        check_number(f"step of control {self.name!r}", self.step, low=0, low_open=True)
        if self.log:
            check_number(f"min of the log control {self.name!r}", self.min, low=0, low_open=True)

    @property
    def is_int(self) -> bool:
        """Integer-valued control (an ``IntSlider``): every number of it is an int."""
        return all(isinstance(getattr(self, a), int) for a in ("value", "min", "max", "step"))

    def slider(self) -> Any:
        """A new ipywidgets slider for this control, with a visible readout of the current value."""
        import ipywidgets as widgets

        common = {
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "step": self.step,
            "description": self.description or self.name,
            "readout": True,
            "continuous_update": True,
            "style": {"description_width": "initial"},
            "layout": widgets.Layout(width="420px"),
        }
        if self.is_int and not self.log:
            return widgets.IntSlider(**common)
        if self.log:
            import math

            exponents = {"min": math.log10(self.min), "max": math.log10(self.max)}
            return widgets.FloatLogSlider(base=10, readout_format=".3g", **{**common, **exponents})
        decimals = max(0, min(4, len(f"{self.step:g}".partition(".")[2])))
        return widgets.FloatSlider(readout_format=f".{decimals}f", **common)


def _as_specs(result: FigureSpec | Sequence[FigureSpec]) -> list[FigureSpec]:
    specs = [result] if isinstance(result, FigureSpec) else list(result)
    if not specs or any(not isinstance(s, FigureSpec) for s in specs):
        raise TypeError("build must return a FigureSpec or a non-empty list of FigureSpec")
    return specs


def _same(a: Any, b: Any) -> bool:
    """Deep equality of plain figure data (dicts, lists, numpy arrays, scalars)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _leaf_changes(old: Any, new: dict[str, Any], skip: tuple[str, ...] = (), prefix: str = "") -> dict[str, Any]:
    """The changes that turn ``old`` into ``new``, as ``{"dotted.path": value}`` down to the leaves.

    Nested dicts are compared key by key, so a moved axis range becomes ``{"xaxis2.range": [...]}`` rather than
    a whole new ``xaxis2`` container; a key that ``new`` drops is set to ``None`` (plotly's "back to the
    default"), so no stale property (a ``visible=False``, a fixed range) outlives the spec that set it. Lists,
    arrays and scalars are replaced whole. Without ``old`` every top-level entry of ``new`` is a change.
    """
    if not isinstance(old, dict):
        return {f"{prefix}{k}": v for k, v in new.items() if k not in skip}
    changes: dict[str, Any] = {}
    for key, value in new.items():
        if key in skip:
            continue
        if key in old and isinstance(old[key], dict) and isinstance(value, dict) and old[key] and value:
            changes.update(_leaf_changes(old[key], value, prefix=f"{prefix}{key}."))
        elif key not in old or not _same(old[key], value):
            changes[f"{prefix}{key}"] = value
    changes.update({f"{prefix}{key}": None for key in old if key not in new and key not in skip})
    return changes


def _copy_spec_into(figure: go.Figure, spec: FigureSpec, previous: FigureSpec | None = None) -> None:
    """Overwrite ``figure``'s traces and layout with ``spec`` in place (same number and types of traces).

    With ``previous`` (the spec the figure currently shows) only the properties that changed are sent, as
    dotted paths down to the leaves (:func:`_leaf_changes`): that keeps plotly's validation - the dominant cost
    of an update - small, and lets plotly.js apply a slider move as a cheap restyle / axis-range relayout instead
    of replacing whole axis containers, which forces a full redraw of every subplot. Full redraws queued one
    after another by fast slider moves are what left a live figure blank for a moment in a loaded browser.
    """
    if len(figure.data) != len(spec.traces):
        raise ValueError(
            f"build changed the number of traces from {len(figure.data)} to {len(spec.traces)}; a live figure "
            "needs a fixed structure (hide traces with visible=False instead)"
        )
    with figure.batch_update():
        for i, (trace, new) in enumerate(zip(figure.data, spec.traces, strict=True)):
            if trace.type != new["type"]:
                raise ValueError(f"build changed a trace's type from {trace.type!r} to {new['type']!r}")
            old = previous.traces[i] if previous is not None else None
            for path, value in _leaf_changes(old, new, ("type",)).items():
                trace[path] = value
        old_layout = previous.layout if previous is not None else None
        for path, value in _leaf_changes(old_layout, spec.layout, ("template",)).items():
            figure.layout[path] = value


class LivePanel:
    """Sliders driving one or more figures (and an optional HTML readout) through a pure ``build`` function.

    ``build(**values)`` receives one keyword per control (plus ``fixed`` keywords) and returns the figure
    spec(s); ``readout(**values)`` returns a short HTML string showing the current values and derived numbers.
    """

    def __init__(
        self,
        build: Build,
        controls: Sequence[Control],
        *,
        interactive: bool,
        readout: Callable[..., str] | None = None,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        if not callable(build):
            raise TypeError(f"build must be callable, got {type(build).__name__}")
        if readout is not None and not callable(readout):
            raise TypeError(f"readout must be callable or None, got {type(readout).__name__}")
        if not isinstance(interactive, bool):
            raise TypeError(f"interactive must be a bool, got {type(interactive).__name__}")
        controls = list(controls)
        if any(not isinstance(c, Control) for c in controls):
            raise TypeError("controls must be a sequence of Control")
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"controls must have distinct names, got {names}")
        self._build = build
        self._readout = readout
        self._fixed = dict(fixed or {})
        self.controls = controls
        self.interactive = interactive
        self.values: dict[str, Any] = {c.name: c.value for c in controls}
        self.last_update_seconds: float | None = None
        specs = _as_specs(build(**self._kwargs()))
        self._specs = specs
        self.sliders: dict[str, Any] = {}
        self.readout_widget: Any = None
        self.widget: Any = None
        if interactive:
            import ipywidgets as widgets

            self.figures: list[go.Figure] = [go.FigureWidget(s.to_figure()) for s in specs]
            for control in controls:
                slider = control.slider()
                slider.observe(self._on_change, names="value")
                self.sliders[control.name] = slider
            children: list[Any] = list(self.sliders.values())
            if readout is not None:
                self.readout_widget = widgets.HTML(value=readout(**self._kwargs()))
                children.append(self.readout_widget)
            self.widget = widgets.VBox([*children, *self.figures])
        else:
            self.figures = [s.to_figure() for s in specs]

    def _kwargs(self) -> dict[str, Any]:
        return {**self._fixed, **self.values}

    @property
    def readout_html(self) -> str:
        """The readout for the current values ('' without a readout function)."""
        return self._readout(**self._kwargs()) if self._readout is not None else ""

    def _on_change(self, change: dict[str, Any]) -> None:
        owner = change["owner"]
        name = next(n for n, s in self.sliders.items() if s is owner)
        self.update(**{name: change["new"]})

    def update(self, **values: Any) -> None:
        """Set control values, rebuild the specs and copy them into the figures in place; time the work."""
        unknown = sorted(set(values) - set(self.values))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; known: {sorted(self.values)}")
        start = time.perf_counter()
        self.values.update(values)
        specs = _as_specs(self._build(**self._kwargs()))
        if len(specs) != len(self.figures):
            raise ValueError(f"build returned {len(specs)} figures, the panel shows {len(self.figures)}")
        for figure, spec, previous in zip(self.figures, specs, self._specs, strict=True):
            _copy_spec_into(figure, spec, previous)
        self._specs = specs
        if self.readout_widget is not None:
            self.readout_widget.value = self.readout_html
        self.last_update_seconds = time.perf_counter() - start

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.interactive:
            display(self.widget)
            return
        if self._readout is not None:
            display(HTML(self.readout_html))
        for figure in self.figures:
            display(figure)


def readout_table(rows: Sequence[tuple[str, str]]) -> str:
    """A compact two-column HTML table (label, value) for readouts; labels and values are escaped."""
    body = "".join(
        f"<tr><td style='padding:0 12px 0 0'>{html.escape(label)}</td><td><b>{html.escape(value)}</b></td></tr>"
        for label, value in rows
    )
    return f"<table style='font-family:monospace'>{body}</table>"
