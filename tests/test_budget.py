"""The time budget of notebooks 05 and 07 (issue 14): epochs chosen from a measured throughput, fair to all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wttm_core.lab.experiments.budget import check_budget, pilot_seconds_per_image, plan_epochs


def test_plan_keeps_the_epochs_within_budget_and_cuts_them_alike_over_it() -> None:
    fits = plan_epochs(12, 1500, 3, 1 / 1000, 300)  # 12 x 3 x 1500 / 1000 = 54 s
    assert fits.epochs == 3 and fits.estimate_s() == pytest.approx(54.0)
    assert "within the time budget of 300 s" in fits.describe()
    cut = plan_epochs(12, 1500, 3, 1 / 100, 300)  # 540 s at 3 epochs, 180 s per epoch
    assert cut.epochs == 1 and cut.asked_epochs == 3 and cut.estimate_s(3) == pytest.approx(540.0)
    assert "every method gets 1 epoch(s)" in cut.describe() and "540 s" in cut.describe()
    assert plan_epochs(12, 1500, 3, 1 / 150, 300).epochs == 2  # 360 s at 3, 240 s at 2
    slow = plan_epochs(12, 1500, 3, 1.0, 300)  # never below one epoch; says it stays over the budget
    assert slow.epochs == 1 and "never fails" in slow.describe()
    assert plan_epochs(12, 1500, 3, 1.0, None).epochs == 3  # no budget: unchanged
    unmeasured = plan_epochs(12, 1500, 3, None, 300)
    assert unmeasured.epochs == 3 and unmeasured.estimate_s() is None and "no time estimate" in unmeasured.describe()
    for bad in (0, -1, float("inf"), float("nan"), "300", True):
        with pytest.raises(ValueError, match="time_budget_s"):
            check_budget(bad)


def test_pilot_throughput_is_read_from_finished_runs(tmp_path: Path) -> None:
    assert pilot_seconds_per_image(tmp_path, 1, 1000) is None
    for name, summary in {"a": {"complete": True, "seconds": 2.0}, "b": {"complete": True, "seconds": 4.0},
                          "c": {"complete": False, "seconds": 99.0}}.items():  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "summary.json").write_text("{not json")
    assert pilot_seconds_per_image(tmp_path, 2, 1000) == pytest.approx(3.0 / 2000)


def test_setups_carry_the_budget_and_the_opt_in_questions() -> None:
    from wttm_core.lab.experiments.questions import setup_questions
    from wttm_core.lab.experiments.students import setup_students

    assert setup_students("cpu-quick").time_budget_s == 300 and setup_students("smoke").time_budget_s is None
    assert setup_students("cpu-quick", time_budget_s=None).time_budget_s is None
    assert setup_students("cpu-quick", time_budget_s=60).time_budget_s == 60
    with pytest.raises(ValueError, match="time_budget_s"):
        setup_students("cpu-quick", time_budget_s=-5)
    quick = setup_questions("cpu-quick")
    assert quick.time_budget_s == 300 and not quick.more_questions and len(quick.lr_grid) == 3
    assert "more_questions=True" in quick.describe()
    assert setup_questions("cpu-quick", time_budget_s=None).time_budget_s is None
    assert setup_questions("cpu-quick", more_questions=True).more_questions
    smoke = setup_questions("smoke")  # the shipped smoke reference holds every experiment
    assert smoke.more_questions and smoke.time_budget_s is None
    with pytest.raises(ValueError, match="time_budget_s"):
        setup_questions("smoke", time_budget_s="soon")


def test_a_tight_budget_gives_every_method_the_same_fewer_epochs(tmp_path: Path) -> None:
    from wttm_core.lab.experiments.students import run_students, setup_students

    setup = setup_students(
        "smoke", methods=["ce", "kd"], epochs=3, tune_lr=True, lr_grid=[0.05], time_budget_s=0.001,
        out_dir=str(tmp_path / "runs"), quiet=True,
    )  # fmt: skip
    results = run_students(setup, log=lambda _: None)
    assert results.plan is not None and results.plan.asked_epochs == 3 and results.plan.epochs == 1
    assert results.plan.seconds_per_image is not None and results.plan.seconds_per_image > 0
    assert {run.summary["epochs_completed"] for run in results.runs} == {1} and setup.epochs == 1


def test_a_pilot_trained_as_a_cohort_counts_each_run_s_share_of_the_wall_time(tmp_path: Path) -> None:
    for name in ("kd", "ttm", "wttm", "ce"):  # four trials trained together: each records the cohort's 8 s
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"complete": True, "seconds": 8.0}))
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "cohort_students": 4}) + "\n")
    assert pilot_seconds_per_image(tmp_path, 1, 1000) == pytest.approx(2.0 / 1000)
