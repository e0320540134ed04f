"""Training state on disk, the torch part of a run directory: ``state.pth`` and random-generator snapshots.

``state.pth`` holds everything needed to continue a run exactly: model, optimizer, schedule, gradient scaler,
every random generator, the epoch and batch reached, metrics so far, the best result. It is the commit point of
an epoch, written atomically after ``checkpoint.pth`` / ``best.pth`` / ``metrics.jsonl``. Where it is missing
or unreadable, :func:`state_from_checkpoint` rebuilds what it can from the last epoch's ``checkpoint.pth``.

The rest of a run directory (file names, atomic writes, JSON files, the lock, what a run may do with its
folder) is torch-free and lives in :mod:`wttm_core.rundir`; the names below are re-exported for old imports.
"""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wttm_core._checks import check_int
from wttm_core.engine.config import identity
from wttm_core.rundir import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    RUN_FILES,
    RunDirectoryError,
    read_jsonl,
    write_bytes_atomic,
    write_json,
    write_jsonl,
)
from wttm_core.rundir import check_run_directory as _check_run_directory

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
    "state_from_checkpoint",
    "check_run_directory",
]

STATE_FORMAT = "wttm-train-state/1"


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
    """Atomically write a training state (``state["format"]`` is set to :data:`STATE_FORMAT`).

    The state is serialised in memory first, so that a full disk or a refused permission surfaces as the
    operating system's ``OSError`` (torch would wrap it in a ``RuntimeError``) and the old file stays.
    """
    buffer = io.BytesIO()
    torch.save(dict(state, format=STATE_FORMAT), buffer)
    write_bytes_atomic(path, buffer.getbuffer())


def _way_out(path: Path) -> str:
    if (path.parent / CHECKPOINT_FILE).is_file():
        return (
            f"continue from the last epoch's {CHECKPOINT_FILE} with --resume-from-checkpoint, or start again "
            "with --force"
        )
    return "start again with --force"


def load_state(path: str | Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a training state written by :func:`save_state` (tensors only, no code: ``weights_only=True``).

    With ``config`` (the run's resolved configuration dict) the state must belong to that run. Raises
    :class:`RunDirectoryError` naming the file and the way out when it is truncated, corrupt, refused by the
    safe unpickler, or another program's / another run's file.
    """
    from wttm_core.models.checkpoint import load_error_reason

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated or corrupt (RuntimeError, EOFError, ...), or a refused pickle
        reason = load_error_reason(str(error)) if str(error).strip() else type(error).__name__
        raise RunDirectoryError(
            f"{path} is unreadable ({type(error).__name__}: {reason[:200]}); {_way_out(path)}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise RunDirectoryError(f"{path} is not a wttm training state ({STATE_FORMAT}); {_way_out(path)}")
    if config is not None and identity(state.get("config") or {}) != identity(_plain_json(config)):
        raise RunDirectoryError(f"{path} belongs to another run than {path.parent}/config.json; {_way_out(path)}")
    return state


def _plain_json(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))


def state_from_checkpoint(
    out: str | Path,
    config: dict[str, Any],
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler_state: dict[str, Any],
    rng: dict[str, Any],
) -> dict[str, Any]:
    """A training state rebuilt from ``<out>/checkpoint.pth`` (model, optimizer, epoch) and ``metrics.jsonl``
    (the history up to that epoch), for a run whose ``state.pth`` is missing or unreadable.

    The schedule is set to the checkpoint's epoch (``scheduler`` is the run's fresh one, ``config`` its resolved
    configuration); the gradient scaler and the random generators (``scaler_state``, ``rng``) start afresh, so
    the continuation is not bit-identical to an uninterrupted run. Raises :class:`RunDirectoryError` naming the
    file when it does not hold what is needed.
    """
    from wttm_core.models import read_checkpoint

    out = Path(out)
    path = out / CHECKPOINT_FILE
    try:
        checkpoint = read_checkpoint(path)
    except (ValueError, OSError) as error:
        raise RunDirectoryError(f"{path}: {error}; start again with --force") from None
    try:  # a continuation needs the last finished epoch and the optimizer's state
        epoch = check_int(f"{path}: epoch", checkpoint.get("epoch"), low=1)
    except ValueError as error:
        raise RunDirectoryError(f"{error}; start again with --force") from None
    optimizer = checkpoint.get("optimizer")
    if not isinstance(optimizer, dict):
        raise RunDirectoryError(f"{path} lacks the optimizer's state a continuation needs; start again with --force")
    if checkpoint.get("arch") != config.get("arch") or checkpoint.get("method", config.get("method")) != config.get(
        "method"
    ):
        raise RunDirectoryError(f"{path} belongs to another run than {out}/config.json; start again with --force")
    metrics = out / METRICS_FILE
    history = [row for row in read_jsonl(metrics) if row.get("epoch", math.inf) <= epoch] if metrics.is_file() else []
    if [row.get("epoch") for row in history] != list(range(1, epoch + 1)):
        raise RunDirectoryError(f"{metrics} lacks epochs up to {path}'s epoch {epoch}; start again with --force")
    best = max(history, key=lambda row: row.get("test_acc", -math.inf))
    schedule = dict(scheduler.state_dict(), last_epoch=epoch, _step_count=epoch + 1)
    schedule["_last_lr"] = [group["lr"] for group in optimizer["param_groups"]]
    return {
        "epoch": epoch,
        "batch": 0,
        "model": checkpoint["model"],
        "optimizer": optimizer,
        "scheduler": schedule,
        "scaler": scaler_state,
        "rng": rng,
        "epoch_start_generators": None,
        "meter": None,
        "train_seconds": 0.0,
        "history": history,
        "best": {"test_acc": best.get("test_acc"), "epoch": best.get("epoch")},
        "config": config,
    }


def check_run_directory(out: str | Path, config: dict[str, Any], *, resume: bool | str, force: bool) -> str:
    """:func:`wttm_core.rundir.check_run_directory` with the engine's notion of "the same run"."""
    return _check_run_directory(out, config, resume=resume, force=force, identity=identity)
