"""Result tables: best and last accuracy (mean +- std over seeds) next to the paper's numbers, and verdicts.

Published CIFAR-100 tables mix two protocols (the best test accuracy over training and the accuracy at the last
epoch), so both are reported. The paper's numbers come from ``data/paper_results.csv``
(:mod:`wttm_core.paper`, Tables 1, 3 and 6). Differences between methods are judged against the run-to-run
noise with :func:`wttm_core.experiments.stats.compare` (Welch's t-test and the combined standard deviation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wttm_core.experiments.stats import Comparison, compare, estimate, format_mean_std
from wttm_core.runs import Run, final_values

__all__ = ["accuracy_rows", "comparisons", "markdown_table", "paper_method"]

_PAPER_METHODS = {"ce": "student", "kd": "kd", "ttm": "ttm", "wttm": "wttm", "wttm-noce": "wttm-noce"}


def paper_method(method: str) -> str | None:
    """The ``paper_results.csv`` method matching an engine method spec (``None`` for combinations/variants)."""
    return _PAPER_METHODS.get(method)


def accuracy_rows(
    groups: Mapping[str, Sequence[Run]],
    *,
    paper: Mapping[str, Any] | None = None,
    metric: str = "test_acc",
) -> list[dict[str, Any]]:
    """One row per group (label -> runs over seeds): runs, best and last ``metric`` as mean +- std, paper value.

    ``paper`` maps paper method names to :class:`wttm_core.paper.PaperResult` (``paper_results_for``); a group is
    matched through its runs' ``config["method"]`` when all runs share a base method with default options.
    Numeric columns (``best_mean``, ``best_std``, ``last_mean``, ``last_std``, ``paper``) stay available for
    plots and sweeps next to the formatted ones.
    """
    rows = []
    for label, runs in groups.items():
        if not runs:
            raise ValueError(f"group {label!r} has no runs")
        best, last = estimate(final_values(runs, metric, how="best")), estimate(final_values(runs, metric, how="last"))
        methods = {run.config.get("method") for run in runs}
        weighting = {run.config.get("weighting", "power-sum") for run in runs}
        key = paper_method(methods.pop()) if len(methods) == 1 and weighting == {"power-sum"} else None
        reported = paper.get(key) if paper is not None and key is not None else None
        row: dict[str, Any] = {
            "label": label,
            "runs": best.n,
            "best": format_mean_std(best.mean, best.std),
            "last": format_mean_std(last.mean, last.std),
            "paper": format_mean_std(reported.accuracy, reported.std) if reported is not None else "",
            "best_mean": best.mean,
            "best_std": best.std,
            "last_mean": last.mean,
            "last_std": last.std,
            "paper_accuracy": reported.accuracy if reported is not None else None,
        }
        rows.append(row)
    return rows


def comparisons(
    groups: Mapping[str, Sequence[Run]],
    reference: str,
    *,
    metric: str = "test_acc",
    how: str = "last",
    alpha: float = 0.05,
) -> list[Comparison]:
    """Every other group against ``reference`` on the per-run ``how`` (``"last"``/``"best"``) ``metric``."""
    if reference not in groups:
        raise ValueError(f"reference: no group called {reference!r} (groups: {list(groups)})")
    base = final_values(groups[reference], metric, how=how)
    return [
        compare(final_values(runs, metric, how=how), base, label_a=label, label_b=reference, alpha=alpha)
        for label, runs in groups.items()
        if label != reference
    ]


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` with ``columns`` given as ``(key, header)`` pairs."""
    if not columns:
        raise ValueError("columns must not be empty")
    lines = ["| " + " | ".join(header for _, header in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key, "")
            text = f"{value:.2f}" if isinstance(value, float) else str(value if value is not None else "")
            cells.append(text.replace("|", "\\|"))  # a pipe inside a cell would split it
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
