"""Atomic file writes: a reader sees either the old file or the complete new one, never half of it.

Every file the project writes for later (checkpoints, training state, ``metrics.jsonl``, ``config.json``,
sweep tables, executed notebooks, presentation copies) goes through here. The data is written into a hidden
temporary file in the target's folder, flushed to disk, given the permissions a plain ``open`` would give
(``0o666`` minus the process umask; ``mkstemp`` alone would leave ``0o600``) and renamed over the target with
``os.replace``. On an error the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "write_text_atomic"]

_MODES = ("w", "wb")


def _umask() -> int:
    """The process umask, read from ``/proc`` where possible (setting it to read it is not thread-safe)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split(":", 1)[1].strip(), 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, keep_partial: bool = False, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path`` for a writer that wants a file name, then install it.

    On success the temporary file replaces ``path``. On an error it is removed, unless ``keep_partial`` is set
    and the writer got as far as writing something: then it replaces ``path`` too (an executed notebook that
    shows its failing cell is worth keeping), and the error propagates. ``suffix`` ends the temporary name
    (for writers that look at the extension).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    temporary = Path(name)
    written = False
    try:
        yield temporary
        written = True
        _install(temporary, target)
    except BaseException:
        if not written and keep_partial and temporary.exists() and temporary.stat().st_size > 0:
            with contextlib.suppress(OSError):
                _install(temporary, target)
        temporary.unlink(missing_ok=True)
        raise


def _install(temporary: Path, target: Path) -> None:
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, target)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing (``mode`` ``"w"``, UTF-8 text, or ``"wb"``); install it at ``path``
    after the block, flushed and fsync'ed; on an error remove it and leave ``path`` untouched."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    with atomic_path(path) as temporary:
        with open(temporary, mode, encoding="utf-8" if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Atomically replace ``path`` by a UTF-8 text file holding ``text``."""
    with atomic_write(path, "w") as handle:
        handle.write(text)
