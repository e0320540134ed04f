"""A time budget for the training cells of notebooks 05 and 07 (issue 14: the main job never fails for being slow).

The learning-rate pilot runs first and is timed: its runs give a measured cost per training image (wall seconds
of whole runs, evaluation and start-up included, divided by the images they trained on). The students that
follow are then planned as ``runs x epochs x images``; when the estimate exceeds the cell's ``time_budget_s``
the number of epochs is lowered - the same for every method and seed, so the comparison stays fair - never
below one, and the notebook prints the plan, the estimate and why. Finished runs are reused on a re-run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from wttm_core._checks import check_number
from wttm_core.rundir import read_jsonl

__all__ = ["Plan", "check_budget", "pilot_seconds_per_image", "plan_epochs"]


def check_budget(seconds: object) -> float | None:
    """``seconds`` as a time budget: ``None`` (unlimited) or a finite positive number; anything else raises."""
    if seconds is None:
        return None
    if isinstance(seconds, str):
        raise ValueError(f"time_budget_s must be seconds, None (unlimited) or 'profile', got {seconds!r}")
    return check_number("time_budget_s", seconds, low=0, low_open=True)


@dataclass(frozen=True)
class Plan:
    """How many epochs the students get: ``runs`` runs of ``epochs`` epochs on ``images`` training images."""

    runs: int
    images: int
    asked_epochs: int
    epochs: int
    seconds_per_image: float | None
    budget_s: float | None

    def estimate_s(self, epochs: int | None = None) -> float | None:
        """Estimated seconds of all the runs at ``epochs`` (default: the planned ones); ``None``: not measured."""
        if self.seconds_per_image is None:
            return None
        return self.runs * (self.epochs if epochs is None else epochs) * self.images * self.seconds_per_image

    def describe(self) -> str:
        """One sentence: the plan, the estimate and the reason for any cut."""
        work = f"{self.runs} runs x {self.epochs} epoch(s) x {self.images} images"
        if self.seconds_per_image is None:
            return f"plan: {work} (no measured throughput: no time estimate)"
        text = (
            f"plan: {work}, about {self.estimate_s():.0f} s at the pilot's measured "
            f"{1 / self.seconds_per_image:.0f} images/s (whole runs, evaluation included)"
        )
        if self.epochs < self.asked_epochs:
            text += (
                f"; {self.asked_epochs} epochs would take about {self.estimate_s(self.asked_epochs):.0f} s, over "
                f"the time budget of {self.budget_s:.0f} s, so every method gets {self.epochs} epoch(s)"
            )
            if self.estimate_s() > self.budget_s:
                text += " (the minimum; still over the budget: a slow machine only takes longer, it never fails)"
        elif self.budget_s is not None:
            text += f", within the time budget of {self.budget_s:.0f} s"
        return text + "."


def pilot_seconds_per_image(root: str | Path, epochs: int, images: int) -> float | None:
    """Measured wall seconds per training image of one pilot run under ``root`` (each trained ``epochs`` epochs
    on ``images`` images; ``summary.json`` records its ``seconds``); ``None`` when there is none.

    Runs trained together as a cohort share every epoch's wall time, which each of them records whole; a run's
    share is that time divided by the cohort's size (``cohort_students`` in ``metrics.jsonl``; runs without it
    trained alone) - the cost of one more student in a cohort, which is how the students after the pilot train.
    """
    seconds = []
    for path in sorted(Path(root).glob("*/summary.json")):
        try:
            summary = json.loads(path.read_text())
            rows = read_jsonl(path.parent / "metrics.jsonl") if (path.parent / "metrics.jsonl").is_file() else []
        except (OSError, ValueError):
            continue
        if summary.get("complete") and summary.get("seconds"):
            students = max((int(row.get("cohort_students") or 1) for row in rows), default=1)
            seconds.append(float(summary["seconds"]) / students)
    if not seconds or images < 1 or epochs < 1:
        return None
    return sum(seconds) / (len(seconds) * epochs * images)


def plan_epochs(runs: int, images: int, epochs: int, seconds_per_image: float | None, budget_s: float | None) -> Plan:
    """The most epochs (at most ``epochs``, at least 1) whose estimated time fits ``budget_s`` (``None``: no
    budget, ``epochs`` unchanged)."""
    budget_s = check_budget(budget_s)
    fitted = epochs
    if budget_s is not None and seconds_per_image is not None and runs > 0 and images > 0:
        fitted = max(1, min(epochs, int(budget_s // (runs * images * seconds_per_image))))
    return Plan(runs, images, epochs, fitted, seconds_per_image, budget_s)
