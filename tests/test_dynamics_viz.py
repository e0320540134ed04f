"""Figure builders for training dynamics: traces, titles, axis labels and values for given inputs (no browser)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import plotly.graph_objects as go
import pytest

from wttm_core.runs import Series, read_runs
from wttm_core.viz.dynamics import (
    PALETTE,
    LiveCurves,
    colour_for,
    curves_from_runs,
    curves_note,
    entropy_histogram_figure,
    epoch_curves_figure,
    group_summary_figure,
    histogram_y_max,
    histograms_from_runs,
    label_colours,
    move_epoch_marker,
    superclass_figure,
    superclass_from_runs,
    sweep_summary_figure,
    teacher_strength_figure,
    update_entropy_histograms,
    update_figure,
    update_superclass,
)
from wttm_core.viz.panels import NOTICE_MARGIN_TOP, add_notice
from wttm_core.viz.style import COLORS, OKABE_ITO


def titles(figure: go.Figure) -> tuple[str, str, str]:
    return figure.layout.title.text, figure.layout.xaxis.title.text, figure.layout.yaxis.title.text


def test_epoch_curves_have_bands_units_and_an_epoch_marker() -> None:
    curves = {
        "KD": Series([1, 2, 3], [0.5, 0.6, 0.7], [0.1, 0.1, 0.2], 3),
        "TTM": Series([1, 2, 3], [2.0, 2.5, 3.0], None, 1),
    }
    figure = epoch_curves_figure(curves, metric="student_entropy", title="Fig. 1", epoch=2)
    assert titles(figure) == ("Fig. 1", "epoch", "mean student entropy H(q) on the test set (nats)")
    band, kd, ttm = figure.data
    assert band.fill == "toself" and band.showlegend is False and band.mode == "lines"
    assert list(band.y) == pytest.approx([0.6, 0.7, 0.9, 0.5, 0.5, 0.4])  # mean + std, then mean - std reversed
    assert kd.name == "KD (3 seeds)" and list(kd.y) == [0.5, 0.6, 0.7] and kd.line.color == COLORS["kd"]
    assert ttm.name == "TTM" and ttm.line.color == COLORS["ttm"]
    assert [shape.x0 for shape in figure.layout.shapes] == [2]
    with pytest.raises(ValueError, match="non-empty"):
        epoch_curves_figure({})
    with pytest.raises(ValueError, match="same length"):
        epoch_curves_figure({"x": Series([1, 2], [1.0], None, 1)})


def test_palette_is_okabe_ito_and_methods_keep_their_colours() -> None:
    assert set(PALETTE) == set(OKABE_ITO.values()) and colour_for(len(PALETTE)) == colour_for(0)
    colours = label_colours(["KD (T=4)", "TTM (beta=36)", "WTTM (beta=36/mean U)", "CE"])
    assert colours["KD (T=4)"] == COLORS["kd"] and colours["TTM (beta=36)"] == COLORS["ttm"]
    assert colours["WTTM (beta=36/mean U)"] == COLORS["wttm"]
    assert colours["CE"] not in {COLORS["kd"], COLORS["ttm"], COLORS["wttm"]}
    # two KD runs in one figure cannot share KD's colour: both get distinct palette colours
    two = label_colours(["KD (T=1)", "KD (T=4)", "CE"])
    assert len(set(two.values())) == 3
    # the first KD keeps KD's colour; the second never borrows another method's (no KD in WTTM's purple)
    assert two["KD (T=1)"] == COLORS["kd"] and two["KD (T=4)"] not in {COLORS["ttm"], COLORS["wttm"]}
    assert label_colours(["CE", "label smoothing", "KD (T=4)", "KD (T=1)"])["KD (T=4)"] == COLORS["kd"]


def test_entropy_histograms_are_fractions_with_the_mean_in_the_legend() -> None:
    hist = {"CE": {"edges": [0.0, 1.0, 2.0], "counts": [1, 3]}, "KD T=4": {"edges": [0.0, 1.0, 2.0], "counts": [4, 0]}}
    figure = entropy_histogram_figure(hist, epoch=5)
    assert titles(figure) == (
        "Student output entropy on the test set (epoch 5)",
        "student output entropy H(q) (nats)",
        "fraction of test images",
    )
    ce, kd = figure.data
    assert list(ce.x) == [0.5, 1.5] and list(ce.y) == [0.25, 0.75] and ce.name == "CE (mean 1.25)"
    assert list(kd.y) == [1.0, 0.0] and kd.name == "KD T=4 (mean 0.50)"
    # side by side, not overlaid see-through fills (issue 17: overlapping fills were hard to read)
    assert figure.layout.barmode == "group"
    fixed = entropy_histogram_figure(
        hist, y_max=histogram_y_max([hist, {"CE": {"edges": [0, 1, 2], "counts": [0, 2]}}])
    )
    assert tuple(fixed.layout.yaxis.range) == pytest.approx((0.0, 1.05))  # one range for every epoch
    with pytest.raises(ValueError, match="edges"):
        entropy_histogram_figure({"x": {"edges": [0, 1], "counts": [1, 2]}})


def test_superclass_bars_are_sorted_by_the_first_label() -> None:
    names = ["fish", "trees", "people"]
    figure = superclass_figure(names, {"KD": [0.3, 0.1, 0.2], "TTM": [0.6, 0.5, 0.4]})
    kd, ttm = figure.data
    assert list(kd.y) == ["trees", "people", "fish"] and list(kd.x) == [0.1, 0.2, 0.3]
    assert list(ttm.x) == [0.5, 0.4, 0.6] and kd.orientation == "h"
    assert titles(figure)[1].endswith("(nats)") and titles(figure)[2] == "superclass"
    with pytest.raises(ValueError, match="superclasses"):
        superclass_figure(names, {"KD": [0.1]})


def test_group_summary_shows_mean_std_and_every_seed() -> None:
    figure = group_summary_figure({"KD": [70.0, 72.0], "WTTM": [75.0]}, title="Q8", reference=71.0)
    means, dots = figure.data
    assert means.mode == "markers" and list(means.y) == [71.0, 75.0]
    assert list(means.error_y.array) == pytest.approx([math.sqrt(2.0), 0.0])
    assert list(dots.x) == ["KD", "KD", "WTTM"] and list(dots.y) == [70.0, 72.0, 75.0]
    assert titles(figure) == ("Q8", "variant", "test accuracy (%)")
    assert figure.layout.shapes[0].y0 == 71.0
    with pytest.raises(ValueError, match="empty"):
        group_summary_figure({"KD": []}, title="x")


def test_teacher_strength_lines() -> None:
    figure = teacher_strength_figure([60.0, 70.0], {"KD": ([50.0, 51.0], [0.5, 0.4]), "WTTM": ([52.0, 55.0], [1, 1])})
    assert [t.name for t in figure.data] == ["KD", "WTTM"] and list(figure.data[1].y) == [52.0, 55.0]
    assert titles(figure)[1] == "teacher test accuracy (%)"
    with pytest.raises(ValueError, match="one mean"):
        teacher_strength_figure([60.0], {"KD": ([1.0, 2.0], [0.0, 0.0])})


def test_sweep_summary_groups_by_colour_and_sorts_numeric_x() -> None:
    rows = [
        {"gamma": "0.3", "methods": "ttm", "best_mean": 60.0, "best_std": 1.0},
        {"gamma": "0.2", "methods": "ttm", "best_mean": 58.0, "best_std": 2.0},
        {"gamma": "0.2", "methods": "wttm", "best_mean": 59.0, "best_std": ""},
        {"gamma": "0.3", "methods": "wttm", "best_mean": "not run"},
    ]
    figure = sweep_summary_figure(rows, x="gamma", y="best_mean", colour="methods", error="best_std")
    ttm, wttm = figure.data
    assert ttm.name == "methods = ttm" and list(ttm.x) == [0.2, 0.3] and list(ttm.y) == [58.0, 60.0]
    assert list(ttm.error_y.array) == [2.0, 1.0]
    assert list(wttm.x) == [0.2]  # the row without a number is left out
    with pytest.raises(ValueError, match="numeric"):
        sweep_summary_figure(rows, x="gamma", y="missing")


def test_update_figure_copies_data_in_place() -> None:
    a = epoch_curves_figure({"KD": Series([1, 2], [1.0, 2.0], None, 1)}, epoch=1)
    b = epoch_curves_figure({"KD": Series([1, 2], [3.0, 4.0], None, 1)}, epoch=2, title="new")
    widget = go.FigureWidget(a)
    update_figure(widget, b)
    assert list(widget.data[0].y) == [3.0, 4.0] and widget.layout.title.text == "new"
    assert widget.layout.shapes[0].x0 == 2
    with pytest.raises(ValueError, match="traces"):
        update_figure(widget, go.Figure())


def test_live_curves_append_points_per_run() -> None:
    live = LiveCurves(["KD", "WTTM"], interactive=True)
    assert isinstance(live.figure, go.FigureWidget)
    live.update("KD", 0, {"epoch": 1, "test_acc": 10.0})
    live.update("KD", 0, {"epoch": 2, "test_acc": 20.0})
    live.update("KD", 1, {"epoch": 1, "test_acc": 12.0})
    live.update("WTTM", 0, {"epoch": 1, "test_acc": None})  # nothing recorded: no trace
    assert len(live.figure.data) == 2
    first, second = live.figure.data
    assert list(first.x) == [1, 2] and list(first.y) == [10.0, 20.0] and first.showlegend is True
    assert second.showlegend is False and second.line.color == first.line.color
    static = LiveCurves(["KD"], interactive=False)
    static.update("KD", 0, {"epoch": 1, "test_acc": 5.0})
    assert not isinstance(static.figure, go.FigureWidget) and list(static.figure.data[0].y) == [5.0]
    with pytest.raises(ValueError, match="announced"):
        live.update("TTM", 0, {"epoch": 1, "test_acc": 1.0})


def _write_run(path: Path, label: str, seed: int, hist: list[int], kl: list[float]) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"method": "kd", "seed": seed, "extra": {"label": label}}))
    (path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "student_entropy": 1.0 + seed}) + "\n")
    row = {
        "epoch": 1,
        "entropy_histogram": {"edges": [0.0, 1.0, 2.0], "counts": hist},
        "superclass": {"kl_transformed_teacher": kl},
    }
    (path / "diagnostics.jsonl").write_text(json.dumps(row) + "\n")


def test_builders_from_runs_average_seeds(tmp_path: Path) -> None:
    _write_run(tmp_path / "a0", "KD", 0, [1, 1], [0.1, 0.3])
    _write_run(tmp_path / "a1", "KD", 1, [2, 0], [0.3, 0.5])
    runs = read_runs(tmp_path)
    assert histograms_from_runs(runs) == {"KD": {"edges": [0.0, 1.0, 2.0], "counts": [3, 1]}}
    assert superclass_from_runs(runs)["KD"] == pytest.approx([0.2, 0.4])
    series = curves_from_runs(runs, "student_entropy")["KD"]
    assert series.mean == [1.5] and series.n == 2


def test_slider_updates_move_data_without_rebuilding() -> None:
    first = {"CE": {"edges": [0.0, 1.0, 2.0], "counts": [1, 3]}}
    widget = go.FigureWidget(entropy_histogram_figure(first, epoch=1))
    update_entropy_histograms(widget, {"CE": {"edges": [0.0, 1.0, 2.0], "counts": [3, 1]}}, epoch=2)
    assert list(widget.data[0].y) == [0.75, 0.25] and widget.data[0].name == "CE (mean 0.75)"
    assert widget.layout.title.text.endswith("(epoch 2)")
    names = ["fish", "trees", "people"]
    bars = go.FigureWidget(superclass_figure(names, {"KD": [0.3, 0.1, 0.2]}, order=[2, 0, 1]))
    assert list(bars.data[0].y) == ["people", "fish", "trees"]
    update_superclass(bars, names, {"KD": [0.9, 0.8, 0.7]}, order=[2, 0, 1], epoch=4)
    assert list(bars.data[0].x) == [0.7, 0.9, 0.8] and "(epoch 4)" in bars.layout.title.text
    with pytest.raises(ValueError, match="permutation"):
        superclass_figure(names, {"KD": [0.3, 0.1, 0.2]}, order=[0, 0, 1])
    with pytest.raises(ValueError, match="traces"):
        update_entropy_histograms(widget, {**first, "KD": first["CE"]})
    curves = go.FigureWidget(epoch_curves_figure({"KD": Series([1, 2, 3], [1.0, 2.0, 3.0], None, 1)}, epoch=1))
    move_epoch_marker(curves, 3)
    assert curves.layout.shapes[0].x0 == 3 and curves.layout.shapes[0].x1 == 3
    with pytest.raises(ValueError, match="marker"):
        move_epoch_marker(go.Figure(), 2)


def test_curves_note_counts_epochs_from_the_whole_curves_and_stays_through_marker_moves() -> None:
    curves = {
        "KD": Series([1, 2, 3], [0.5, 0.6, 0.7], None, 1),
        "TTM": Series([1, 2, 3], [0.4, 0.9, 1.2], None, 1),
    }
    note = curves_note(curves, "entropy")
    assert note == "TTM is above KD in entropy at 2 of 3 epochs; last epoch: KD 0.700, TTM 1.200 nats."
    assert curves_note({"KD": curves["KD"]}, "entropy", unit="") == "entropy at the last epoch: KD 0.700."
    figure = add_notice(epoch_curves_figure(curves, metric="student_entropy", title="Fig. 1", epoch=1), note)
    move_epoch_marker(figure, 3)
    assert "Notice:" in figure.layout.annotations[-1].text and figure.layout.margin.t == NOTICE_MARGIN_TOP
    with pytest.raises(ValueError, match="curves"):
        curves_note({}, "entropy")


def test_a_short_run_gets_one_tick_per_epoch_and_a_long_one_plotly_s_own() -> None:
    short = epoch_curves_figure({"KD": Series([1, 2, 3], [0.5, 0.6, 0.7], None, 1)})
    assert short.layout.xaxis.dtick == 1  # no tick at epoch 1.5
    epochs = list(range(1, 241))
    long = epoch_curves_figure({"KD": Series(epochs, [0.5] * len(epochs), None, 1)})
    assert long.layout.xaxis.dtick is None
