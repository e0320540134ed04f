"""Crash-safe run directories: atomic files, random-generator snapshots, training state, resume checks.

A run directory holds ``config.json`` (written once), ``metrics.jsonl`` (one line per finished epoch),
``state.pth`` (everything needed to continue: model, optimizer, schedule, gradient scaler, every random
generator, the epoch and batch reached, metrics so far, the best result), ``checkpoint.pth`` / ``best.pth``
(the last and the best model in the standard checkpoint layout) and ``summary.json``. Every file is written to
a temporary file in the same directory and renamed over the old one, so a crash (even SIGKILL) leaves either
the old or the new version, never a torn one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wttm_core.atomic import atomic_write, write_text_atomic
from wttm_core.engine.config import identity

__all__ = [
    "RUN_FILES",
    "STATE_FORMAT",
    "RunDirectoryError",
    "write_json",
    "write_jsonl",
    "read_jsonl",
    "capture_rng",
    "restore_rng",
    "save_state",
    "load_state",
    "check_run_directory",
]

STATE_FORMAT = "wttm-train-state/1"
RUN_FILES = ("config.json", "metrics.jsonl", "state.pth", "checkpoint.pth", "best.pth", "summary.json")


class RunDirectoryError(ValueError):
    """The output directory holds something this run must not overwrite (another run, foreign files)."""


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Atomically (re)write a JSON-lines file with one object per row."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (``metrics.jsonl``)."""
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def capture_rng(extra_generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Snapshot of Python's, NumPy's and torch's (CPU and every CUDA device) generators, plus named extras.

    The snapshot holds only tensors and plain Python values, so it loads with ``weights_only=True``.
    """
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in (extra_generators or {}).items()},
    }
    return state


def restore_rng(state: dict[str, Any], extra_generators: dict[str, torch.Generator] | None = None) -> None:
    """Put every generator captured by :func:`capture_rng` back in that state."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in (extra_generators or {}).items():
        if name in state["generators"]:
            generator.set_state(state["generators"][name])


def _as_tuple(value: Any) -> Any:
    """Undo list-for-tuple substitutions (``random.setstate`` insists on tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a training state (``state["format"]`` is set to :data:`STATE_FORMAT`)."""
    payload = dict(state, format=STATE_FORMAT)
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_state` (tensors only, no code: ``weights_only=True``)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a wttm training state ({STATE_FORMAT})")
    return state


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def check_run_directory(out: str | Path, config: dict[str, Any], *, resume: bool, force: bool) -> str:
    """Decide what to do with ``out`` for a run of ``config``; touches nothing.

    Returns ``"fresh"`` (empty or absent: start), ``"resume"`` (same run, continue from ``state.pth``) or
    ``"overwrite"`` (``force``: the run files there are replaced). Raises :class:`RunDirectoryError` when
    ``out`` holds a different run, the same run without ``resume``, or files that are not a run's.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"out: {out} exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return "fresh"
    if force:
        return "overwrite"
    config_path = out / "config.json"
    if not config_path.is_file():
        raise RunDirectoryError(f"out: {out} is not empty and holds no wttm run (config.json); use --force")
    try:
        old = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise RunDirectoryError(f"out: {config_path} is unreadable ({error}); use --force") from None
    changed = _differences(identity(old), identity(json.loads(json.dumps(config))))
    if changed:
        shown = "; ".join(changed[:4]) + (" ..." if len(changed) > 4 else "")
        raise RunDirectoryError(f"out: {out} holds a different run ({shown}); use --force to replace it")
    if not resume:
        raise RunDirectoryError(f"out: {out} already holds this run; use --resume to continue or --force")
    return "resume" if (out / "state.pth").is_file() else "fresh"
