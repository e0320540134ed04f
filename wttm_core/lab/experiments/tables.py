"""Result tables: best and last accuracy (mean +- std over seeds) next to the paper's numbers, and verdicts.

Published CIFAR-100 tables mix two protocols (the best test accuracy over training and the accuracy at the last
epoch), so both are reported. The paper's numbers come from ``data/paper_results.csv``
(:mod:`wttm_core.paper`, Tables 1, 3 and 6) and are attached only to a group whose loss settings are the
paper's (:func:`at_paper_settings`: KD at T = 4 with weight 0.9, TTM / WTTM at the pair's Table 8/9 gamma and
beta, no label smoothing, no extra terms) - a KD run at T = 1 gets none. Differences between methods are judged
by :func:`wttm_core.lab.experiments.stats.compare_many`: runs paired by seed (same initialisation and data order)
when every group has the same seeds, paired t intervals, the test set's binomial error and Holm's correction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from wttm_core.lab.experiments.stats import Comparison, compare_many, estimate, format_mean_std
from wttm_core.presets import RECIPE, method_hyperparameters
from wttm_core.runs import Run, final_values
from wttm_core.viz.tables import markdown_records as markdown_table

__all__ = [
    "accuracy_rows",
    "at_paper_settings",
    "comparisons",
    "markdown_table",
    "paper_method",
    "seed_values",
    "test_images",
]

_PAPER_METHODS = {"ce": "student", "kd": "kd", "ttm": "ttm", "wttm": "wttm", "wttm-noce": "wttm-noce"}


def paper_method(method: str) -> str | None:
    """The ``paper_results.csv`` method matching an engine method spec (``None`` for combinations/variants)."""
    return _PAPER_METHODS.get(method)


def _same(value: Any, wanted: Any) -> bool:
    return isinstance(value, int | float) and isinstance(wanted, int | float) and math.isclose(value, wanted)


def at_paper_settings(config: Mapping[str, Any], pair: tuple[str, str] | None = None) -> bool:
    """Whether a run's loss settings are the paper's, so that the paper's number may stand next to it.

    CE: no label smoothing. KD: T = 4 and weight 0.9 (Eq. 1, the recipe). TTM / WTTM / WTTM without CE: the
    Table 8/9 gamma and beta of ``pair`` (teacher, student; default: the run's own architectures). Always: the
    default CE weight, WTTM's own sample weight U, no added terms. Data, epochs and learning rate are not
    checked: the table's header names the pair and data set the paper's number belongs to.
    """
    method = paper_method(str(config.get("method")))
    plain = (
        not config.get("label_smoothing")
        and config.get("ce_weight") is None
        and config.get("weighting", "power-sum") == "power-sum"
        and config.get("renyi_order") is None
    )
    if method is None or not plain:
        return False
    if method == "student":
        return True
    if method == "kd":
        return _same(config.get("temperature"), RECIPE.kd_temperature) and _same(
            config.get("kd_weight"), RECIPE.kd_weight
        )
    teacher, student = pair if pair is not None else (config.get("teacher_arch"), config.get("arch"))
    preset = method_hyperparameters(str(config.get("method")), teacher, str(student))
    return _same(config.get("gamma"), preset["gamma"]) and _same(config.get("beta"), preset["beta"])


def accuracy_rows(
    groups: Mapping[str, Sequence[Run]],
    *,
    paper: Mapping[str, Any] | None = None,
    metric: str = "test_acc",
    pair: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per group (label -> runs over seeds): runs, best and last ``metric`` as mean +- std, paper value.

    ``paper`` maps paper method names to :class:`wttm_core.paper.PaperResult` (``paper_results_for(*pair)``); a
    group gets its method's number only when every run is :func:`at_paper_settings` for ``pair``. Numeric
    columns (``best_mean``, ``best_std``, ``last_mean``, ``last_std``, ``paper_accuracy``) stay available for
    plots and sweeps next to the formatted ones.
    """
    rows = []
    for label, runs in groups.items():
        if not runs:
            raise ValueError(f"group {label!r} has no runs")
        best, last = estimate(final_values(runs, metric, how="best")), estimate(final_values(runs, metric, how="last"))
        methods = {run.config.get("method") for run in runs}
        paper_like = len(methods) == 1 and all(at_paper_settings(run.config, pair) for run in runs)
        key = paper_method(methods.pop()) if paper_like else None
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


def seed_values(
    groups: Mapping[str, Sequence[Run]], *, metric: str = "test_acc", how: str = "last"
) -> tuple[dict[str, list[float]], bool]:
    """Per label, the per-run ``how`` value of ``metric``, and whether the groups can be paired by seed.

    Paired: every group holds one run per seed and all groups the same seeds; the values are then in ascending
    seed order, so that ``values[a][i]`` and ``values[b][i]`` share the seed (and the engine gave both the same
    initialisation and data order). Otherwise the values keep the runs' order and comparisons are unpaired.
    """
    seeds = {label: [run.config.get("seed") for run in runs] for label, runs in groups.items()}
    first = sorted(next(iter(seeds.values()), []), key=str)
    paired = all(len(set(s)) == len(s) and sorted(s, key=str) == first for s in seeds.values())
    values = {}
    for label, runs in groups.items():
        ordered = sorted(runs, key=lambda run: str(run.config.get("seed"))) if paired else list(runs)
        values[label] = final_values(ordered, metric, how=how)
    return values, paired


def test_images(groups: Mapping[str, Sequence[Run]]) -> int | None:
    """The number of test images every run was scored on, or ``None`` when unknown or not the same for all."""
    sizes = {run.config.get("test_size") for runs in groups.values() for run in runs}
    size = sizes.pop() if len(sizes) == 1 else None
    return size if isinstance(size, int) and size > 0 else None


def comparisons(
    groups: Mapping[str, Sequence[Run]],
    reference: str | None = None,
    *,
    metric: str = "test_acc",
    how: str = "last",
    alpha: float = 0.05,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[Comparison]:
    """Every other group against ``reference`` (or the given ``pairs``) on the per-run ``how`` ``metric``.

    One family: paired by seed where possible (:func:`seed_values`), Holm-adjusted, with the test set's binomial
    error when all runs share a test-set size (:func:`~wttm_core.lab.experiments.stats.compare_many`).
    """
    if pairs is None:
        if reference not in groups:
            raise ValueError(f"reference: no group called {reference!r} (groups: {list(groups)})")
        pairs = [(label, reference) for label in groups if label != reference]
    used = {label for pair in pairs for label in pair}
    missing = sorted(used - set(groups))
    if missing:
        raise ValueError(f"pairs: no group called {missing} (groups: {list(groups)})")
    chosen = {label: runs for label, runs in groups.items() if label in used}
    values, paired = seed_values(chosen, metric=metric, how=how)
    return compare_many(values, pairs, alpha=alpha, paired=paired, test_size=test_images(chosen))
