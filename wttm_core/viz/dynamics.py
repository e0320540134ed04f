"""Figure builders for training runs: the paper's Figs. 1-3, per-superclass divergence, result summaries, sweeps.

Every builder takes plain numbers (lists, dicts, :class:`wttm_core.runs.Series`) and returns a
``plotly.graph_objects.Figure`` with a title, axis titles with units and a legend, in a colour-blind-safe
palette; none reads files. The ``*_from_runs`` helpers turn :class:`wttm_core.runs.Run` objects into those
inputs. :class:`LiveCurves` draws test accuracy while the engine trains (a ``FigureWidget`` updated in place
when interactive, a static figure otherwise).

* Fig. 1 - mean student entropy H(q) over epochs (KD vs TTM vs WTTM at T = 4): :func:`epoch_curves_figure` with
  ``metric="student_entropy"``;
* Fig. 2 - mean D(p^t_T || q) over epochs (TTM vs WTTM without CE): ``metric="kl_transformed_teacher"``;
* Fig. 3 - histograms of the student's per-sample output entropy: :func:`entropy_histogram_figure`;
* teacher-student divergence per superclass: :func:`superclass_figure`;
* mean +- std of a final metric per variant with the individual seeds: :func:`group_summary_figure`;
* student accuracy against teacher accuracy (question 9): :func:`teacher_strength_figure`;
* a sweep's summary CSV rows: :func:`sweep_summary_figure`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from wttm_core.runs import Run, Series, aggregate_series, group_runs
from wttm_core.viz.panels import typeset
from wttm_core.viz.style import COLORS, OKABE_ITO, FigureSpec, base_layout
from wttm_core.viz.widgets import _copy_spec_into

__all__ = [
    "METRIC_LABELS",
    "PALETTE",
    "colour_for",
    "label_colours",
    "epoch_curves_figure",
    "curves_from_runs",
    "curves_note",
    "entropy_histogram_figure",
    "histogram_y_max",
    "histograms_from_runs",
    "superclass_figure",
    "superclass_from_runs",
    "group_summary_figure",
    "teacher_strength_figure",
    "sweep_summary_figure",
    "LiveCurves",
    "update_figure",
    "update_entropy_histograms",
    "update_superclass",
    "move_epoch_marker",
]

# y-axis titles (with units) of the metrics the engine writes to metrics.jsonl
METRIC_LABELS: dict[str, str] = {
    "student_entropy": "mean student entropy H(q) on the test set (nats)",
    "kl_transformed_teacher": "mean D(p<sup>t</sup><sub>T</sub> ‖ q) on the test set (nats)",
    "kd_divergence": "mean D(p<sup>t</sup><sub>T</sub> ‖ q<sub>T</sub>) on the test set (nats)",
    "renyi_entropy": "mean Rényi entropy H<sub>1/T</sub>(q) on the test set (nats)",
    "test_acc": "test accuracy (%)",
    "train_acc": "training accuracy (%)",
    "test_loss": "test cross-entropy (nats)",
    "train_loss": "training loss",
    "weight_mean": "mean WTTM weight U<sub>γ</sub>(p<sup>t</sup>) (dimensionless)",
    "teacher_agreement": "agreement with the teacher's top-1 (%)",
    "lr": "learning rate",
}


# the shared Okabe-Ito colours in the order used for labels without a role of their own
PALETTE: tuple[str, ...] = tuple(
    OKABE_ITO[name]
    for name in ("blue", "orange", "bluish_green", "reddish_purple", "vermillion", "sky_blue", "black", "yellow")
)
_ROLE_PREFIXES = (("wttm", "wttm"), ("ttm", "ttm"), ("kd", "kd"))


def colour_for(index: int) -> str:
    """The ``index``-th colour of the shared colour-blind-safe palette (cycling)."""
    return PALETTE[index % len(PALETTE)]


def _role(label: str) -> str | None:
    lowered = label.lower()
    return next((role for prefix, role in _ROLE_PREFIXES if lowered.startswith(prefix)), None)


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per label: the method's own colour from :data:`wttm_core.viz.style.COLORS` (KD vermillion, TTM
    blue, WTTM purple, as in every notebook) for the first label naming that method, else the next free colour
    of :data:`PALETTE` - never another method's colour (a second KD run must not wear WTTM's purple)."""
    out: dict[str, str] = {}
    for label in labels:
        role = _role(label)
        if role is not None and COLORS[role] not in out.values():
            out[label] = COLORS[role]
    reserved = {COLORS[role] for _, role in _ROLE_PREFIXES}
    free = [c for c in PALETTE if c not in reserved and c not in set(out.values())]
    for index, label in enumerate(label for label in labels if label not in out):
        out[label] = free[index % len(free)]
    return out


WHOLE_EPOCH_TICKS = 12  # runs up to this many epochs get one x tick per epoch


def _layout(figure: go.Figure, *, title: str, x_title: str, y_title: str, **extra: Any) -> go.Figure:
    figure.update_layout(**base_layout(title, x_title, y_title, **extra))
    return figure


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _check_curves(curves: Mapping[str, Series]) -> None:
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping label -> Series")
    for label, series in curves.items():
        if not isinstance(series, Series):
            raise TypeError(f"curves[{label!r}] must be a wttm_core.runs.Series, got {type(series).__name__}")
        if len(series.epochs) != len(series.mean) or (series.std is not None and len(series.std) != len(series.mean)):
            raise ValueError(f"curves[{label!r}]: epochs, mean and std must have the same length")


def epoch_curves_figure(
    curves: Mapping[str, Series],
    *,
    metric: str = "test_acc",
    title: str | None = None,
    y_title: str | None = None,
    epoch: int | None = None,
) -> go.Figure:
    """One line per label (mean over seeds) with a shaded +- 1 std band; ``epoch`` draws a marker line.

    With ``metric="student_entropy"`` this is the paper's Fig. 1, with ``"kl_transformed_teacher"`` Fig. 2.
    """
    _check_curves(curves)
    figure = go.Figure()
    colours = label_colours(list(curves))
    for label, series in curves.items():
        colour = colours[label]
        if series.std is not None:
            upper = [m + s for m, s in zip(series.mean, series.std, strict=True)]
            lower = [m - s for m, s in zip(series.mean, series.std, strict=True)]
            figure.add_trace(
                go.Scatter(
                    x=list(series.epochs) + list(series.epochs)[::-1],
                    y=upper + lower[::-1],
                    fill="toself",
                    mode="lines",  # plotly's default for short traces adds markers in the colorway's colours
                    fillcolor=_rgba(colour, 0.18),
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    name=f"{typeset(label)} ± s.d.",
                    legendgroup=label,
                )
            )
        seeds = f" ({series.n} seeds)" if series.n > 1 else ""
        figure.add_trace(
            go.Scatter(
                x=list(series.epochs),
                y=list(series.mean),
                mode="lines+markers",
                name=f"{typeset(label)}{seeds}",
                line={"color": colour, "width": 2.5},
                marker={"size": 6},
                legendgroup=label,
            )
        )
    if epoch is not None:
        figure.add_vline(x=epoch, line={"color": "#555555", "dash": "dot", "width": 1})
    _layout(
        figure,
        title=title or f"{metric} over epochs",
        x_title="epoch",
        y_title=y_title or METRIC_LABELS.get(metric, metric),
    )
    if max((max(s.epochs, default=0) for s in curves.values()), default=0) <= WHOLE_EPOCH_TICKS:
        figure.update_xaxes(dtick=1)  # a short run: one tick per epoch, never a tick at epoch 1.5
    return figure


def curves_from_runs(runs: Sequence[Run], metric: str, *, by: str = "label") -> dict[str, Series]:
    """``{label: Series}`` of ``metric`` averaged over the seeds of each group (see :func:`group_runs`)."""
    return {str(label): aggregate_series(group, metric) for label, group in group_runs(runs, by).items()}


def curves_note(curves: Mapping[str, Series], quantity: str, unit: str = "nats") -> str:
    """A "what to notice" line for :func:`epoch_curves_figure` computed from the whole curves (so it holds at every
    position of the epoch marker): at how many shared epochs the second curve lies above the first, and every
    curve's value at its last epoch (two lines at most for three curves). ``quantity`` names the metric
    ("H(q)"), ``unit`` its unit."""
    _check_curves(curves)
    labels = list(curves)
    ends = ", ".join(f"{typeset(label)} {curves[label].mean[-1]:.3f}" for label in labels) + (
        f" {unit}" if unit else ""
    )
    if len(labels) < 2:
        return f"{quantity} at the last epoch: {ends}."
    first, second = (dict(zip(curves[label].epochs, curves[label].mean, strict=True)) for label in labels[:2])
    shared = sorted(set(first) & set(second))
    above = sum(second[e] > first[e] for e in shared)
    first_label, second_label = typeset(labels[0]), typeset(labels[1])
    return (
        f"{second_label} is above {first_label} in {quantity} at {above} of {len(shared)} epochs; last epoch: {ends}."
    )


def _titled(title: str, epoch: int | None) -> str:
    return title + (f" (epoch {epoch})" if epoch is not None else "")


def _histogram_data(histograms: Mapping[str, Mapping[str, Sequence[float]]]) -> list[dict[str, Any]]:
    """Per label the bar centres, widths, fractions of images and the legend name with the mean entropy."""
    if not isinstance(histograms, Mapping) or not histograms:
        raise ValueError("histograms must be a non-empty mapping label -> {'edges', 'counts'}")
    data = []
    for label, hist in histograms.items():
        edges, counts = list(hist["edges"]), list(hist["counts"])
        if len(edges) != len(counts) + 1:
            raise ValueError(f"histograms[{label!r}]: need len(edges) == len(counts) + 1")
        total = sum(counts) or 1
        centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        mean = sum(c * n for c, n in zip(centres, counts, strict=True)) / total
        data.append({"x": centres, "y": [n / total for n in counts], "name": f"{typeset(label)} (mean {mean:.2f})"})
    return data


def histogram_y_max(histograms: Sequence[Mapping[str, Mapping[str, Sequence[float]]]]) -> float:
    """The largest fraction of images in any bin of any of ``histograms`` (e.g. every epoch's), with 5 % room:
    a fixed y range, so that moving the epoch slider moves the curves, not the axis."""
    top = max(
        (max(h["counts"]) / (sum(h["counts"]) or 1) for hists in histograms for h in hists.values() if h["counts"]),
        default=1.0,
    )
    return 1.05 * top


def entropy_histogram_figure(
    histograms: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    title: str = "Student output entropy on the test set",
    epoch: int | None = None,
    y_max: float | None = None,
) -> go.Figure:
    """Histograms ``{label: {"edges": [...], "counts": [...]}}`` as fractions of the test images (Fig. 3).

    The labels' bars stand side by side within each bin (no overlapping, see-through fills); ``y_max`` fixes the
    y range (:func:`histogram_y_max` over all epochs) so that a slider moving to another epoch
    (:func:`update_entropy_histograms`, data only) keeps the axis. Counts of several seeds can be summed first.
    """
    figure = go.Figure()
    colours = label_colours(list(histograms))
    for label, data in zip(histograms, _histogram_data(histograms), strict=True):
        figure.add_trace(go.Bar(**data, marker={"color": colours[label], "line": {"width": 0}}))
    _layout(
        figure,
        title=_titled(title, epoch),
        x_title="student output entropy H(q) (nats)",
        y_title="fraction of test images",
    )
    figure.update_layout(barmode="group", bargap=0.1, bargroupgap=0.0)
    if y_max is not None:
        figure.update_yaxes(range=[0.0, float(y_max)])
    return figure


def _assign(figure: go.Figure, data: Sequence[Mapping[str, Any]], title: str) -> None:
    """Set the given trace properties and the title in place (inside ``batch_update`` for a FigureWidget)."""
    if len(figure.data) != len(data):
        raise ValueError(f"the figure has {len(figure.data)} traces, the new data {len(data)}")
    context = figure.batch_update() if hasattr(figure, "batch_update") else contextlib.nullcontext()
    with context:
        for trace, values in zip(figure.data, data, strict=True):
            trace.update(values)
        figure.layout.title.text = title


def update_entropy_histograms(
    figure: go.Figure,
    histograms: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    title: str = "Student output entropy on the test set",
    epoch: int | None = None,
) -> None:
    """Put new histograms (same labels, same order) into a figure made by :func:`entropy_histogram_figure`."""
    _assign(figure, _histogram_data(histograms), _titled(title, epoch))


def move_epoch_marker(figure: go.Figure, epoch: int) -> None:
    """Move the dotted epoch line of a figure made by :func:`epoch_curves_figure` with an ``epoch``."""
    if not figure.layout.shapes:
        raise ValueError("the figure has no epoch marker (build it with epoch=...)")
    figure.layout.shapes[0].update(x0=epoch, x1=epoch)


def _summed_histogram(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    edges = rows[0]["entropy_histogram"]["edges"]
    counts = [0] * (len(edges) - 1)
    for row in rows:
        hist = row["entropy_histogram"]
        if hist["edges"] != edges:
            raise ValueError("entropy histograms with different bins cannot be summed")
        counts = [a + b for a, b in zip(counts, hist["counts"], strict=True)]
    return {"edges": edges, "counts": counts}


def histograms_from_runs(runs: Sequence[Run], *, epoch: int | None = None) -> dict[str, dict[str, list[float]]]:
    """``{label: histogram}`` at ``epoch`` (default: each run's last), counts summed over each group's seeds."""
    return {
        str(label): _summed_histogram([run.diagnostic(epoch) for run in group])
        for label, group in group_runs(runs).items()
    }


def _superclass_data(
    names: Sequence[str], values: Mapping[str, Sequence[float]], order: Sequence[int] | None
) -> list[dict[str, Any]]:
    if not values:
        raise ValueError("values must be a non-empty mapping label -> per-superclass list")
    for label, vals in values.items():
        if len(vals) != len(names):
            raise ValueError(f"values[{label!r}] has {len(vals)} entries for {len(names)} superclasses")
    if order is None:
        first = next(iter(values.values()))
        order = sorted(range(len(names)), key=lambda i: first[i])
    elif sorted(order) != list(range(len(names))):
        raise ValueError(f"order must be a permutation of 0..{len(names) - 1}")
    return [
        {"y": [names[i] for i in order], "x": [vals[i] for i in order], "name": typeset(label)}
        for label, vals in values.items()
    ]


def superclass_figure(
    names: Sequence[str],
    values: Mapping[str, Sequence[float]],
    *,
    title: str = "Teacher-student divergence per superclass",
    x_title: str = "mean D(p<sup>t</sup><sub>T</sub> ‖ q) on the test images of the superclass (nats)",
    epoch: int | None = None,
    order: Sequence[int] | None = None,
) -> go.Figure:
    """Grouped horizontal bars: one bar per label for each superclass.

    Superclasses appear in ``order`` (indices into ``names``), by default sorted by the first label's value; a
    slider keeps one order and moves the data with :func:`update_superclass`.
    """
    figure = go.Figure()
    colours = label_colours(list(values))
    for label, data in zip(values, _superclass_data(names, values, order), strict=True):
        figure.add_trace(go.Bar(**data, orientation="h", marker={"color": colours[label]}))
    _layout(figure, title=_titled(title, epoch), x_title=x_title, y_title="superclass")
    figure.update_layout(barmode="group", height=max(420, 26 * len(names) * max(1, len(values)) // 2))
    return figure


def update_superclass(
    figure: go.Figure,
    names: Sequence[str],
    values: Mapping[str, Sequence[float]],
    *,
    title: str = "Teacher-student divergence per superclass",
    epoch: int | None = None,
    order: Sequence[int] | None = None,
) -> None:
    """Put new per-superclass values (same labels) into a figure made by :func:`superclass_figure`."""
    _assign(figure, _superclass_data(names, values, order), _titled(title, epoch))


def superclass_from_runs(
    runs: Sequence[Run], *, key: str = "kl_transformed_teacher", epoch: int | None = None
) -> dict[str, list[float]]:
    """``{label: per-superclass mean of key}`` at ``epoch`` (default last), averaged over each group's seeds."""
    out = {}
    for label, group in group_runs(runs).items():
        rows = [run.diagnostic(epoch)["superclass"][key] for run in group]
        out[str(label)] = [sum(col) / len(col) for col in zip(*rows, strict=True)]
    return out


def group_summary_figure(
    values: Mapping[str, Sequence[float]],
    *,
    title: str,
    y_title: str = "test accuracy (%)",
    reference: float | None = None,
    reference_label: str = "reference",
) -> go.Figure:
    """The mean per label as a large marker with +- 1 std error bars, and every seed's value as a small dot.

    Markers, not bars: the y axis is zoomed to the data, and bars on a truncated axis would exaggerate differences.
    """
    if not values:
        raise ValueError("values must be a non-empty mapping label -> list of numbers")
    labels = list(values)
    means, stds = [], []
    for label in labels:
        xs = [float(v) for v in values[label]]
        if not xs:
            raise ValueError(f"values[{label!r}] is empty")
        mean = sum(xs) / len(xs)
        means.append(mean)
        stds.append(math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)
    colours = label_colours(labels)
    figure = go.Figure(
        go.Scatter(
            x=[typeset(label) for label in labels],
            y=means,
            mode="markers",
            error_y={"type": "data", "array": stds, "visible": True, "color": "#333333", "thickness": 2},
            marker={"color": [colours[label] for label in labels], "size": 16, "symbol": "diamond"},
            name="mean ± s.d. over seeds",
            hovertemplate="%{x}: %{y:.2f}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[typeset(label) for label in labels for _ in values[label]],
            y=[float(v) for label in labels for v in values[label]],
            mode="markers",
            marker={"color": "#222222", "size": 7, "symbol": "circle-open"},
            name="one seed",
        )
    )
    if reference is not None:
        figure.add_hline(
            y=reference,
            line={"color": "#555555", "dash": "dash"},
            annotation_text=reference_label,
            annotation_position="top left",
        )
    lows = [m - s for m, s in zip(means, stds, strict=True)] + [float(v) for vs in values.values() for v in vs]
    highs = [m + s for m, s in zip(means, stds, strict=True)] + [float(v) for vs in values.values() for v in vs]
    span = max(highs) - min(lows) or 1.0
    _layout(figure, title=title, x_title="variant", y_title=y_title)
    figure.update_yaxes(range=[min(lows) - 0.3 * span, max(highs) + 0.3 * span])
    return figure


def teacher_strength_figure(
    teacher_accuracy: Sequence[float],
    students: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "Student accuracy against teacher accuracy",
    y_title: str = "student test accuracy (%)",
) -> go.Figure:
    """Lines with error bars: ``students = {method: (means, stds)}`` against the teachers' test accuracy (%)."""
    figure = go.Figure()
    colours = label_colours(list(students))
    for label, (means, stds) in students.items():
        if len(means) != len(teacher_accuracy) or len(stds) != len(teacher_accuracy):
            raise ValueError(f"students[{label!r}] needs one mean and one std per teacher")
        figure.add_trace(
            go.Scatter(
                x=list(teacher_accuracy),
                y=list(means),
                mode="lines+markers",
                name=typeset(label),
                error_y={"type": "data", "array": list(stds), "visible": True},
                line={"color": colours[label], "width": 2.5},
                marker={"size": 8},
            )
        )
    _layout(figure, title=title, x_title="teacher test accuracy (%)", y_title=y_title)
    return figure


def sweep_summary_figure(
    rows: Sequence[Mapping[str, Any]],
    *,
    x: str,
    y: str,
    colour: str | None = None,
    error: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """A sweep's result rows: ``y`` against ``x``, one line per value of ``colour``, optional error bars."""
    usable = [row for row in rows if _number(row.get(y)) is not None and row.get(x) not in (None, "")]
    if not usable:
        raise ValueError(f"no row has both {x!r} and a numeric {y!r}")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in usable:
        groups.setdefault(str(row.get(colour, "")) if colour else y, []).append(row)
    figure = go.Figure()
    numeric_x = all(_number(row[x]) is not None for row in usable)
    for index, (name, group) in enumerate(groups.items()):
        if numeric_x:
            group = sorted(group, key=lambda r: _number(r[x]))  # type: ignore[arg-type, return-value]
        errors = [_number(r.get(error)) or 0.0 for r in group] if error else None
        figure.add_trace(
            go.Scatter(
                x=[_number(r[x]) if numeric_x else str(r[x]) for r in group],
                y=[_number(r[y]) for r in group],
                mode="lines+markers",
                name=f"{colour} = {name}" if colour else y,
                error_y={"type": "data", "array": errors, "visible": True} if errors else None,
                line={"color": colour_for(index), "width": 2.5},
                marker={"size": 8},
            )
        )
    _layout(figure, title=title or f"Sweep: {y} against {x}", x_title=x, y_title=METRIC_LABELS.get(y, y))
    return figure


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def update_figure(target: go.Figure, source: go.Figure) -> None:
    """Copy ``source`` into ``target`` in place (a ``FigureWidget`` driven by a slider).

    The one way a live figure is updated: ``source`` goes through the same in-place copy as a
    :class:`~wttm_core.viz.widgets.LivePanel`'s figures (inside ``batch_update``). Both must have the same number and
    kinds of traces (they come from the same builder).
    """
    spec = FigureSpec([trace.to_plotly_json() for trace in source.data], source.layout.to_plotly_json())
    _copy_spec_into(target, spec)


class LiveCurves:
    """Test accuracy of every run while it trains: one line per run, one colour per label.

    ``interactive=True`` builds a ``plotly.graph_objects.FigureWidget`` (display it before training; each
    :meth:`update` appends a point in place); otherwise a plain figure collects the points for display afterwards.
    """

    def __init__(
        self,
        labels: Sequence[str],
        *,
        metric: str = "test_acc",
        interactive: bool = False,
        title: str = "Test accuracy while training",
    ) -> None:
        if not labels:
            raise ValueError("labels must not be empty")
        self.metric = metric
        self._colours = label_colours(list(labels))
        figure = go.Figure()
        _layout(figure, title=title, x_title="epoch", y_title=METRIC_LABELS.get(metric, metric))
        self.figure: go.Figure = go.FigureWidget(figure) if interactive else figure
        self._trace: dict[str, int] = {}

    def update(self, label: str, seed: int, record: Mapping[str, Any]) -> None:
        """Add the epoch ``record`` (a ``metrics.jsonl`` row) of run ``label`` / ``seed``."""
        if label not in self._colours:
            raise ValueError(f"label: {label!r} was not announced (known: {list(self._colours)})")
        key = f"{label} seed {seed}"
        value = record.get(self.metric)
        if value is None:
            return
        if key not in self._trace:
            first_of_label = not any(k.startswith(f"{label} seed ") for k in self._trace)
            self.figure.add_trace(
                go.Scatter(
                    x=[],
                    y=[],
                    mode="lines+markers",
                    name=typeset(label),
                    legendgroup=label,
                    showlegend=first_of_label,
                    line={"color": self._colours[label], "width": 2},
                    marker={"size": 5},
                )
            )
            self._trace[key] = len(self.figure.data) - 1
        trace = self.figure.data[self._trace[key]]
        trace.x = (*(trace.x or ()), record["epoch"])
        trace.y = (*(trace.y or ()), float(value))
