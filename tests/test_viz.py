"""Tests for wttm_core.viz: figure builders (traces, titles, axis labels, values) and the slider panel, headless."""

from __future__ import annotations

import math
import statistics

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import wttm_core as W
from wttm_core import theory as th
from wttm_core.viz import Control, FigureSpec, LivePanel, check_answer, distribution_bars, markdown_table
from wttm_core.viz import decomposition as vdec
from wttm_core.viz import distributions as vd
from wttm_core.viz import gradients as vg
from wttm_core.viz import weights as vw
from wttm_core.viz.style import COLORS, LOG_AXIS, OKABE_ITO, as_array, base_layout

F64 = torch.float64
UPDATE_BUDGET_S = 0.050  # issue 5: a slider update recomputes its figures in well under 50 ms


@pytest.fixture(autouse=True)
def _one_thread():
    """The notebooks run these builders with one intra-op thread (tiny tensors); so do the tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _title(fig: go.Figure) -> str:
    return fig.layout.title.text


def _axis_titles(fig: go.Figure) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


@pytest.fixture(scope="module")
def teacher_probs() -> torch.Tensor:
    logits, _ = th.sample_teacher_logits(64, 10, num_superclasses=5, seed=0)
    return torch.softmax(logits[3].double(), -1)


# ------------------------------------------------------------------------------------------------ style


def test_palette_is_okabe_ito_and_roles_use_it():
    assert len(OKABE_ITO) == 8 and OKABE_ITO["vermillion"] == "#D55E00" and OKABE_ITO["blue"] == "#0072B2"
    method_colors = [COLORS[m] for m in ("kd", "ttm", "wttm", "teacher", "transformed", "student")]
    assert len(set(method_colors)) == len(method_colors)
    assert set(method_colors) <= set(OKABE_ITO.values())


def test_as_array_and_base_layout():
    assert as_array(torch.tensor([1, 2]), "x").dtype == np.float64
    assert as_array([[1.0]], "x", ndim=2).shape == (1, 1)
    with pytest.raises(ValueError, match="x must be 1-D"):
        as_array([[1.0]], "x", ndim=1)
    with pytest.raises(TypeError, match="x must be numeric"):
        as_array(["a"], "x")
    layout = base_layout("T", "x (nats)", "y", yaxis={"type": "log"})
    assert layout["yaxis"] == {"title": {"text": "y"}, "type": "log"}
    assert layout["title"]["text"] == "T" and layout["template"]


def test_figure_spec_validation():
    with pytest.raises(ValueError, match="type"):
        FigureSpec([{"x": [1]}])
    with pytest.raises(TypeError, match="layout"):
        FigureSpec([], layout=[])
    fig = FigureSpec([{"type": "bar", "y": [1, 2]}], {"title": {"text": "t"}}).to_figure()
    assert isinstance(fig, go.Figure) and _title(fig) == "t"


# ------------------------------------------------------------------------------------------------ distributions


def test_distribution_bars():
    fig = distribution_bars({"a": [0.5, 0.5], "b": torch.tensor([0.9, 0.1])}, title="Two", class_names=["x", "y"])
    assert [t.name for t in fig.data] == ["a", "b"] and all(t.type == "bar" for t in fig.data)
    assert list(fig.data[1].y) == pytest.approx([0.9, 0.1]) and list(fig.data[0].x) == ["x", "y"]
    assert _title(fig) == "Two" and _axis_titles(fig) == ("class", "probability")
    assert fig.data[0].marker.color != fig.data[1].marker.color
    with pytest.raises(ValueError, match="same number of classes"):
        distribution_bars({"a": [1.0], "b": [0.5, 0.5]})
    with pytest.raises(ValueError, match="class_names"):
        distribution_bars({"a": [0.5, 0.5]}, class_names=["x"])
    with pytest.raises(ValueError, match="non-empty"):
        distribution_bars({})


def test_power_transform_figure_values(teacher_probs):
    fig = vd.power_transform_spec(teacher_probs, 4.0).to_figure()
    assert len(fig.data) == 2
    assert np.allclose(fig.data[0].y, teacher_probs.numpy())
    assert np.allclose(fig.data[1].y, torch.softmax(teacher_probs.log() / 4.0, -1).numpy(), atol=1e-12)
    assert "γ = 1/T = 0.25" in _title(fig) and "T = 4" in _title(fig)
    assert _axis_titles(fig) == ("class", "probability") and tuple(fig.layout.yaxis.range) == (0.0, 1.0)
    readout = vd.power_transform_readout(teacher_probs, 4.0)
    assert f"{float(W.power_sum(teacher_probs, 0.25)):.4f}" in readout and f"{10**0.75:.4f}" in readout


def test_renyi_figure_values(teacher_probs):
    alphas = [0.1, 0.5, 1.0, 2.0, 10.0]
    fig = vd.renyi_spec(teacher_probs, 2.0, alphas=alphas).to_figure()
    assert [t.type for t in fig.data] == ["scatter"] * 5
    assert np.allclose(fig.data[0].y, th.renyi_curve(teacher_probs, alphas).numpy())
    transformed = W.power_transform(teacher_probs, 0.5)
    assert np.allclose(fig.data[1].y, th.renyi_curve(transformed, alphas).numpy())
    assert list(fig.data[2].x) == [0.5, 0.5]  # the order 1/T of Eq. 15
    assert fig.data[3].y[0] == pytest.approx(math.log(10))
    assert fig.data[4].y[0] == pytest.approx(float(W.shannon_entropy(teacher_probs)))
    assert fig.layout.xaxis.type == "log" and "nats" in _axis_titles(fig)[1]
    with pytest.raises(ValueError, match="alphas"):
        vd.renyi_spec(teacher_probs, 2.0, alphas=[0.0, 1.0]).to_figure()


def test_pointwise_map_figure():
    fig = vd.pointwise_map_spec(0.3, reference_gammas=(0.5,)).to_figure()
    assert len(fig.data) == 3 and fig.data[0].name.startswith("identity")
    assert np.allclose(fig.data[-1].y, np.asarray(fig.data[-1].x) ** 0.3)
    assert _axis_titles(fig) == ("p (probability)", "f(p) (unnormalised weight)")
    with pytest.raises(ValueError, match="gamma"):
        vd.pointwise_map_spec(0.0).to_figure()


# ------------------------------------------------------------------------------------------------ decomposition


@pytest.fixture(scope="module")
def batch_logits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    v, y = th.sample_teacher_logits(12, 10, num_superclasses=5, seed=1)
    g = torch.Generator().manual_seed(2)
    z = 0.5 * v.double() + torch.randn(12, 10, generator=g, dtype=F64)
    return z, v.double(), y


def test_eq15_waterfall_adds_up(batch_logits):
    z, v, _ = batch_logits
    fig = vdec.eq15_waterfall_spec(z, v, 4.0).to_figure()
    (trace,) = fig.data
    assert trace.type == "bar" and len(trace.y) == 4  # one bar per term, coloured by role
    assert list(trace.marker.color) == [COLORS["kd"], COLORS["renyi"], COLORS["bound"], COLORS["ttm"]]
    assert "cancel" in fig.layout.annotations[0].text
    kd, minus_renyi, teacher, ttm = trace.y
    terms = W.kd_ttm_decomposition(z, v, 4.0)
    assert kd == pytest.approx(float((4 * terms["kd"]).mean()), abs=1e-12)
    assert minus_renyi == pytest.approx(-float((3 * terms["renyi"]).mean()), abs=1e-12)
    assert ttm == pytest.approx(float(W.ttm_loss(z, v, 0.25)), abs=1e-12)
    assert kd + minus_renyi + teacher == pytest.approx(ttm, abs=1e-10)
    assert "Eq. 15" in _title(fig) and _axis_titles(fig) == ("term of Eq. 15", "batch mean (nats)")


def test_tradeoff_curves_and_marker(batch_logits):
    z, v, _ = batch_logits
    temps = [1.0, 2.0, 3.0, 6.0]
    fig = vdec.tradeoff_spec(z, v, 3.0, temperatures=temps).to_figure()
    kd, renyi, teacher, ttm, marker = (np.asarray(t.y) for t in fig.data)
    assert np.allclose(kd - renyi + teacher, ttm, atol=1e-10)
    assert renyi[0] == 0 and list(fig.data[4].x) == [3.0] * 4
    assert marker == pytest.approx([kd[2], renyi[2], teacher[2], ttm[2]])
    assert _axis_titles(fig) == ("temperature T", "batch mean (nats)") and fig.layout.xaxis.type == "log"
    note = fig.layout.annotations[0].text  # the note matches the curve
    assert f"{kd[0]:.2f} at T = 1" in note and ("ends lower" in note) == (kd[-1] < kd[0])


def test_optimal_students_figure_and_readout(batch_logits):
    _, v, y = batch_logits
    fig = vdec.optimal_students_spec(v[0], int(y[0]), 4.0, 36.0).to_figure()
    assert len(fig.data) == 4
    q_ttm = th.optimal_student_ttm(v[:1], y[:1], 36.0, 0.25)[0]
    q_kd = th.optimal_student_kd(v[:1], y[:1], 0.9, 4.0)[0]
    assert np.allclose(fig.data[3].y, q_ttm.numpy()) and np.allclose(fig.data[2].y, q_kd.numpy(), atol=1e-10)
    assert f"H = {float(W.shannon_entropy(q_ttm)):.2f}" in fig.data[3].name
    assert "λ = 0.900" in _title(fig)
    readout = vdec.optimal_students_readout(v[0], int(y[0]), 4.0, 36.0)
    assert "0.9000" in readout and f"{float(W.renyi_entropy(q_ttm, 0.25)):.4f}" in readout
    with pytest.raises(ValueError, match="label"):
        vdec.optimal_students_spec(v[0], 10, 4.0, 36.0).to_figure()


# ------------------------------------------------------------------------------------------------ gradients


def test_simplex_figure_geometry():
    v, z = [3.0, 1.0, -1.0], [0.0, 2.5, 0.0]
    fig = vg.simplex_spec(v, 4.0, z, steps=300, lr=2.0).to_figure()
    names = [t.name for t in fig.data]
    assert len(fig.data) == 11 and names[-4] == "teacher p<sup>t</sup>"
    teacher_xy = th.simplex_xy(torch.softmax(torch.tensor(v, dtype=F64), -1))
    assert (fig.data[-4].x[0], fig.data[-4].y[0]) == pytest.approx(tuple(teacher_xy.tolist()))
    kd_flow, ttm_flow = fig.data[2], fig.data[3]
    assert (kd_flow.x[-1], kd_flow.y[-1]) == pytest.approx(tuple(teacher_xy.tolist()), abs=1e-6)
    transformed_xy = th.simplex_xy(torch.softmax(torch.tensor(v, dtype=F64) / 4.0, -1))
    assert (ttm_flow.x[-1], ttm_flow.y[-1]) == pytest.approx(tuple(transformed_xy.tolist()), abs=1e-6)
    kd_tempered = fig.data[6]  # KD's q_T ends on the transformed teacher, where TTM's q ends
    assert names[6].startswith("KD: path of q<sub>T</sub>")
    assert (kd_tempered.x[-1], kd_tempered.y[-1]) == pytest.approx(tuple(transformed_xy.tolist()), abs=1e-6)
    # the TTM arrow points where q moves under one TTM step (Eq. 20)
    zt, vt = torch.tensor([z], dtype=F64), torch.tensor([v], dtype=F64)
    direction = th.simplex_xy(th.probability_velocity(zt, W.ttm_grad(zt, vt, 0.25)))[0]
    arrow = np.array([fig.data[5].x[1] - fig.data[5].x[0], fig.data[5].y[1] - fig.data[5].y[0]])
    assert np.allclose(arrow / np.linalg.norm(arrow), (direction / direction.norm()).numpy())
    assert fig.layout.xaxis.visible is False and _title(fig).startswith("KD and TTM")
    with pytest.raises(ValueError, match="3 logits"):
        vg.simplex_spec([1.0, 2.0], 4.0, z).to_figure()


def test_power_transform_note_says_which_way_the_transform_goes():
    p = torch.softmax(torch.tensor([3.0, 1.0, 0.0, -1.0], dtype=F64), -1)
    flatter, sharper, same = (vd.power_transform_note(p, t) for t in (4.0, 0.25, 1.0))
    assert "flatter" in flatter and f"{float(W.power_transform(p, 0.25).max()):.2f}" in flatter
    assert "sharper" in sharper and "spreads" not in sharper  # T < 1 takes mass from the other classes
    assert "changes nothing" in same and f"has {float(p.max()):.2f}" in same


def test_log_axes_label_minor_ticks_in_full():
    """A "2" printed right of "10" on a log axis means 20: base_layout asks plotly for complete minor labels."""
    assert LOG_AXIS == {"type": "log", "minorloglabels": "complete"}
    fig = vdec.sharpness_spec(torch.tensor([2.0, 0.0, -1.0], dtype=F64), 0, 4.0, 36.0).to_figure()
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.minorloglabels == "complete"
    z = torch.zeros(4, 5, dtype=F64)
    v = th.sample_teacher_logits(4, 5, num_superclasses=5, seed=0)[0].double()
    fig = vdec.tradeoff_spec(z, v, 3.0).to_figure()
    assert fig.layout.xaxis.minorloglabels == fig.layout.yaxis.minorloglabels == "complete"
    assert vd.renyi_spec(torch.softmax(v[0], -1), 2.0).to_figure().layout.xaxis.minorloglabels == "complete"


def test_simplex_notice_follows_the_temperature():
    """At T = 1 the KD and TTM flows are one (q_T = q, p^t_T = p^t): the note must not call the teacher sharper."""
    v, z = [3.0, 1.0, -1.0], [0.0, 2.5, 0.0]
    at_one = vg.simplex_spec(v, 1.0, z, steps=200).to_figure()
    note = at_one.layout.annotations[0].text
    assert "coincide" in note and "sharper" not in note
    kd_flow, ttm_flow = at_one.data[2], at_one.data[3]  # the figure agrees with the note
    assert np.allclose(kd_flow.x, ttm_flow.x) and np.allclose(kd_flow.y, ttm_flow.y)
    above = vg.simplex_notice(4.0)
    assert "sharper teacher" in above and "coincide" not in above


def test_flow_curves_spec():
    v = th.sample_teacher_logits(8, 10, num_superclasses=5, seed=0)[0].double()
    flows = {"KD": th.gradient_flow(v, "kd", 4.0, steps=6), "TTM": th.gradient_flow(v, "ttm", 4.0, steps=6)}
    fig = vg.flow_curves_spec(
        flows, ("divergence", "tempered_divergence"), title="t", yaxis_title="nats", references={"ref": 1.0}
    ).to_figure()
    d_q, d_qt = vg.QUANTITY_LABELS["divergence"], vg.QUANTITY_LABELS["tempered_divergence"]
    assert d_q == "D(p<sup>t</sup><sub>T</sub> ‖ q)"
    assert [t.name for t in fig.data] == [f"KD: {d_q}", f"KD: {d_qt}", f"TTM: {d_q}", f"TTM: {d_qt}", "ref"]
    assert np.allclose(fig.data[2].y, flows["TTM"].divergence.mean(-1).numpy())
    assert fig.data[0].line.color == COLORS["kd"] and fig.data[2].line.color == COLORS["ttm"]
    assert fig.data[1].line.dash != fig.data[0].line.dash and list(fig.data[4].y) == [1.0, 1.0]
    assert _axis_titles(fig) == ("gradient step", "nats")
    assert vg.flow_curves_spec(flows, title="t", yaxis_title="y", log_y=True).to_figure().layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="quantities"):
        vg.flow_curves_spec(flows, ("loss",), title="t", yaxis_title="y").to_figure()
    with pytest.raises(TypeError, match="FlowResult"):
        vg.flow_curves_spec({"x": 1}, title="t", yaxis_title="y").to_figure()


# ------------------------------------------------------------------------------------------------ weights


@pytest.fixture(scope="module")
def weights_batch() -> tuple[np.ndarray, np.ndarray]:
    v, _ = th.sample_teacher_logits(500, 100, seed=0)
    return vw.weights_and_entropy(v, 0.25)


def test_weights_and_entropy(weights_batch):
    weights, entropy = weights_batch
    v, _ = th.sample_teacher_logits(500, 100, seed=0)
    assert np.allclose(weights, W.wttm_weights(v.double(), 0.25).numpy())
    assert np.allclose(entropy, W.shannon_entropy(torch.softmax(v.double(), -1)).numpy())


def test_power_sum_scatter(weights_batch):
    weights, entropy = weights_batch
    fig = vw.power_sum_scatter_spec(weights, entropy, 0.25, 100).to_figure()
    assert np.allclose(fig.data[0].y, weights) and np.allclose(fig.data[0].x, entropy)
    assert fig.data[1].y[0] == pytest.approx(100**0.75) and list(fig.data[2].y) == [1.0, 1.0]
    assert _axis_titles(fig) == (
        "teacher entropy H(p<sup>t</sup>) (nats)",
        "weight U<sub>γ</sub>(p<sup>t</sup>) (unitless)",
    )
    with pytest.raises(ValueError, match="same length"):
        vw.power_sum_scatter_spec(weights[:3], entropy, 0.25, 100).to_figure()


def test_power_sum_histogram(weights_batch):
    weights, _ = weights_batch
    fig = vw.power_sum_histogram_spec(weights, 0.25, 100, bins=20).to_figure()
    assert sum(fig.data[0].y) == weights.size and len(fig.data[0].x) == 20
    assert fig.data[1].x[0] == pytest.approx(weights.mean())
    assert _axis_titles(fig)[1] == "number of samples"
    with pytest.raises(ValueError, match="bins"):
        vw.power_sum_histogram_spec(weights, 0.25, 100, bins=0).to_figure()


def test_weight_share(weights_batch):
    weights, entropy = weights_batch
    fig = vw.weight_share_spec(weights, entropy, 0.25, groups=4).to_figure()
    ttm, wttm = (np.asarray(t.y) for t in fig.data)
    assert ttm == pytest.approx([0.25] * 4) and wttm.sum() == pytest.approx(1.0)
    assert bool(np.all(np.diff(wttm) > 0))  # smoother groups get more of WTTM's weight
    smoothest = np.argsort(entropy, kind="stable")[-125:]
    assert wttm[-1] == pytest.approx(weights[smoothest].sum() / weights.sum())
    readout = vw.weights_readout(weights, 0.25, 100)
    assert f"{weights.mean():.3f}" in readout and f"{100**0.75:.3f}" in readout


# ------------------------------------------------------------------------------------------------ tables


def test_markdown_table_and_check_answer(capsys):
    table = markdown_table(["a", "b|c"], [(1, 0.5), ("x|y", True)], float_format=".2f")
    assert table.splitlines() == ["| a | b\\|c |", "|---|---|", "| 1 | 0.50 |", "| x\\|y | yes |"]
    with pytest.raises(ValueError, match="rows\\[0\\]"):
        markdown_table(["a"], [(1, 2)])
    assert check_answer(None, 1.0) is None
    assert check_answer(63.0, 63.1, rel_tol=0.01) is True
    assert check_answer(50, 63.1) is False
    assert "Not answered" in capsys.readouterr().out
    with pytest.raises(TypeError, match="answer"):
        check_answer("63", 63.1)


# ------------------------------------------------------------------------------------------------ panels


def _bars(height: float) -> FigureSpec:
    return FigureSpec(
        [{"type": "bar", "x": [0, 1], "y": [height, 1 - height], "name": "p"}],
        base_layout(f"h = {height:.2f}", "class", "probability"),
    )


def test_control_validation():
    assert Control("seed", 0, 0, 10, 1).is_int and not Control("t", 1.0, 0.5, 2.0, 0.1).is_int
    with pytest.raises(ValueError, match="identifier"):
        Control("a b", 1.0, 0.0, 2.0, 0.1)
    with pytest.raises(ValueError, match="lie in"):
        Control("t", 3.0, 0.0, 2.0, 0.1)
    with pytest.raises(ValueError, match="step"):
        Control("t", 1.0, 0.0, 2.0, 0.0)
    with pytest.raises(TypeError, match="value"):
        Control("t", "1", 0.0, 2.0, 0.1)


def test_static_panel_has_no_widgets_and_updates():
    panel = LivePanel(_bars, [Control("height", 0.3, 0.0, 1.0, 0.05)], interactive=False)
    assert panel.widget is None and panel.sliders == {} and type(panel.figures[0]) is go.Figure
    panel.update(height=0.8)
    assert list(panel.figures[0].data[0].y) == pytest.approx([0.8, 0.2]) and _title(panel.figures[0]) == "h = 0.80"
    with pytest.raises(ValueError, match="unknown control"):
        panel.update(width=1.0)


def test_interactive_panel_builds_widgets_headless_and_a_slider_moves_the_figure_in_place():
    import ipywidgets

    panel = LivePanel(
        _bars,
        [Control("height", 0.3, 0.0, 1.0, 0.05, "height h")],
        interactive=True,
        readout=lambda height: f"<b>h = {height:.2f}</b>",
    )
    figure = panel.figures[0]
    assert isinstance(figure, go.FigureWidget) and isinstance(panel.widget, ipywidgets.VBox)
    slider = panel.sliders["height"]
    assert isinstance(slider, ipywidgets.FloatSlider) and slider.readout and slider.description == "height h"
    slider.value = 0.65  # traitlets observers fire on Python-side changes: the same path as a browser drag
    assert panel.figures[0] is figure
    assert list(figure.data[0].y) == pytest.approx([0.65, 0.35]) and _title(figure) == "h = 0.65"
    assert panel.readout_widget.value == "<b>h = 0.65</b>" and panel.last_update_seconds is not None
    int_panel = LivePanel(lambda seed: _bars(seed / 10), [Control("seed", 1, 0, 9, 1)], interactive=True)
    assert isinstance(int_panel.sliders["seed"], ipywidgets.IntSlider)


def test_panel_refuses_a_change_of_structure():
    panel = LivePanel(
        lambda n: FigureSpec([{"type": "scatter", "y": [0]}] * int(n)), [Control("n", 1, 1, 3, 1)], interactive=True
    )
    with pytest.raises(ValueError, match="number of traces"):
        panel.update(n=2)
    with pytest.raises(TypeError, match="FigureSpec"):
        LivePanel(lambda: go.Figure(), [], interactive=False)
    with pytest.raises(ValueError, match="distinct"):
        LivePanel(_bars, [Control("height", 0.3, 0, 1, 0.1)] * 2, interactive=False)


def test_a_slider_move_sends_leaf_changes_and_clears_dropped_properties():
    """A live update sends only the changed leaves (``xaxis.range``, ``title.text``, ``y``) - not whole axis
    containers, which make plotly.js redraw every subplot - and a property the new spec drops is reset."""

    def build(height):
        layout = base_layout(f"h = {height:.2f}", "class", "probability", yaxis={"range": [0, 2 * height]})
        trace = {"type": "bar", "x": [0, 1], "y": [height, 1 - height], "name": "p"}
        if height > 0.5:
            trace["visible"] = "legendonly"
        return FigureSpec([trace], layout)

    panel = LivePanel(build, [Control("height", 0.3, 0.0, 1.0, 0.05)], interactive=True)
    figure = panel.figures[0]
    sent = []
    real = figure.plotly_update

    def record(restyle_data=None, relayout_data=None, trace_indexes=None, **kwargs):
        sent.append((dict(restyle_data or {}), dict(relayout_data or {})))
        return real(restyle_data=restyle_data, relayout_data=relayout_data, trace_indexes=trace_indexes, **kwargs)

    figure.plotly_update = record
    panel.sliders["height"].value = 0.8
    restyle, relayout = sent[-1]
    assert set(relayout) == {"title.text", "yaxis.range"}, relayout
    assert set(restyle) == {"y", "visible"}, restyle
    assert figure.data[0].visible == "legendonly" and list(figure.layout.yaxis.range) == pytest.approx([0, 1.6])
    panel.sliders["height"].value = 0.4  # the spec drops `visible` again: the trace must not stay hidden
    assert figure.data[0].visible is None and set(sent[-1][0]) == {"y", "visible"}
    assert list(figure.layout.yaxis.title.text) and figure.layout.yaxis.title.text == "probability"


def _notebook_panels() -> dict[str, tuple[LivePanel, str]]:
    """The panels of notebooks 01-04 at their default parameters, with the control each test moves."""
    logits, _ = th.sample_teacher_logits(64, 10, num_superclasses=5, seed=0)
    probs = torch.softmax(logits.double(), -1)
    p = probs[int((probs.max(-1).values - 0.8).abs().argmin())]
    v16, y16 = th.sample_teacher_logits(16, 10, num_superclasses=5, seed=0)
    v16 = v16.double()
    z16 = 0.5 * v16 + 1.5 * torch.randn(16, 10, generator=torch.Generator().manual_seed(0), dtype=F64)
    v1000 = th.sample_teacher_logits(1000, 100, seed=0)[0].double()
    entropy = W.shannon_entropy(torch.softmax(v1000, -1)).numpy()
    student3 = torch.tensor([0.0, 2.5, 0.0], dtype=F64)

    def weights_build(gamma):
        weights = W.wttm_weights(v1000, gamma).numpy()
        return [
            vw.power_sum_scatter_spec(weights, entropy, gamma, 100),
            vw.power_sum_histogram_spec(weights, gamma, 100),
            vw.weight_share_spec(weights, entropy, gamma),
        ]

    temperature = Control("temperature", 4.0, 1.0, 10.0, 0.1)
    return {
        "01 power transform (3 figures)": (
            LivePanel(
                lambda temperature: [
                    vd.power_transform_spec(p, temperature),
                    vd.renyi_spec(p, temperature),
                    vd.pointwise_map_spec(1 / temperature),
                ],
                [Control("temperature", 4.0, 0.25, 10.0, 0.05)],
                interactive=True,
                readout=lambda temperature: vd.power_transform_readout(p, temperature),
            ),
            "temperature",
        ),
        "02 Eq. 15 (2 figures)": (
            LivePanel(
                lambda temperature: [
                    vdec.eq15_waterfall_spec(z16, v16, temperature),
                    vdec.tradeoff_spec(z16, v16, temperature),
                ],
                [temperature],
                interactive=True,
            ),
            "temperature",
        ),
        "02 optimal students (beta)": (
            LivePanel(
                lambda temperature, beta: vdec.optimal_students_spec(v16[0], int(y16[0]), temperature, beta),
                [temperature, Control("beta", 36.0, 0.5, 100.0, 0.5)],
                interactive=True,
                readout=lambda temperature, beta: vdec.optimal_students_readout(v16[0], int(y16[0]), temperature, beta),
            ),
            "beta",
        ),
        "03 simplex (T)": (
            LivePanel(
                lambda temperature: vg.simplex_spec([3.0, 1.0, -1.0], temperature, student3),
                [temperature],
                interactive=True,
            ),
            "temperature",
        ),
        "04 weights (3 figures, 1000 outputs)": (
            LivePanel(
                weights_build,
                [Control("gamma", 0.25, 0.05, 0.95, 0.01)],
                interactive=True,
                readout=lambda gamma: vw.weights_readout(W.wttm_weights(v1000, gamma).numpy(), gamma, 100),
            ),
            "gamma",
        ),
    }


def test_slider_updates_of_the_notebook_panels_take_well_under_50_ms():
    """Issue 5: slider callbacks do only cheap work. Median of 12 moves across each slider's range."""
    report = []
    for name, (panel, control_name) in _notebook_panels().items():
        control = next(c for c in panel.controls if c.name == control_name)
        times = []
        for i in range(1, 13):
            value = round(control.min + (control.max - control.min) * i / 13, 2)
            panel.sliders[control_name].value = value  # through the observer, as a browser drag would
            times.append(panel.last_update_seconds)
        report.append((name, statistics.median(times), max(times)))
    print("\nslider update (median / max over 12 moves):")
    for name, median, worst in report:
        print(f"  {name:40s} {1000 * median:6.1f} ms / {1000 * worst:6.1f} ms")
    slow = [(name, round(1000 * median, 1)) for name, median, _ in report if median > UPDATE_BUDGET_S]
    assert not slow, f"median update over {1000 * UPDATE_BUDGET_S:.0f} ms: {slow}"


# ------------------------------------------------------------------------------------------------ teaching views


def test_side_by_side_panels_and_notice(teacher_probs):
    from wttm_core.viz.panels import notice, side_by_side

    fig = vd.power_transform_panels_spec(teacher_probs, 4.0).to_figure()
    assert {t.xaxis for t in fig.data} == {"x", "x2", "x3"} and fig.layout.xaxis3.type is None
    assert fig.layout.xaxis2.type == "log" and fig.layout.xaxis.domain[1] < fig.layout.xaxis2.domain[0]
    assert "lifts the small probabilities" in fig.layout.annotations[0].text
    assert "sharpens" in vd.power_transform_panels_spec(teacher_probs, 0.5).layout["annotations"][0]["text"]
    assert notice("x")["text"].endswith("x")
    with pytest.raises(ValueError, match="titles"):
        side_by_side([vd.pointwise_map_spec(0.5)], title="t", titles=["a", "b"])


def test_sharpness_view_marks_each_minimiser(batch_logits):
    _, v, y = batch_logits
    spec = vdec.sharpness_spec(v[0], int(y[0]), 4.0, 36.0)
    fig = spec.to_figure()
    kd_star, ttm_star = fig.data[1], fig.data[3]
    assert kd_star.x[0] > 1.0 > ttm_star.x[0]  # KD's best student sharper than the teacher, TTM's smoother
    assert fig.layout.xaxis.type == "log" and "KD's best student sits at" in fig.layout.annotations[0].text


def test_shared_student_figure_styles_differ():
    from wttm_core.theory import shared_student as ss

    data = ss.shared_student_data(40, 20, 10, 4)
    runs = {w: ss.train_shared_student(data, w, 0.25, steps=10, record_every=5) for w in ss.WEIGHTINGS}
    fig = vw.shared_student_spec(runs, split="test").to_figure()
    styles = {(t.line.color, t.line.dash) for t in fig.data}
    assert len(styles) == 3 and np.allclose(fig.data[0].y, runs["ttm"].test.numpy())
    with pytest.raises(ValueError, match="split"):
        vw.shared_student_spec(runs, split="valid")
    v = th.sample_teacher_logits(8, 10, num_superclasses=5, seed=0)[0].double()
    flows = {
        "WTTM": th.gradient_flow(v, "wttm", 4.0, steps=4),
        "WTTM / mean U": th.gradient_flow(v, "wttm", 4.0, steps=4, normalize_weights=True),
    }
    fig = vg.flow_curves_spec(flows, title="t", yaxis_title="y", note="n").to_figure()
    assert fig.data[0].line.dash != fig.data[1].line.dash and "n" in fig.layout.annotations[0].text


def test_log_control_gives_a_log_slider():
    control = Control("temperature", 4.0, 0.25, 10.0, 0.01, "T", log=True)
    slider = control.slider()
    assert type(slider).__name__ == "FloatLogSlider" and slider.value == pytest.approx(4.0)
    assert slider.min == pytest.approx(math.log10(0.25)) and slider.max == pytest.approx(1.0)
    with pytest.raises(ValueError, match="log control"):
        Control("t", 1.0, 0.0, 10.0, 0.01, log=True)


def test_side_by_side_lists_each_name_once_and_wraps_notes():
    from wttm_core.viz.panels import PANELS_WIDTH, notice, side_by_side

    spec = vd.pointwise_map_spec(0.5)
    fig = side_by_side([spec, spec], title="t").to_figure()
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert len(shown) == len(set(shown)) == len(spec.traces)
    assert fig.layout.width == PANELS_WIDTH == 1100  # a FigureWidget stays 700 px wide unless told
    assert side_by_side([spec, spec], title="t", width=None).to_figure().layout.width is None
    wrapped = notice("word " * 60, width=50)["text"]
    assert wrapped.count("<br>") >= 5 and all(len(line) <= 60 for line in wrapped.split("<br>"))


def test_typeset_gives_students_symbols_but_leaves_keys_alone():
    from wttm_core.runs import Series
    from wttm_core.viz.dynamics import curves_note, epoch_curves_figure, group_summary_figure
    from wttm_core.viz.panels import typeset

    assert typeset("TTM (beta=36)") == "TTM (β=36)" and typeset("KD + 2 Renyi(alpha=0.25)") == "KD + 2 Rényi(α=0.25)"
    assert typeset("KD (T=4) +- std") == "KD (T=4) ± s.d." and typeset("KD -> TTM") == "KD → TTM"
    assert typeset("| 1.95 +- 0.55 | resnet56 -> resnet20 |") == "| 1.95 ± 0.55 | resnet56 → resnet20 |"
    assert typeset("weight H(p^t_T) vs weight 1 - max p^t") == "weight H(pᵗ_T) vs weight 1 - max pᵗ"
    assert typeset("alphabet, betamax, kd+10.8*renyi") == "alphabet, betamax, kd+10.8*renyi"  # words and method keys
    with pytest.raises(TypeError, match="text"):
        typeset(3)
    curves = {
        "KD (T=4)": Series([1, 2], [1.0, 1.1], [0.1, 0.1], 3),
        "TTM (beta=36)": Series([1, 2], [1.2, 1.3], [0.1, 0.1], 3),
    }
    names = [t.name for t in epoch_curves_figure(curves, metric="student_entropy").data]
    assert "TTM (β=36) (3 seeds)" in names and "TTM (β=36) ± s.d." in names and not any("beta" in n for n in names)
    assert "TTM (β=36) is above KD (T=4)" in curves_note(curves, "H(q)")
    summary = group_summary_figure({"KD + 10.8 Renyi at lr 0.5": [1.0, 2.0], "KD": [1.5, 1.0]}, title="t")
    assert list(summary.data[0].x) == ["KD + 10.8 Rényi at lr 0.5", "KD"]


def test_side_by_side_keeps_each_panels_notice_and_legend_choice(batch_logits):
    from wttm_core.viz.panels import notes_of, side_by_side

    z, v, y = batch_logits
    specs = [vdec.eq15_waterfall_spec(z, v, 4.0), vdec.tradeoff_spec(z, v, 4.0)]
    note = notes_of(specs)
    assert note.startswith("Left: the Rényi and constant bars") and " Right: the KD term " in note
    assert "<br>" not in note and "Notice:" not in note
    fig = side_by_side(specs, title="Eq. 15", note=note).to_figure()
    assert fig.layout.showlegend and fig.data[0].showlegend is False  # the waterfall has no legend entry
    assert [t.showlegend for t in fig.data[1:]] == [None] * 5 and "Left:" in fig.layout.annotations[0].text
    three = [vd.pointwise_map_spec(0.5)] * 3
    assert notes_of(three) == "" and notes_of([vdec.sharpness_spec(v[0], int(y[0]), 4.0, 36.0)]).startswith("Left: ")


def test_training_figures_colour_typeset_labels_by_method():
    from wttm_core.viz.dynamics import entropy_histogram_figure, superclass_figure

    values = {"KD (T=4)": [0.3, 0.1], "TTM (beta=36)": [0.6, 0.5], "WTTM (beta=36/mean U)": [0.2, 0.4]}
    bars = superclass_figure(["fish", "trees"], values)
    assert [t.name for t in bars.data] == ["KD (T=4)", "TTM (β=36)", "WTTM (β=36/mean U)"]
    assert [t.marker.color for t in bars.data] == [COLORS["kd"], COLORS["ttm"], COLORS["wttm"]]
    hist = entropy_histogram_figure({"TTM (beta=36)": {"edges": [0.0, 1.0, 2.0], "counts": [1, 3]}})
    assert hist.data[0].name == "TTM (β=36) (mean 1.25)" and hist.data[0].marker.color == COLORS["ttm"]
