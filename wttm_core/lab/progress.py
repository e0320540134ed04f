"""Progress of long cells, reported to whoever runs the notebook (the runner), with an estimate of the time left.

A training cell runs inside a Jupyter kernel, where nothing it prints reaches the terminal of ``make notebooks``.
The runner therefore names a file in the environment variable :data:`PROGRESS_ENV`; :class:`Progress` appends
one JSON line per finished unit of work (an epoch) to it, and the runner turns the latest line into a progress
line with an ETA. Without the variable (JupyterLab, the command line) :class:`Progress` does nothing.

The ETA is the plain extrapolation ``elapsed / done * (total - done)``: it exists from the first finished epoch
on and is as good as the epochs are alike.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["PROGRESS_ENV", "Progress", "emit", "format_seconds", "read_events"]

PROGRESS_ENV = "WTTM_PROGRESS"


def emit(event: dict[str, Any]) -> None:
    """Append ``event`` (plus the wall-clock time ``t``) as one JSON line to the file named by
    :data:`PROGRESS_ENV`; do nothing when the variable is unset. A line is written with one ``write`` call on
    a file opened for appending, so a reader never sees half of it."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    line = json.dumps({"t": time.time(), **event}) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:  # progress is a courtesy: never let it stop the work
        pass


def read_events(path: str | os.PathLike[str], offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON lines of ``path`` from byte ``offset`` on, and the offset after the last of them."""
    path = Path(path)
    if not path.is_file():
        return [], offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1  # a line still being written stays for the next read
    events = []
    for line in data[:end].splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events, offset + end


def format_seconds(seconds: float) -> str:
    """``75`` -> ``"1m15s"``, ``3725`` -> ``"1h02m"``, ``9`` -> ``"9s"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Count ``total`` units of work (epochs) named ``what`` and report each finished one with an ETA."""

    def __init__(self, what: str, total: int) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total must be a non-negative integer, got {total!r}")
        self.what = what
        self.total = total
        self.done = 0
        self.start = time.perf_counter()

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left by extrapolation (``None`` before the first unit is done)."""
        if self.done == 0:
            return None
        elapsed = time.perf_counter() - self.start
        return elapsed / self.done * max(self.total - self.done, 0)

    def advance(self, note: str = "") -> None:
        """One more unit done (``note`` says which, e.g. ``"KD-s1 epoch 3/5"``): report it."""
        self.done += 1
        emit(
            {
                "event": "progress",
                "what": self.what,
                "done": self.done,
                "total": self.total,
                "elapsed_s": round(time.perf_counter() - self.start, 1),
                "eta_s": None if self.eta_seconds is None else round(self.eta_seconds, 1),
                "note": note,
            }
        )
