"""Notebook 05's reading of a gap: one shared learning rate still means unequal steps (Eq. 19, issue 16)."""

from __future__ import annotations

from wttm_core.lab.experiments.students import StudentResults


def _results(rates: dict[str, float]) -> StudentResults:
    rows = [{"label": label, "lr": lr} for label, lr in rates.items()]
    return StudentResults(
        setup=None, teacher_dir=None, teacher_checkpoint="", runs=[], groups={}, rows=rows, verdicts=[], seconds=0.0
    )  # type: ignore[arg-type]


def test_one_shared_rate_is_called_unequal_steps_not_a_fair_comparison() -> None:
    note = _results({"CE": 0.05, "KD": 0.05, "TTM": 0.05, "WTTM": 0.05}).step_size_note()
    assert "same learning rate (0.05)" in note
    assert "10 times" in note and "mixes step size with the loss" in note
    assert "about the losses" not in note


def test_rates_chosen_apart_are_described_as_an_equal_budget_with_its_limit() -> None:
    note = _results({"CE": 0.05, "KD": 0.5, "TTM": 0.05}).step_size_note()
    assert "same grid" in note and "can still miss" in note
    assert "same learning rate" not in note


def test_a_single_method_has_no_gap_to_read() -> None:
    assert _results({"KD": 0.05}).step_size_note() == ""
