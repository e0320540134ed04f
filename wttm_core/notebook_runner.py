"""Execute the project's notebooks with papermill (``make notebooks``).

``execute_notebook(src, dst, parameters)`` runs one notebook on the ``python3`` kernel with a per-cell timeout,
without storing widget state (a FigureWidget would otherwise put ~5 MB of JavaScript into the saved file), and
writes the executed notebook atomically: papermill writes into a temporary file next to ``dst`` that replaces
``dst`` only when the run is over (also after a failure, so the saved notebook shows the error).

Command line::

    python -m wttm_core.notebook_runner [--notebooks notebooks] [--out build/notebooks]
                                        [--profile default|smoke] [--only NAME ...] [--timeout SECONDS]

executes every ``*.ipynb`` in ``--notebooks`` in name order with ``interactive=False`` (the static figures),
passes ``profile`` only to notebooks whose parameters cell declares it, prints a table of notebook / seconds /
status, and exits with 1 if any notebook failed (2 on bad arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wttm_core.atomic import atomic_path

__all__ = ["KERNEL_NAME", "PROFILES", "RunResult", "declared_parameters", "execute_notebook", "run_all", "main"]

KERNEL_NAME = "python3"
PROFILES = ("default", "smoke")
DEFAULT_CELL_TIMEOUT_S = 300


def _check_timeout(timeout: object) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    return int(timeout) if float(timeout).is_integer() else int(timeout) + 1


def execute_notebook(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_CELL_TIMEOUT_S,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> Path:
    """Execute ``src`` with papermill and write the executed notebook to ``dst`` atomically; return ``dst``.

    ``parameters`` are injected after the cell tagged ``parameters``; ``timeout`` is the per-cell limit in seconds;
    the kernel runs in ``cwd`` (default: the notebook's own directory, so relative paths work as in JupyterLab).
    Raises ``FileNotFoundError`` for a missing ``src`` and papermill's ``PapermillExecutionError`` when a cell
    fails (``dst`` then holds the executed notebook up to and including the error).
    """
    import papermill

    src_path = Path(src)
    if not src_path.is_file():
        raise FileNotFoundError(f"src: no notebook at {src_path}")
    if src_path.suffix != ".ipynb":
        raise ValueError(f"src must be a .ipynb file, got {src_path.name}")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping or None, got {type(parameters).__name__}")
    cell_timeout = _check_timeout(timeout)
    dst_path = Path(dst)
    # keep_partial: a failed run still leaves the executed notebook, showing its failing cell
    with atomic_path(dst_path, keep_partial=True, suffix=".tmp.ipynb") as tmp:
        papermill.execute_notebook(
            str(src_path),
            str(tmp),
            parameters=dict(parameters or {}),
            kernel_name=KERNEL_NAME,
            cwd=str(cwd if cwd is not None else src_path.parent.resolve()),
            progress_bar=False,
            request_save_on_cell_execute=False,
            execution_timeout=cell_timeout,
            store_widget_state=False,
        )
    return dst_path


def declared_parameters(path: str | os.PathLike[str]) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (via ``papermill.inspect_notebook``)."""
    import papermill

    return set(papermill.inspect_notebook(str(path)))


@dataclass(frozen=True)
class RunResult:
    """Outcome of one notebook: ``status`` is ``"ok"`` or ``"FAILED"`` (``error`` holds the first line why)."""

    name: str
    seconds: float
    status: str
    output: Path
    error: str = ""


def _select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    if not only:
        return list(notebooks)
    by_name = {p.name: p for p in notebooks} | {p.stem: p for p in notebooks}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise ValueError(f"--only: no notebook named {unknown}; available: {[p.stem for p in notebooks]}")
    chosen = {by_name[name] for name in only}
    return [p for p in notebooks if p in chosen]


def run_all(
    notebook_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    profile: str = "default",
    only: Sequence[str] | None = None,
    timeout: float = DEFAULT_CELL_TIMEOUT_S,
) -> list[RunResult]:
    """Execute every notebook of ``notebook_dir`` (name order, ``interactive=False``) into ``out_dir``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    source = Path(notebook_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"notebook_dir: no directory {source} (run from the repository root?)")
    notebooks = _select(sorted(p for p in source.glob("*.ipynb") if not p.name.startswith(".")), only)
    results = []
    for path in notebooks:
        parameters: dict[str, Any] = {"interactive": False}
        if "profile" in declared_parameters(path):
            parameters["profile"] = profile
        output = Path(out_dir) / path.name
        start = time.perf_counter()
        try:
            execute_notebook(path, output, parameters, timeout)
            status, error = "ok", ""
        except Exception as exc:  # report every notebook, then fail at the end
            status = "FAILED"
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        results.append(RunResult(path.name, time.perf_counter() - start, status, output, error))
        print(f"{path.name}: {status} in {results[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    return results


def format_table(results: Sequence[RunResult]) -> str:
    """A plain-text table: notebook, seconds, status (and the error of failed ones)."""
    width = max([len("notebook"), *(len(r.name) for r in results)])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", f"{'-' * width}  {'-' * 8}  ------"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.seconds:>8.1f}  {r.status}" + (f"  {r.error}" if r.error else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wttm_core.notebook_runner", description="Execute the notebooks with papermill."
    )
    parser.add_argument("--notebooks", default="notebooks", help="directory of notebooks (default: notebooks)")
    parser.add_argument("--out", default="build/notebooks", help="output directory (default: build/notebooks)")
    parser.add_argument("--profile", default="default", choices=PROFILES, help="passed where a notebook declares it")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (name or stem)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_CELL_TIMEOUT_S, help="per-cell timeout in seconds (default: 300)"
    )
    args = parser.parse_args(argv)
    try:
        results = run_all(args.notebooks, args.out, profile=args.profile, only=args.only, timeout=args.timeout)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not results:
        print(f"error: no notebooks in {args.notebooks}", file=sys.stderr)
        return 2
    print(format_table(results))
    return 1 if any(r.status != "ok" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
