"""Reading training-run directories into plain Python structures (no torch, no plotting).

A run directory written by the engine holds ``config.json`` (the resolved configuration), ``metrics.jsonl`` (one
JSON object per finished epoch: accuracies, loss parts, ``student_entropy`` = mean H(q) for Fig. 1,
``kl_transformed_teacher`` = mean D(p^t_T || q) for Fig. 2, ``weight_mean`` = mean U_gamma(p^t) of Eq. 22, ...)
and, once finished, ``summary.json`` (best and last accuracy). Runs made through :mod:`wttm_core.lab.experiments`
may also hold ``diagnostics.jsonl``: per-epoch test-set distributions (a histogram of the student's per-sample
entropy for Fig. 3, D(p^t_T || q) per superclass).

The files themselves (names, JSON reading and writing, atomic writes, the lock) are :mod:`wttm_core.rundir`'s;
this module turns them into plain structures for analysis. Everything returned is built from lists, dicts,
floats and strings, so notebooks and figure builders can use it without knowing the file formats. Grouping
(:func:`group_runs`) and across-seed aggregation (:func:`aggregate_series`, :func:`final_values`) live here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wttm_core.rundir import CONFIG_FILE, DIAGNOSTICS_FILE, METRICS_FILE, SUMMARY_FILE, read_json, read_jsonl

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "DIAGNOSTICS_FILE",
    "Run",
    "Series",
    "read_jsonl",
    "read_run",
    "find_runs",
    "read_runs",
    "group_runs",
    "aggregate_series",
    "final_values",
]


@dataclass(frozen=True)
class Run:
    """One run directory's contents.

    Attributes:
        path: the run directory.
        config: ``config.json`` as a dict (``{}`` when absent).
        metrics: the rows of ``metrics.jsonl`` in epoch order.
        summary: ``summary.json`` (``None`` while the run is unfinished).
        diagnostics: the rows of ``diagnostics.jsonl`` in epoch order (``[]`` when absent).
    """

    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    summary: dict[str, Any] | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The directory name."""
        return self.path.name

    @property
    def label(self) -> str:
        """A display label: ``config["extra"]["label"]`` when set, else the method spec (or the name)."""
        extra = self.config.get("extra") or {}
        if isinstance(extra, dict) and extra.get("label"):
            return str(extra["label"])
        return str(self.config.get("method") or self.name)

    @property
    def seed(self) -> int | None:
        seed = self.config.get("seed")
        return int(seed) if isinstance(seed, int) else None

    @property
    def finished(self) -> bool:
        """Whether the run wrote ``summary.json`` (it finished its epochs)."""
        return self.summary is not None

    @property
    def epochs(self) -> list[int]:
        """The epochs present in ``metrics.jsonl``."""
        return [int(row["epoch"]) for row in self.metrics if "epoch" in row]

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """``(epochs, values)`` of metric ``key`` over the epochs that recorded a number for it.

        Raises ``KeyError`` naming the key and the available ones when no epoch recorded it.
        """
        epochs, values = [], []
        for row in self.metrics:
            value = row.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and "epoch" in row:
                epochs.append(int(row["epoch"]))
                values.append(float(value))
        if not epochs:
            known = sorted({k for row in self.metrics for k in row})
            raise KeyError(f"metric {key!r} is not recorded in {self.path / METRICS_FILE} (known: {known})")
        return epochs, values

    def last(self, key: str) -> float:
        """The metric's value at the last epoch that recorded it."""
        return self.series(key)[1][-1]

    def best(self, key: str = "test_acc") -> float:
        """The metric's largest value over the epochs."""
        return max(self.series(key)[1])

    def diagnostic(self, epoch: int | None = None) -> dict[str, Any]:
        """The diagnostics row of ``epoch`` (default: the last one). Raises ``KeyError`` when there is none."""
        if not self.diagnostics:
            raise KeyError(f"{self.path} has no {DIAGNOSTICS_FILE}")
        if epoch is None:
            return self.diagnostics[-1]
        for row in self.diagnostics:
            if row.get("epoch") == epoch:
                return row
        raise KeyError(f"{self.path / DIAGNOSTICS_FILE} has no row for epoch {epoch}")


def read_run(path: str | Path) -> Run:
    """Read one run directory (it must hold at least ``metrics.jsonl`` or ``config.json``)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory not found: {path}")
    config_path, metrics_path = path / CONFIG_FILE, path / METRICS_FILE
    if not config_path.is_file() and not metrics_path.is_file():
        raise FileNotFoundError(f"{path} is not a run directory: it holds neither {CONFIG_FILE} nor {METRICS_FILE}")
    config = read_json(config_path) if config_path.is_file() else {}
    metrics = read_jsonl(metrics_path) if metrics_path.is_file() else []
    metrics.sort(key=lambda row: row.get("epoch", math.inf))
    summary_path = path / SUMMARY_FILE
    summary = read_json(summary_path) if summary_path.is_file() else None
    diagnostics_path = path / DIAGNOSTICS_FILE
    diagnostics = read_jsonl(diagnostics_path) if diagnostics_path.is_file() else []
    diagnostics.sort(key=lambda row: row.get("epoch", math.inf))
    return Run(path, config, metrics, summary, diagnostics)


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory at or below ``root`` (a folder holding ``metrics.jsonl``), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs root not found: {root}")
    return sorted(p.parent for p in root.rglob(METRICS_FILE))


def read_runs(root: str | Path, *, where: Callable[[Run], bool] | None = None, **config_filter: Any) -> list[Run]:
    """Read every run below ``root``, keeping those whose config matches ``config_filter`` and ``where``.

    ``read_runs("data/example_runs", method="kd")`` keeps runs whose ``config["method"] == "kd"``; a filter value
    that is a list/tuple/set matches any of its members.
    """
    runs = []
    for path in find_runs(root):
        run = read_run(path)
        if all(_matches(run.config.get(key), wanted) for key, wanted in config_filter.items()):
            if where is None or where(run):
                runs.append(run)
    return runs


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, list | tuple | set | frozenset):
        return value in wanted
    return value == wanted


def group_runs(runs: Iterable[Run], by: str | Callable[[Run], Any] = "label") -> dict[Any, list[Run]]:
    """Runs grouped by ``by``: ``"label"`` (default), a config key, or a function of the run; insertion order."""
    if isinstance(by, str):
        key = (lambda r: r.label) if by == "label" else (lambda r: r.config.get(by))
    elif callable(by):
        key = by
    else:
        raise TypeError(f"by must be a config key or a callable, got {type(by).__name__}")
    groups: dict[Any, list[Run]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups


@dataclass(frozen=True)
class Series:
    """A metric over epochs aggregated across runs (seeds): mean, sample std (``None`` for one run), count."""

    epochs: list[int]
    mean: list[float]
    std: list[float] | None
    n: int


def aggregate_series(runs: Sequence[Run], key: str) -> Series:
    """Mean and sample standard deviation of metric ``key`` across ``runs`` at every epoch all of them recorded."""
    if not runs:
        raise ValueError("runs must not be empty")
    per_run = [dict(zip(*run.series(key), strict=True)) for run in runs]
    common = sorted(set.intersection(*(set(values) for values in per_run)))
    if not common:
        raise ValueError(f"the runs share no epoch that recorded {key!r}")
    means, stds = [], []
    for epoch in common:
        xs = [values[epoch] for values in per_run]
        mean = math.fsum(xs) / len(xs)
        means.append(mean)
        if len(xs) > 1:
            stds.append(math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)))
    return Series(common, means, stds if len(runs) > 1 else None, len(runs))


def final_values(runs: Sequence[Run], key: str = "test_acc", *, how: str = "last") -> list[float]:
    """One number per run: the metric's ``"last"`` value, or its ``"best"`` (maximum) over the epochs."""
    if how == "last":
        return [run.last(key) for run in runs]
    if how == "best":
        return [run.best(key) for run in runs]
    raise ValueError(f"how must be 'last' or 'best', got {how!r}")
