"""The small CPU training configuration that the engine tests vary (resnet8 on a tiny stand-in, batch 32)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wttm_core.engine import TrainConfig


def tiny_run_config(teacher_file: Path, out: Path | None, **changes: Any) -> TrainConfig:
    """A quiet CPU run of a resnet8 student of ``teacher_file`` into ``out``; ``changes`` set any other field."""
    base = dict(
        arch="resnet8",
        teacher_checkpoint=str(teacher_file),
        batch_size=32,
        device="cpu",
        out=str(out) if out is not None else None,
        quiet=True,
    )
    return TrainConfig(**{**base, **changes})
