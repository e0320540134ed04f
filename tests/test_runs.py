"""Reading run directories: metrics.jsonl, config.json, summary.json, diagnostics.jsonl -> plain structures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wttm_core.runs import (
    aggregate_series,
    final_values,
    find_runs,
    group_runs,
    read_jsonl,
    read_run,
    read_runs,
)


def write_run(
    path: Path,
    *,
    method: str,
    seed: int,
    accs: list[float],
    label: str | None = None,
    finished: bool = True,
    diagnostics: list[dict] | None = None,
) -> Path:
    path.mkdir(parents=True)
    config = {"method": method, "seed": seed, "arch": "resnet8", "extra": {"label": label} if label else {}}
    (path / "config.json").write_text(json.dumps(config))
    rows = [{"epoch": e + 1, "test_acc": a, "student_entropy": 1.0 + 0.1 * e} for e, a in enumerate(accs)]
    rows.reverse()  # the reader must sort by epoch
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    if finished:
        (path / "summary.json").write_text(json.dumps({"best_test_acc": max(accs), "last_test_acc": accs[-1]}))
    if diagnostics is not None:
        (path / "diagnostics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in diagnostics))
    return path


def test_read_run_parses_every_file(tmp_path: Path) -> None:
    diag = [{"epoch": 2, "x": 2}, {"epoch": 1, "x": 1}]
    run = read_run(write_run(tmp_path / "kd-s0", method="kd", seed=0, accs=[10.0, 30.0, 20.0], diagnostics=diag))
    assert run.name == "kd-s0" and run.label == "kd" and run.seed == 0 and run.finished
    assert run.epochs == [1, 2, 3]
    assert run.series("test_acc") == ([1, 2, 3], [10.0, 30.0, 20.0])
    assert run.best() == 30.0 and run.last("test_acc") == 20.0
    assert run.summary == {"best_test_acc": 30.0, "last_test_acc": 20.0}
    assert [r["epoch"] for r in run.diagnostics] == [1, 2]
    assert run.diagnostic()["x"] == 2 and run.diagnostic(1)["x"] == 1


def test_label_prefers_extra_label_and_unfinished_runs_have_no_summary(tmp_path: Path) -> None:
    run = read_run(write_run(tmp_path / "r", method="wttm", seed=3, accs=[1.0], label="WTTM beta=2", finished=False))
    assert run.label == "WTTM beta=2" and not run.finished and run.summary is None


def test_series_skips_epochs_without_a_number_and_names_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    rows = [{"epoch": 1, "kl_transformed_teacher": None}, {"epoch": 2, "kl_transformed_teacher": 0.5}]
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    run = read_run(path)
    assert run.config == {} and run.series("kl_transformed_teacher") == ([2], [0.5])
    with pytest.raises(KeyError, match="weight_mean.*known"):
        run.series("weight_mean")
    with pytest.raises(KeyError, match="diagnostics"):
        run.diagnostic()


def test_bad_files_raise_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    (path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2"):
        read_run(path)
    (path / "metrics.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_jsonl(path / "metrics.jsonl")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_run(tmp_path / "missing")


def test_find_filter_group_and_aggregate(tmp_path: Path) -> None:
    write_run(tmp_path / "a" / "kd-s0", method="kd", seed=0, accs=[10.0, 20.0])
    write_run(tmp_path / "a" / "kd-s1", method="kd", seed=1, accs=[12.0, 24.0])
    write_run(tmp_path / "b" / "wttm-s0", method="wttm", seed=0, accs=[15.0, 25.0, 35.0])
    (tmp_path / "not-a-run").mkdir()
    assert [p.name for p in find_runs(tmp_path)] == ["kd-s0", "kd-s1", "wttm-s0"]
    assert [r.name for r in read_runs(tmp_path, method="kd")] == ["kd-s0", "kd-s1"]
    assert len(read_runs(tmp_path, method=["kd", "wttm"], where=lambda r: r.seed == 0)) == 2
    groups = group_runs(read_runs(tmp_path))
    assert list(groups) == ["kd", "wttm"] and len(groups["kd"]) == 2
    assert list(group_runs(read_runs(tmp_path), by=lambda r: r.seed)) == [0, 1]
    series = aggregate_series(groups["kd"], "test_acc")
    assert series.epochs == [1, 2] and series.mean == [11.0, 22.0] and series.n == 2
    assert series.std == pytest.approx([math.sqrt(2.0), math.sqrt(8.0)])
    single = aggregate_series(groups["wttm"], "test_acc")
    assert single.std is None and single.mean == [15.0, 25.0, 35.0]
    # only epochs every run recorded are aggregated
    assert aggregate_series(groups["kd"] + groups["wttm"], "test_acc").epochs == [1, 2]
    assert final_values(groups["kd"], how="best") == [20.0, 24.0]
    with pytest.raises(ValueError, match="how"):
        final_values(groups["kd"], how="median")
    with pytest.raises(ValueError, match="empty"):
        aggregate_series([], "test_acc")
    with pytest.raises(TypeError, match="by"):
        group_runs([], by=3)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.floats(0, 100), min_size=3, max_size=3), min_size=2, max_size=5))
def test_aggregate_matches_textbook_mean_and_sample_std(tmp_path_factory, values: list[list[float]]) -> None:
    root = tmp_path_factory.mktemp("runs")
    runs = [read_run(write_run(root / f"r{i}", method="kd", seed=i, accs=v)) for i, v in enumerate(values)]
    series = aggregate_series(runs, "test_acc")
    for epoch_index in range(3):
        column = [v[epoch_index] for v in values]
        mean = sum(column) / len(column)
        std = math.sqrt(sum((x - mean) ** 2 for x in column) / (len(column) - 1))
        assert series.mean[epoch_index] == pytest.approx(mean, abs=1e-9)
        assert series.std[epoch_index] == pytest.approx(std, abs=1e-9)
