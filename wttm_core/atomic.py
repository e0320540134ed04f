"""Atomic file writes (kept as an alias): the one home is :mod:`wttm_core.rundir`."""

from __future__ import annotations

from wttm_core.rundir import atomic_path, atomic_write, write_bytes_atomic, write_text_atomic

__all__ = ["atomic_path", "atomic_write", "write_bytes_atomic", "write_text_atomic"]
