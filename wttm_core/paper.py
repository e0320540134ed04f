"""The accuracies reported by Zheng & Yang (ICLR 2024), read from ``data/paper_results.csv``.

The CSV holds Tables 1 (same-architecture pairs), 3 (different-architecture pairs) and 6 (WTTM without CE vs
KD) of the paper: one row per (table, pair, method) with the reported CIFAR-100 top-1 accuracy in percent, its
standard deviation where published and the number of runs averaged. ``method`` is ``teacher`` / ``student``
(the vanilla models), ``kd``, ``dkd``, ``ttm``, ``wttm`` or ``wttm-noce``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from wttm_core.resources import shipped

__all__ = ["PaperResult", "PAPER_RESULTS_PATH", "load_paper_results", "paper_results_for"]

# the checkout's data/ or the copy an installed wheel carries (wttm_core.resources)
PAPER_RESULTS_PATH = shipped("data/paper_results.csv")
_COLUMNS = ("dataset", "table", "pair", "teacher", "student", "method", "accuracy", "std", "runs")


@dataclass(frozen=True)
class PaperResult:
    """One reported number: top-1 accuracy (%) of ``method`` on ``teacher -> student`` in ``table``."""

    dataset: str
    table: int
    pair: str
    teacher: str
    student: str
    method: str
    accuracy: float
    std: float | None
    runs: int | None


def _optional(text: str, kind: type) -> float | int | None:
    return kind(text) if text.strip() else None


def load_paper_results(path: str | Path | None = None) -> list[PaperResult]:
    """All rows of the paper-results CSV (default: the repository's ``data/paper_results.csv``)."""
    path = Path(path) if path is not None else PAPER_RESULTS_PATH
    if not path.is_file():
        raise FileNotFoundError(f"paper results file not found: {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise ValueError(f"{path}: expected columns {_COLUMNS}, got {reader.fieldnames}")
        return [
            PaperResult(
                dataset=row["dataset"],
                table=int(row["table"]),
                pair=row["pair"],
                teacher=row["teacher"],
                student=row["student"],
                method=row["method"],
                accuracy=float(row["accuracy"]),
                std=_optional(row["std"], float),  # type: ignore[arg-type]
                runs=_optional(row["runs"], int),  # type: ignore[arg-type]
            )
            for row in reader
        ]


def paper_results_for(
    teacher: str, student: str, *, table: int | None = None, path: str | Path | None = None
) -> dict[str, PaperResult]:
    """The reported numbers for one pair as ``{method: PaperResult}`` (Tables 1/3 before Table 6).

    ``table`` restricts to one table; otherwise a method reported in two tables (KD in Table 1 and Table 6 has
    the same value) keeps the first occurrence. Returns ``{}`` for a pair the paper does not report.
    """
    found: dict[str, PaperResult] = {}
    for row in load_paper_results(path):
        if row.teacher == teacher and row.student == student and (table is None or row.table == table):
            found.setdefault(row.method, row)
    return found
