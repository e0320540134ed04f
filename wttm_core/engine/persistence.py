"""What a student leaves on disk: its run directory, the per-epoch files and the state to resume from.

A run directory holds ``config.json`` (written once, with provenance), ``metrics.jsonl`` (one line per finished
epoch), ``summary.json``, ``checkpoint.pth`` / ``best.pth`` and ``state.pth`` (the commit point of an epoch or of
an interruption; :mod:`wttm_core.engine.state` writes every file atomically). The loop calls this module at four
places: :func:`open_run_directories` (check every student's ``out`` before any is touched, then prepare them),
:func:`restore` (resume state), :func:`save_epoch` and :func:`save_interruption`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from wttm_core.engine import distributed as D
from wttm_core.engine import speed
from wttm_core.engine.config import LEGACY_VALUES, config_to_dict, environment_info
from wttm_core.engine.metrics import TrainMeter
from wttm_core.engine.state import (
    RUN_FILES,
    RunDirectoryError,
    capture_rng,
    check_run_directory,
    load_state,
    restore_rng,
    save_state,
    state_from_checkpoint,
    write_json,
    write_jsonl,
)
from wttm_core.rundir import owned_run_directory

__all__ = ["config_record", "open_run_directories", "restore", "training_state", "save_epoch", "save_interruption"]


def config_record(student: Any) -> dict[str, Any]:
    """``config.json``: the resolved configuration, the environment (provenance), the data and the objective."""
    cfg, shared = student.cfg, student.shared
    record = config_to_dict(cfg)
    record["environment"] = environment_info(cfg.device, cfg.eval_precision)
    record["environment"]["world_size"] = student.ctx.world_size
    record["data"] = {
        "dataset": cfg.dataset,
        "train_images": len(shared.train_set),
        "test_images": len(shared.test_set),
        "num_classes": shared.num_classes,
        "in_memory": shared.data_given,
    }
    record["method_objective"] = student.method.describe()
    record["term_hyperparameters"] = student.method.hyperparameters()  # every term's values, defaults included
    return record


def _adopt_legacy_values(student: Any) -> None:
    """A run written before a field existed resumes with the value it was made with (unless the caller set it)."""
    path = Path(student.cfg.out) / "config.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    for name, value in LEGACY_VALUES.items():
        if isinstance(stored, dict) and name not in stored and getattr(student.requested, name) is None:
            setattr(student.cfg, name, value)


@contextlib.contextmanager
def owned_run_directories(students: Sequence[Any]) -> Iterator[None]:
    """Hold every student's run directory (rank 0's :class:`~wttm_core.rundir.RunLock`) for the block: a second
    process is refused naming the holder, and the kernel releases the locks however this process ends."""
    with contextlib.ExitStack() as owned:
        for student in students:
            out = student.cfg.out if student.ctx.is_main else None
            owned.enter_context(owned_run_directory(out))
        yield


def _decide(student: Any, resume: bool | str, force: bool) -> object:
    """Rank 0's decision about ``out`` (``"fresh"``, ``"resume"``, ``"overwrite"``) agreed by every rank."""
    if student.cfg.out is None:
        if resume:
            raise ValueError("resume needs an output directory (out)")
        return None
    if resume:
        _adopt_legacy_values(student)
    decision: object = None
    if student.ctx.is_main:
        try:
            decision = check_run_directory(student.cfg.out, config_record(student), resume=resume, force=force)
        except RunDirectoryError as error:
            decision = error
    decision = D.broadcast_object(decision, student.ctx)
    if isinstance(decision, Exception):
        raise decision
    return decision


def _prepare(student: Any, decision: object) -> dict[str, Any] | None:
    if decision is None:
        return None
    out = Path(student.cfg.out)
    if decision == "resume":  # a corrupt or foreign state.pth is one line with the way out
        return load_state(out / "state.pth", config_record(student))
    if decision == "checkpoint":  # --resume-from-checkpoint: state.pth is lost, checkpoint.pth holds the rest
        rng = capture_rng(speed.loader_generators(student.train_loader))
        return state_from_checkpoint(
            out, config_record(student), scheduler=student.scheduler, scaler_state=student.scaler.state_dict(), rng=rng
        )
    if student.ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if decision == "overwrite":
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        write_json(out / "config.json", config_record(student))
    D.barrier(student.ctx)
    return None


def open_run_directories(
    students: Sequence[Any], resume: Sequence[bool | str], force: Sequence[bool]
) -> list[dict[str, Any] | None]:
    """Check every student's ``out`` (raising before anything is written), then prepare them; returns each
    student's saved state to resume from (``None``: a fresh start)."""
    outs = [str(Path(s.cfg.out).resolve()) for s in students if s.cfg.out is not None]
    if len(set(outs)) != len(outs):
        raise ValueError("out: the students of a cohort need distinct output directories")
    decisions = [_decide(s, r, f) for s, r, f in zip(students, resume, force, strict=True)]
    return [_prepare(s, d) for s, d in zip(students, decisions, strict=True)]


def restore(student: Any, state: dict[str, Any], generators: dict[str, Any]) -> None:
    """Put a student back in a saved state (model, optimizer, schedule, scaler, history; the generators when the
    state is an epoch's end) and drop the metrics lines of an epoch cut short before its state was committed."""
    student.student.load_state_dict(state["model"])
    student.optimizer.load_state_dict(state["optimizer"])
    if student.graphed_step is not None:  # the momentum buffers are new tensors: a graph must be captured anew
        student.graphed_step.reset()
    student.scheduler.load_state_dict(state["scheduler"])
    student.scaler.load_state_dict(state["scaler"])
    student.history = list(state["history"])
    student.best = dict(state["best"])
    student.partial = state if state["batch"] > 0 else None
    if state["batch"] == 0:  # stopped at an epoch end: every generator continues from there
        restore_rng(state["rng"], generators)
    if _writes(student):
        write_jsonl(Path(student.cfg.out) / "metrics.jsonl", student.history)
    summary = Path(student.cfg.out) / "summary.json" if student.cfg.out is not None else None
    if summary is not None and summary.is_file():  # a student that diverged stays stopped
        student.stopped = json.loads(summary.read_text()).get("diverged")


def training_state(
    student: Any,
    epochs_done: int,
    batch: int,
    meter: TrainMeter | None,
    epoch_start: dict | None,
    train_seconds: float,
    generators: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to continue: model, optimizer, schedule, scaler, generators, position, metrics so far."""
    return {
        "epoch": epochs_done,
        "batch": batch,
        "model": student.student.state_dict(),
        "optimizer": student.optimizer.state_dict(),
        "scheduler": student.scheduler.state_dict(),
        "scaler": student.scaler.state_dict(),
        "rng": capture_rng(generators),
        "epoch_start_generators": epoch_start,
        "meter": meter.state_dict() if meter is not None else None,
        "train_seconds": train_seconds,
        "history": student.history,
        "best": student.best,
        "config": config_to_dict(student.cfg),
    }


def _writes(student: Any) -> bool:
    return student.cfg.out is not None and student.ctx.is_main


def save_summary(student: Any) -> None:
    """Rewrite ``summary.json`` (rank 0, with an output directory)."""
    if _writes(student):
        write_json(Path(student.cfg.out) / "summary.json", student.summary())


def save_epoch(student: Any, epoch: int, record: dict[str, Any], improved: bool, generators: dict[str, Any]) -> None:
    """The files of a finished epoch; ``state.pth`` last (the commit point)."""
    from wttm_core.models import save_checkpoint

    if not _writes(student):
        return
    cfg, out = student.cfg, Path(student.cfg.out)
    common = {"arch": cfg.arch, "epoch": epoch + 1, "accuracy": record["test_acc"]}
    extra = {"method": cfg.method, "test_acc": record["test_acc"], "seed": cfg.seed}
    if improved:
        save_checkpoint(out / "best.pth", student.student, **common, extra=extra)
    save_checkpoint(
        out / "checkpoint.pth", student.student, **common, optimizer_state=student.optimizer.state_dict(), extra=extra
    )
    write_jsonl(out / "metrics.jsonl", student.history)
    save_summary(student)
    save_state(out / "state.pth", training_state(student, epoch + 1, 0, None, None, 0.0, generators))


def save_interruption(
    student: Any,
    epoch: int,
    batch: int,
    meter: TrainMeter,
    epoch_start: dict,
    seconds: float,
    generators: dict[str, Any],
) -> bool:
    """Save a mid-epoch state (Ctrl-C); whether a file was written."""
    if not _writes(student):
        return False
    state = training_state(student, epoch, batch, meter, epoch_start, seconds, generators)
    save_state(Path(student.cfg.out) / "state.pth", state)
    return True
