"""Small text helpers for notebooks: Markdown tables of numbers and the "try this" answer check.

:func:`markdown_table` is the one table writer; :func:`markdown_records` feeds it rows given as mappings (the
experiments' result rows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

__all__ = ["markdown_table", "markdown_records", "check_answer"]


def _cell(value: object, float_format: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Real) and not isinstance(value, int):
        return format(float(value), float_format)
    return str(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, float_format: str = ".3e") -> str:
    """A Markdown table (show it with ``IPython.display.Markdown``); floats use ``float_format``, bools yes/no."""
    header = [str(h) for h in header]
    if not header:
        raise ValueError("header must not be empty")
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, the header has {len(header)}")
        lines.append("| " + " | ".join(_cell(v, float_format) for v in row) + " |")
    return "\n".join(lines)


def markdown_records(
    rows: Sequence[Mapping[str, object]], columns: Sequence[tuple[str, str]], *, float_format: str = ".2f"
) -> str:
    """:func:`markdown_table` of mapping rows, ``columns`` as ``(key, header)`` pairs; a missing key or ``None``
    is an empty cell."""
    if not columns:
        raise ValueError("columns must not be empty")
    cells = [["" if row.get(key) is None else row.get(key) for key, _ in columns] for row in rows]
    return markdown_table([header for _, header in columns], cells, float_format=float_format)


def check_answer(answer: object, expected: float, *, rel_tol: float = 0.02, abs_tol: float = 0.0) -> bool | None:
    """Check a reader's numeric ``answer`` against ``expected``; print the verdict.

    Kept for existing callers; teaching notebooks use :func:`wttm_core.exercises.check_answer`, which gives a hint
    on the first miss, reveals only after two tries and never raises.

    Returns ``None`` (and a hint) while ``answer`` is ``None`` - so a notebook run in CI, where nobody answers,
    still passes - ``True`` when it is within ``rel_tol`` (relative) or ``abs_tol`` (absolute), else ``False``.
    """
    if answer is None:
        print("Not answered yet: set `answer` above and re-run this cell.")
        return None
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise TypeError(f"answer must be a number, got {type(answer).__name__}")
    ok = math.isclose(float(answer), float(expected), rel_tol=rel_tol, abs_tol=abs_tol)
    print("Correct!" if ok else f"Not quite: {float(answer):.4g} is not {float(expected):.4g}. Try again.")
    return ok
