"""Sweep points that share a teacher train as cohorts, and notebook 05's timing column says whose time it is.

:func:`train_variant_runs` trains the runs of several :func:`run_variants` calls (a sweep's points, each with its
own folder) as one cohort where they share the teacher and the data; each ``run_variants`` call then finds its
runs finished and trains nothing, and the runs equal those its own call trains (CPU, float32, deterministic).
The sweep plans the points of notebook 05 through the notebook's own setup (tested for real, with papermill, in
``test_sweep.py``'s CI grid); a point that cannot be planned runs as before.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from run_configs import tiny_run_config

from wttm_core.data import load_dataset
from wttm_core.lab.experiments.orchestrate import VariantRuns, run_variants, train_variant_runs, with_shared_data
from wttm_core.lab.experiments.students import epoch_timing
from wttm_core.lab.experiments.variants import method_variant
from wttm_core.runs import Run
from wttm_core.sweep import notebook_defaults, parse_sweep, run_sweep, train_points_together

REPO = Path(__file__).resolve().parent.parent
TIMING = ("seconds", "train_seconds", "eval_seconds", "images_per_s", "cohort_students")
VARIANTS = [method_variant("wttm", gamma=0.3, beta=1.5)]


def tiny_data(size: int = 96) -> tuple:
    return load_dataset("synthetic", "train", size=size), load_dataset("synthetic", "test", size=64)


def base_config(teacher_file: Path):
    return tiny_run_config(teacher_file, None, epochs=1, amp="off", deterministic=True)


def batch(teacher_file: Path, root: Path, data: tuple, seeds=(0, 1)) -> VariantRuns:
    return VariantRuns(VARIANTS, list(seeds), base_config(teacher_file), root, data, diagnostics=False)


def rows(run: Run) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in run.metrics]


def same_rows(a: Run, b: Run) -> None:
    for row_a, row_b in zip(rows(a), rows(b), strict=True):
        assert row_a.keys() == row_b.keys()
        for key, value in row_a.items():
            if isinstance(value, float):
                assert math.isclose(value, row_b[key], rel_tol=1e-6, abs_tol=1e-6), key
            else:
                assert value == row_b[key], key


def test_points_sharing_a_teacher_train_as_one_cohort_and_are_reused(tmp_path, teacher_file):
    # two "points" with their own folders and their own (equal) copies of the data: one cohort of 2 x 2 seeds
    first, second = tmp_path / "a", tmp_path / "b"
    trained = train_variant_runs([batch(teacher_file, first, tiny_data()), batch(teacher_file, second, tiny_data())])
    assert trained == 4
    lines: list[str] = []
    for root in (first, second):
        runs = run_variants(VARIANTS, [0, 1], base=base_config(teacher_file), root=root, data=tiny_data(),
                            diagnostics=False, log=lines.append)  # fmt: skip
        assert [run.metrics[0]["cohort_students"] for run in runs] == [4, 4]
        alone = run_variants(VARIANTS, [0, 1], base=base_config(teacher_file), root=tmp_path / "alone" / root.name,
                             data=tiny_data(), diagnostics=False, log=print)  # fmt: skip
        for run, reference in zip(runs, alone, strict=True):
            same_rows(run, reference)
    assert sum("finished before, reusing" in line for line in lines) == 4
    assert not any(line.endswith(": training") for line in lines)
    # a second pass finds everything finished
    assert train_variant_runs([batch(teacher_file, first, tiny_data())]) == 0


def test_runs_on_different_data_train_in_separate_cohorts(tmp_path, teacher_file):
    small, large = tiny_data(96), tiny_data(128)
    one = batch(teacher_file, tmp_path / "a", small, seeds=(0,))
    two = batch(teacher_file, tmp_path / "b", large, seeds=(0,))
    known: list = []  # a sweep keeps one copy of each distinct data set
    assert with_shared_data(one, known) is one and with_shared_data(two, known) is two and len(known) == 2
    again = with_shared_data(batch(teacher_file, tmp_path / "c", tiny_data(96)), known)
    assert again.data is small and len(known) == 2
    assert train_variant_runs([one, two]) == 2
    sizes = [json.loads((tmp_path / p / "wttm-s0" / "metrics.jsonl").read_text())["cohort_students"] for p in "ab"]
    assert sizes == [1, 1]  # together they would be a cohort of 2


def test_a_point_that_cannot_be_planned_is_left_to_its_notebook(tmp_path, monkeypatch):
    notebook = REPO / "notebooks" / "05_train_students.ipynb"
    spec = parse_sweep({"notebook": str(notebook), "grid": {"student": ["no-such-arch"]}})
    lines: list[str] = []
    assert train_points_together(spec, [({"student": "no-such-arch"}, tmp_path / "p")], log=lines.append) == 0
    assert any("not planned ahead" in line and "student" in line for line in lines)
    # a notebook without a planner: nothing is planned, the points execute as before
    executed = []
    tiny = tmp_path / "tiny.ipynb"
    tiny.write_text((REPO / "notebooks" / "05_train_students.ipynb").read_text())
    report = run_sweep(
        parse_sweep({"notebook": str(tiny), "grid": {"epochs": [1]}}),
        out=tmp_path / "out",
        execute=lambda src, dst, **kw: executed.append(kw["parameters"]),
        log=lines.append,
    )
    assert [o.status for o in report.outcomes] == ["done"] and executed[0]["epochs"] == 1
    assert not any(line.startswith("cohorts:") for line in lines)


def test_notebook_05_defaults_are_read_as_values():
    defaults = notebook_defaults(REPO / "notebooks" / "05_train_students.ipynb")
    assert defaults["methods"] == ["ce", "kd", "ttm", "wttm"] and defaults["time_budget_s"] == "profile"
    assert defaults["results_dir"] is None and defaults["interactive"] is True


def test_epoch_timing_says_whose_time_it_is():
    def run(*epochs):
        return Run(Path("r"), {}, [dict(epoch=i + 1, train_seconds=s, **extra) for i, (s, extra) in enumerate(epochs)])

    cohort = [run((6.0, {"cohort_students": 3}), (3.0, {"cohort_students": 3})) for _ in range(2)]
    assert epoch_timing(cohort) == {"seconds_per_epoch": 4.5, "cohort_size": 3, "seconds_per_student_epoch": 1.5}
    old = [run((2.0, {}))]  # written before cohorts: trained alone
    assert epoch_timing(old) == {"seconds_per_epoch": 2.0, "cohort_size": 1, "seconds_per_student_epoch": 2.0}
    mixed = epoch_timing([run((4.0, {"cohort_students": 2})), run((2.0, {}))])
    assert mixed["cohort_size"] == "1-2" and mixed["seconds_per_student_epoch"] == 2.0
    assert epoch_timing([run()])["seconds_per_epoch"] is None


@pytest.mark.parametrize("flag", [["--no-cohorts"], []])
def test_the_sweep_command_accepts_no_cohorts(flag, capsys):
    from wttm_core.sweep import main

    assert main([str(REPO / "sweeps" / "ci.yaml"), "--list", *flag]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
