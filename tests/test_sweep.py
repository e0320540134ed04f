"""The sweep machinery: real papermill execution over a grid, one CSV, a plot, failures reported, re-runs skip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from wttm_core.sweep import (
    expand_points,
    load_sweep,
    main,
    parse_sweep,
    point_id,
    read_results,
    run_sweep,
    write_results,
)

REPO = Path(__file__).resolve().parent.parent

TINY_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "p",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": "x = 1\nfail = False\nresults_dir = None",
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "b",
            "metadata": {},
            "outputs": [],
            "source": (
                "from wttm_core.sweep import write_results\n"
                "if fail:\n    raise RuntimeError(f'point {x} was asked to fail')\n"
                "write_results(results_dir, [{'label': 'square', 'y': x * x}, {'label': 'cube', 'y': x ** 3}])"
            ),
        },
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def make_sweep(tmp_path: Path, **spec: object) -> Path:
    notebook = tmp_path / "tiny.ipynb"
    notebook.write_text(json.dumps(TINY_NOTEBOOK))
    data = {"name": "tiny", "notebook": str(notebook), "timeout": 120, **spec}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_two_point_grid_runs_collects_plots_and_skips_on_rerun(tmp_path: Path) -> None:
    path = make_sweep(tmp_path, grid={"x": [2, 3]}, plot={"x": "x", "y": "y", "colour": "label"})
    out = tmp_path / "sweeps"
    report = run_sweep(load_sweep(path), out=out, log=lambda message: None)
    assert [o.status for o in report.outcomes] == ["done", "done"] and not report.failed
    for outcome in report.outcomes:
        assert (outcome.directory / "notebook.ipynb").is_file() and (outcome.directory / "done.json").is_file()
    rows = read_csv(report.csv_path)
    assert [(r["x"], r["label"], r["y"]) for r in rows] == [
        ("2", "square", "4"),
        ("2", "cube", "8"),
        ("3", "square", "9"),
        ("3", "cube", "27"),
    ]
    assert all(r["point"] for r in rows)
    assert report.plot_path is not None and "plotly.min.js" in report.plot_path.read_text()
    assert (report.root / "plotly.min.js").is_file()
    assert (report.root / "failures.txt").read_text() == ""

    # a re-run skips both points; a grown grid runs only the new point and keeps the old rows
    again = run_sweep(load_sweep(path), out=out, log=lambda message: None)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    grown = run_sweep(
        parse_sweep({"name": "tiny", "notebook": str(tmp_path / "tiny.ipynb"), "grid": {"x": [2, 3, 4]}}),
        out=out,
        log=lambda message: None,
    )
    assert [o.status for o in grown.outcomes] == ["skipped", "skipped", "done"]
    assert [r["y"] for r in read_csv(grown.csv_path)] == ["4", "8", "9", "27", "16", "64"]


@pytest.mark.slow
def test_failed_points_are_reported_and_retried(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_sweep(tmp_path, points=[{"x": 1}, {"x": 5, "fail": True}])
    out = tmp_path / "sweeps"
    assert main([str(path), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 run, 0 skipped, 1 failed" in captured.out
    assert "FAILED" in captured.err and "point 5 was asked to fail" in captured.err
    failed_dir = out / "tiny" / "points" / point_id({"x": 5, "fail": True})
    record = json.loads((failed_dir / "failed.json").read_text())
    assert "point 5 was asked to fail" in record["error"] and record["parameters"] == {"x": 5, "fail": True}
    assert failed_dir.name in (out / "tiny" / "failures.txt").read_text()
    assert [r["x"] for r in read_csv(out / "tiny" / "summary.csv")] == ["1", "1"]  # the failed point has no row
    # the re-run skips the good point and tries the failed one again
    assert main([str(path), "--out", str(out)]) == 1
    assert "0 run, 1 skipped, 1 failed" in capsys.readouterr().out


def test_grid_expansion_ids_and_results_round_trip(tmp_path: Path) -> None:
    spec = parse_sweep(
        {
            "notebook": str(REPO / "notebooks" / "05_train_students.ipynb"),
            "grid": {"methods": [["ttm"], ["wttm"]], "gamma": [0.2, 0.3]},
            "points": [{"gamma": 1.0}],
        }
    )
    points = expand_points(spec)
    assert points == [
        {"methods": ["ttm"], "gamma": 0.2},
        {"methods": ["ttm"], "gamma": 0.3},
        {"methods": ["wttm"], "gamma": 0.2},
        {"methods": ["wttm"], "gamma": 0.3},
        {"gamma": 1.0},
    ]
    ids = [point_id(p) for p in points]
    assert len(set(ids)) == 5 and ids[0].startswith("gamma=0.2_methods=ttm-")
    assert point_id({"gamma": 0.2, "methods": ["ttm"]}) == ids[0]  # key order does not matter
    assert spec.name == "sweep" and spec.results_parameter == "results_dir"
    write_results(tmp_path / "r", {"a": 1})
    assert read_results(tmp_path / "r") == [{"a": 1}] and read_results(tmp_path / "nothing") == []
    with pytest.raises(TypeError, match="records"):
        write_results(tmp_path / "r", [1, 2])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grid": {"x": [1]}}, "notebook must be"),
        ({"notebook": "missing.ipynb", "grid": {"x": [1]}}, "notebook: no such file"),
        ({"notebook": "NB", "grid": {"x": []}}, "grid.x must be a non-empty list"),
        ({"notebook": "NB"}, "needs grid or points"),
        ({"notebook": "NB", "grid": {"x": [1]}, "colour": "x"}, "unknown key"),
        ({"notebook": "NB", "grid": {"x": [1]}, "name": "../evil"}, "name must be a folder name"),
        ({"notebook": "NB", "grid": {"x": [1]}, "plot": {"x": "x"}}, "plot needs at least x and y"),
        ({"notebook": "NB", "grid": {"x": [1]}, "timeout": 0}, "timeout must be"),
        ({"notebook": "NB", "points": [3]}, "points must be a list of mappings"),
        ([1, 2], "must hold a mapping"),
    ],
)
def test_bad_sweep_files_name_the_key(data: object, message: str) -> None:
    notebook = str(REPO / "notebooks" / "05_train_students.ipynb")
    if isinstance(data, dict) and data.get("notebook") == "NB":
        data = {**data, "notebook": notebook}
    with pytest.raises(ValueError, match=message):
        parse_sweep(data)


def test_cli_exits_2_on_a_bad_file_and_lists_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent.yaml")]) == 2
    assert "sweep file not found" in capsys.readouterr().err
    assert main([str(REPO / "sweeps" / "example.yaml"), "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 6 and all("gamma" in line for line in listed)


@pytest.mark.slow
def test_ci_grid_executes_notebook_05_with_the_smoke_profile(tmp_path: Path) -> None:
    """The 2-point CI grid of the repository, for real: notebook 05, profile smoke, two values of gamma."""
    report = run_sweep(load_sweep(REPO / "sweeps" / "ci.yaml"), out=tmp_path, log=print)
    assert [o.status for o in report.outcomes] == ["done", "done"], [o.error for o in report.outcomes]
    rows = read_csv(report.csv_path)
    assert sorted(float(r["gamma"]) for r in rows) == [0.2, 0.4]
    assert all(r["label"] == "WTTM" and float(r["last_mean"]) >= 0 and r["runs"] == "2" for r in rows)
    assert report.plot_path is not None and report.plot_path.is_file()
    # issue 15: the two points share the teacher, so their 2 x 2 students trained as one cohort before the
    # notebooks ran, and each notebook found its runs finished and trained nothing
    assert all(r["cohort_size"] == "4" for r in rows)
    for outcome in report.outcomes:
        text = json.dumps(json.loads((outcome.directory / "notebook.ipynb").read_text())["cells"])
        assert text.count("finished before, reusing") == 2 and ": training" not in text


def test_a_plot_that_cannot_be_drawn_is_reported_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wttm_core.sweep import PointOutcome, collect_rows

    directory = tmp_path / "points" / "x=1"
    write_results(directory / "results", {"label": "a", "y": "not a number"})
    rows = collect_rows([PointOutcome({"x": 1}, directory, "done", 1.0)])
    assert rows == [{"x": 1, "point": "x=1", "label": "a", "y": "not a number"}]
    from wttm_core.sweep import _write_plot

    assert _write_plot(tmp_path, rows, {"x": "x", "y": "y"}) is None
    assert "summary plot skipped" in capsys.readouterr().out
