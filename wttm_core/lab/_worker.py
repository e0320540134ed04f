"""The notebook runner's worker: execute one notebook with papermill in a process of its own.

Run as a script (``python .../wttm_core/lab/_worker.py SPEC.json``) by :mod:`wttm_core.lab.runner`; it reads
what to run from ``SPEC.json`` and writes ``{"status", "where", "cause", "peak_bytes"}`` to the file the spec
names. It imports neither torch nor the ``wttm_core`` package (only its two standard-library helpers, loaded by
file), so it starts fast and stays small.

* The kernel talks over IPC sockets in a private temporary folder on POSIX systems (over TCP every kernel warns
  that it runs without encryption).
* Each cell start is reported to the progress file (``$WTTM_PROGRESS``), for the runner's progress lines.
* The kernel's peak memory is its ``VmHWM`` (peak resident set) read after every cell; ``ru_maxrss`` would be
  wrong here, since a child inherits its parent's high-water mark across ``fork``/``exec``.
* At the whole-run deadline the running cell is interrupted like Ctrl-C (training saves its state); a kernel
  still busy after a grace period is killed, and papermill saves the notebook with what ran.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

KERNEL_NAME = "python3"
GRACE_S = 90.0
_HERE = Path(__file__).resolve().parent
_KERNELS: list[Any] = []
_PEAK = {"bytes": 0}


def _load(name: str, path: Path) -> Any:
    """Import a standard-library-only module of this package by its file (the package itself imports torch)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


atomic = _load("_wttm_atomic", _HERE.parent / "atomic.py")
progress = _load("_wttm_progress", _HERE / "progress.py")


def kernel_manager_class() -> type:
    """An ``AsyncKernelManager`` that remembers its instances and uses IPC sockets on POSIX."""
    from jupyter_client.manager import AsyncKernelManager

    class RunnerKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            if os.name == "posix":
                kwargs.setdefault("transport", "ipc")
                kwargs.setdefault("ip", os.path.join(tempfile.mkdtemp(prefix="wttm-kernel-"), "k"))
            super().__init__(**kwargs)
            _KERNELS.append(self)

    return RunnerKernelManager


def _kernel_peak() -> None:
    """Raise the recorded peak to the kernel's ``VmHWM`` (Linux; elsewhere nothing is recorded)."""
    for km in _KERNELS:
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        with contextlib.suppress(OSError, ValueError, TypeError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    _PEAK["bytes"] = max(_PEAK["bytes"], int(line.split()[1]) * 1024)


def _hooks(total: int) -> dict[str, Callable[..., None]]:
    """nbclient hooks: report each cell's start; read the kernel's peak memory after each cell."""

    def on_cell_start(cell: Any = None, cell_index: int = 0, **_: Any) -> None:
        first = next((line for line in str(cell.source).splitlines() if line.strip()), "") if cell else ""
        progress.emit({"event": "cell", "index": cell_index + 1, "total": total, "source": first[:80]})

    def on_cell_executed(**_: Any) -> None:
        _kernel_peak()

    return {"on_cell_start": on_cell_start, "on_cell_executed": on_cell_executed}


def execute(src: Path, dst: Path, parameters: Mapping[str, Any], timeout: int | None, cwd: Path) -> None:
    """papermill ``src`` -> ``dst`` (atomically; a failed run keeps what ran), no widget state, IPC kernel."""
    import nbformat
    import papermill

    total = len(nbformat.read(str(src), as_version=4).cells) + (1 if parameters else 0)
    with atomic.atomic_path(dst, keep_partial=True, suffix=".tmp.ipynb") as tmp:
        papermill.execute_notebook(
            str(src),
            str(tmp),
            parameters=dict(parameters),
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            request_save_on_cell_execute=True,  # a killed run still leaves the cells it finished
            execution_timeout=timeout,
            store_widget_state=False,  # a FigureWidget would store ~5 MB of JavaScript
            kernel_manager_class=kernel_manager_class(),
            **_hooks(total),
        )


def interrupt_kernels(grace_s: float) -> None:
    """SIGINT to every kernel's process group (like Ctrl-C); SIGKILL to those still alive ``grace_s`` later."""
    pids = [getattr(getattr(km, "provisioner", None), "pid", None) for km in _KERNELS]
    pids = [pid for pid in pids if pid]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGINT)
    time.sleep(grace_s)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _first_line(text: object) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def failure(error: BaseException, progress_file: str | None) -> tuple[str, str]:
    """``(where, cause)``: the failing cell (number and first line) and the error, each in one line."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        first = _first_line(error.source)[:60]
        return f"cell {error.cell_index + 1} ({first!r})", f"{error.ename}: {_first_line(error.evalue)}"
    cells = []
    if progress_file:
        events, _ = progress.read_events(progress_file)
        cells = [e for e in events if e.get("event") == "cell"]
    where = f"cell {cells[-1]['index']} ({cells[-1]['source'][:60]!r})" if cells else "start-up"
    return where, f"{type(error).__name__}: {_first_line(error)}".strip().rstrip(":")


def main(spec_path: str) -> None:
    """Run the notebook ``spec_path`` describes; write the result file; exit."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    spec = json.loads(Path(spec_path).read_text())
    limit = {"hit": False}
    if spec.get("deadline"):

        def stop() -> None:
            limit["hit"] = True
            interrupt_kernels(float(spec.get("grace_s", GRACE_S)))

        timer = threading.Timer(max(0.0, spec["deadline"] - time.time()), stop)
        timer.daemon = True
        timer.start()
    result: dict[str, Any] = {"status": "ok", "where": "", "cause": ""}
    try:
        execute(Path(spec["src"]), Path(spec["dst"]), spec["parameters"], spec["timeout"], Path(spec["cwd"]))
    except BaseException as error:  # every failure becomes one line for the runner
        where, cause = failure(error, spec.get("progress"))
        if limit["hit"]:
            cause = f"stopped by the whole-run limit (--max-minutes); run again to continue ({cause})"
        result = {"status": "FAILED", "where": where, "cause": cause}
    result["peak_bytes"] = _PEAK["bytes"] or None
    Path(spec["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # this folder is not a package root
    main(sys.argv[1])
    os._exit(0)  # do not wait for a pending watchdog timer
