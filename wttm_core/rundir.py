"""Run directories on disk, without torch: file names, atomic writes, JSON / JSON-lines, one owner at a time.

A run directory written by the engine holds ``config.json`` (the resolved configuration, written once),
``metrics.jsonl`` (one JSON object per finished epoch), ``summary.json`` (best and last accuracy),
``state.pth`` (everything needed to continue; the commit point of an epoch), ``checkpoint.pth`` / ``best.pth``
(the standard checkpoint layout) and the lock file :data:`LOCK_FILE`. This module is the one home of

- **atomic writes** (:func:`atomic_path`, :func:`atomic_write`, :func:`write_text_atomic`,
  :func:`write_bytes_atomic`): the data goes into a hidden temporary file in the target's folder, is flushed
  and fsync'ed, gets the permissions a plain ``open`` would give (``0o666`` minus the umask; ``mkstemp`` alone
  would leave ``0o600``) and is renamed over the target with ``os.replace``. On an error (a full disk, a
  permission refused) the temporary file is removed and the target is left as it was, so a crash - even
  SIGKILL - leaves the old or the new version, never a torn one;
- **JSON and JSON-lines** reading and writing (:func:`read_json`, :func:`read_jsonl`, :func:`write_json`,
  :func:`write_jsonl`), with errors that name the file and the line;
- **ownership**: :class:`RunLock` holds an OS-level lock (``fcntl.flock``) on :data:`LOCK_FILE` inside the
  directory for the whole run. The kernel drops it when the process ends in any way (SIGKILL included), so a
  lock is never stale; a second process is refused with one line naming the holder (pid, host, command);
- **the decision** what a new run may do with its output folder (:func:`check_run_directory`): start fresh,
  resume, continue from ``checkpoint.pth``, replace (``force``), or refuse with the way out.

Reading runs for analysis (``Run``, grouping, aggregation across seeds) lives in :mod:`wttm_core.runs`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "DIAGNOSTICS_FILE",
    "STATE_FILE",
    "CHECKPOINT_FILE",
    "BEST_FILE",
    "LOCK_FILE",
    "RUN_FILES",
    "RunDirectoryError",
    "RunLockedError",
    "atomic_path",
    "atomic_write",
    "write_text_atomic",
    "write_bytes_atomic",
    "read_json",
    "read_jsonl",
    "write_json",
    "write_jsonl",
    "RunLock",
    "owned_run_directory",
    "check_run_directory",
]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
DIAGNOSTICS_FILE = "diagnostics.jsonl"
STATE_FILE = "state.pth"
CHECKPOINT_FILE = "checkpoint.pth"
BEST_FILE = "best.pth"
#: The lock file inside a run directory (its content names the holder; the lock itself is ``flock``'s).
LOCK_FILE = ".wttm.lock"
#: The files a run writes (and a ``force`` replaces); nothing else in the folder is ever deleted.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, STATE_FILE, CHECKPOINT_FILE, BEST_FILE, SUMMARY_FILE)

PathLike = str | os.PathLike[str]
_MODES = ("w", "wb")


class RunDirectoryError(ValueError):
    """The output directory holds something this run must not touch, or nothing it can continue from."""


class RunLockedError(RunDirectoryError):
    """Another process owns the run directory (it holds the directory's lock)."""


# ------------------------------------------------------------------------------------------- atomic writes
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
def atomic_path(path: PathLike, *, keep_partial: bool = False, suffix: str = ".tmp") -> Iterator[Path]:
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
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing (``mode`` ``"w"``, UTF-8 text, or ``"wb"``); install it at ``path``
    after the block, flushed and fsync'ed; on an error remove it and leave ``path`` untouched."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    with atomic_path(path) as temporary:
        with open(temporary, mode, encoding="utf-8" if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(path: PathLike, text: str) -> None:
    """Atomically replace ``path`` by a UTF-8 text file holding ``text``."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_bytes_atomic(path: PathLike, data: bytes | bytearray | memoryview) -> None:
    """Atomically replace ``path`` by ``data``. Serialise first, then call this: the operating system's own
    error (``ENOSPC``, ``EACCES``) then reaches the caller instead of a serialiser's wrapper of it."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


# ------------------------------------------------------------------------------------------- JSON files
def read_json(path: PathLike) -> dict[str, Any]:
    """A JSON file holding one object. Raises ``ValueError`` naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file, one per non-blank line.

    Raises ``ValueError`` naming the file and line when a line is not a JSON object.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    return rows


def write_json(path: PathLike, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: PathLike, rows: list[dict[str, Any]]) -> None:
    """Atomically (re)write a JSON-lines file with one object per row."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


# ------------------------------------------------------------------------------------------- ownership
def _holder_record() -> dict[str, Any]:
    command = " ".join(sys.argv) if sys.argv and sys.argv[0] else sys.executable
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command[:300], "since": time.time()}


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["since"])))
        return f"pid {holder['pid']} on {holder['host']} since {when} ({holder['command']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


class RunLock:
    """The lock of one run directory: ``fcntl.flock`` on ``<directory>/.wttm.lock``, never waiting.

    :meth:`acquire` creates the directory when needed, takes the lock or raises :class:`RunLockedError`
    naming the holder, and writes this process's pid, host and command into the file. :meth:`release` gives
    it back; after a failure (``cleanup=True``) it also removes the lock file and the folder when this lock
    created them and nothing else is in them. Where ``fcntl`` does not exist (Windows) the lock is a no-op.
    """

    def __init__(self, directory: PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None
        self._created: list[Path] = []
        self._created_file = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one owner is not enforced, files are still atomic
            return self
        if self.directory.exists() and not self.directory.is_dir():
            raise RunDirectoryError(f"out: {self.directory} exists and is not a directory")
        missing = [self.directory, *self.directory.parents]
        self._created = missing[: next(i for i, d in enumerate(missing) if d.exists())]
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd, created = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                os.close(fd)
                raise RunLockedError(
                    f"out: {self.directory} is in use by {holder}; a run directory has one owner at a time: "
                    "wait for that run to end or stop it, or choose another --out"
                ) from None
            # a releasing owner may have unlinked the file between our open and our lock: lock the current one
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            os.close(fd)
        self._fd, self._created_file = fd, created
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_holder_record()) + "\n").encode(), 0)
        return self

    def _open(self) -> tuple[int, bool]:
        # never through a symbolic link: a planted link would make the holder record overwrite its target
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            try:
                return os.open(self.path, flags | os.O_EXCL, 0o644), True
            except FileExistsError:
                return os.open(self.path, flags, 0o644), False
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO) or self.path.is_symlink():
                raise RunDirectoryError(
                    f"out: {self.path} is not a plain file (a link, a folder or a device); remove it"
                ) from None
            raise

    def release(self, *, cleanup: bool = False) -> None:
        if self._fd is None:
            return
        if cleanup and self._created_file:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still holding the lock (see the samestat check in acquire)
        os.close(self._fd)
        self._fd = None
        if cleanup:
            for folder in self._created:  # the folders acquire made, deepest first, each only when empty
                try:
                    folder.rmdir()
                except OSError:
                    break

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self.release(cleanup=error is not None)


@contextlib.contextmanager
def owned_run_directory(out: PathLike | None) -> Iterator[RunLock | None]:
    """Own ``out`` for the duration of the block (``None``: no directory, nothing to own).

    On an error inside the block the lock file and the folder are removed again if taking the lock created
    them and nothing else was written, so a refused run leaves no trace.
    """
    if out is None:
        yield None
        return
    with RunLock(out) as lock:
        yield lock


# ------------------------------------------------------------------------------------------- the decision
def _entries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def check_run_directory(
    out: PathLike,
    config: dict[str, Any],
    *,
    resume: bool | str,
    force: bool,
    identity: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> str:
    """Decide what a run of ``config`` may do with ``out``; touches nothing (call it holding the lock).

    Returns ``"fresh"`` (empty or absent: start), ``"resume"`` (the same run: continue from ``state.pth``),
    ``"checkpoint"`` (``resume="checkpoint"``: continue from ``checkpoint.pth``) or ``"overwrite"`` (``force``:
    the run files there are replaced; nothing else). ``identity`` maps a config dict to the part that decides
    what is computed. Raises :class:`RunDirectoryError` with the way out when ``resume`` and ``force`` are both
    set, when ``out`` holds a different run, foreign files, the same run without ``resume``, or - with
    ``resume`` - nothing to continue from (``--resume`` never starts from scratch).
    """
    out = Path(out)
    if resume and force:
        raise RunDirectoryError(
            "resume and force contradict each other: --resume continues the run in --out, --force replaces it; "
            "pass only one"
        )
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"out: {out} exists and is not a directory")
    if not out.exists() or not _entries(out):
        if resume:
            raise RunDirectoryError(f"out: {out} holds no run to resume; start the run without --resume")
        return "fresh"
    if force:
        return "overwrite"
    config_path = out / CONFIG_FILE
    if not config_path.is_file():
        raise RunDirectoryError(
            f"out: {out} is not empty and holds no wttm run ({CONFIG_FILE}); choose an empty folder, or use "
            "--force (replaces only the run's own files)"
        )
    try:
        old = read_json(config_path)
    except (ValueError, OSError) as error:
        raise RunDirectoryError(f"out: {config_path} is unreadable ({error}); use --force to replace the run") from None
    changed = _differences(identity(old), identity(json.loads(json.dumps(config))))
    if changed:
        shown = "; ".join(changed[:4]) + (" ..." if len(changed) > 4 else "")
        raise RunDirectoryError(f"out: {out} holds a different run ({shown}); use --force to replace it")
    if not resume:
        raise RunDirectoryError(f"out: {out} already holds this run; use --resume to continue it or --force")
    if resume == "checkpoint":
        return "checkpoint"
    if not (out / STATE_FILE).is_file():
        raise RunDirectoryError(_no_state_message(out))
    return "resume"


def _no_state_message(out: Path) -> str:
    way = (
        f"continue from its last epoch's {CHECKPOINT_FILE} with --resume-from-checkpoint (the random generators "
        "restart, so the numbers are not bit-identical to an uninterrupted run), or "
        if (out / CHECKPOINT_FILE).is_file()
        else ""
    )
    return (
        f"out: {out} has no {STATE_FILE} to resume from (--resume never starts from scratch); "
        f"{way}start again with --force (replaces {', '.join(RUN_FILES)})"
    )
