"""The ``wttm distill`` command line the CLI, resume and distributed tests run, with per-test changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DISTILL_DEFAULTS: dict[str, Any] = {
    "dataset": "synthetic",
    "train_size": 512,
    "test_size": 128,
    "batch_size": 64,
    "device": "cpu",
    "teacher": "resnet8",
    "student": "resnet8",
    "method": "wttm",
    "gamma": 0.3,
    "beta": 1.5,
    "seed": 7,
    "deterministic": True,
    "epochs": 3,
    "quiet": True,
}


def distill_argv(teacher: Path, out: Path, **changes: Any) -> list[str]:
    """``["distill", "--dataset", "synthetic", ...]``: the defaults above with ``changes`` (``True`` is a bare
    flag, ``False`` / ``None`` leave the flag out), then ``--teacher-checkpoint`` and ``--out``."""
    options = {**DISTILL_DEFAULTS, **changes, "teacher_checkpoint": teacher, "out": out}
    argv = ["distill"]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv
