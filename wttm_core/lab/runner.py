"""Execute the project's notebooks with papermill: ``make notebooks`` / ``wttm notebooks``.

Every notebook runs in its own worker process (:mod:`wttm_core.lab._worker`), which runs papermill
and its kernel; the runner itself only starts workers, reports and summarises, so a crashed kernel, a ZeroMQ
error or a stuck cell never takes the runner down and its log (``<out>/logs/<name>.log``) never reaches the
terminal. What the terminal shows:

* one line as each notebook starts and one as it ends (seconds, peak memory of its kernel, size of the saved
  notebook);
* progress lines while a long cell runs: which cell, and for training cells (which report every epoch through
  :mod:`wttm_core.lab.progress`) how many epochs are done and the estimated time left;
* on a failure, one line naming the notebook, the cell and the cause; the executed notebook is kept up to and
  including the failing cell, and the other notebooks still run;
* at the end a table (notebook, seconds, status, peak memory, size) and exit status 1 if any notebook failed.

There is no per-cell time limit by default (a slow machine makes training cells slow, not wrong); ``--timeout``
sets one, and ``--max-minutes`` is a guard on the whole run: when it is reached, the running cell is interrupted
like Ctrl-C (training saves its state, so running again continues where it stopped) and the notebooks not yet
started are reported as skipped.

Kernels run over IPC sockets rather than TCP on POSIX systems (no "Kernel is running over TCP without encryption"
warning), with ``$WTTM_WORK_DIR`` set to the folder the runner was started in (where runs and caches go, see
:func:`wttm_core.lab.experiments.project_root`) and ``$WTTM_FIGURE_IMAGES`` set to ``--images`` (``png`` by default:
every figure also saved as an image, see :mod:`wttm_core.viz.export`; ``none``: no image). ``--index`` also
writes ``<out>/index.html``: a page linking an HTML rendering of every executed notebook (``<out>/html/``, readable
offline, see :mod:`wttm_core.lab.index`) with its status and time.

Command line::

    wttm notebooks [--notebooks DIR] [--out build/notebooks] [--profile default|smoke] [--only NAME ...]
                   [--max-minutes M] [--timeout SECONDS] [--images png|svg|none] [--no-index]
    python -m wttm_core.notebook_runner ...   (the same, without the index unless --index)
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wttm_core._checks import check_number
from wttm_core.lab import _worker
from wttm_core.lab import progress as progress_events
from wttm_core.lab.progress import PROGRESS_ENV, format_seconds

__all__ = [
    "KERNEL_NAME",
    "PROFILES",
    "RunResult",
    "declared_parameters",
    "parameter_defaults",
    "execute_notebook",
    "run_all",
    "format_table",
    "main",
]

KERNEL_NAME = _worker.KERNEL_NAME
PROFILES = ("default", "smoke")
DEFAULT_CELL_TIMEOUT_S = None  # no per-cell limit: a slow machine makes cells slow, not wrong
DEFAULT_MAX_MINUTES = 240.0
GRACE_S = _worker.GRACE_S  # after the whole-run limit: time for an interrupted cell to save its state
PROGRESS_EVERY_S = 20.0
IMAGE_CHOICES = ("png", "svg", "none")
Log = Callable[[str], None]


def _log_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _check_timeout(timeout: object) -> int | None:
    if timeout is None:
        return None
    return math.ceil(check_number("timeout", timeout, low=0, low_open=True))  # whole seconds


# ------------------------------------------------------------------------------------------ one notebook


def execute_notebook(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = DEFAULT_CELL_TIMEOUT_S,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> Path:
    """Execute ``src`` with papermill and write the executed notebook to ``dst`` atomically; return ``dst``.

    ``parameters`` are injected after the cell tagged ``parameters``; ``timeout`` is an optional per-cell limit in
    seconds (``None``: none); the kernel runs in ``cwd`` (default: the notebook's own directory, so relative paths
    work as in JupyterLab). Widget state is not stored (a FigureWidget would put ~5 MB of JavaScript into the
    file). Raises ``FileNotFoundError`` for a missing ``src`` and papermill's ``PapermillExecutionError`` when a
    cell fails (``dst`` then holds the executed notebook up to and including the error; after other failures,
    e.g. a dead kernel, the cells run so far).
    """

    src_path = Path(src)
    if not src_path.is_file():
        raise FileNotFoundError(f"src: no notebook at {src_path}")
    if src_path.suffix != ".ipynb":
        raise ValueError(f"src must be a .ipynb file, got {src_path.name}")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping or None, got {type(parameters).__name__}")
    cell_timeout = _check_timeout(timeout)
    cwd_path = Path(cwd) if cwd is not None else src_path.parent.resolve()
    _worker.execute(src_path, Path(dst), dict(parameters or {}), cell_timeout, cwd_path)
    return Path(dst)


def declared_parameters(path: str | os.PathLike[str]) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (via ``papermill.inspect_notebook``)."""
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def parameter_defaults(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The values the notebook's ``parameters`` cell assigns, for those that are Python literals (papermill's
    inspection gives their source text; a name whose default is not a literal is left out)."""
    import papermill

    defaults = {}
    for name, info in papermill.inspect_notebook(str(path)).items():
        with contextlib.suppress(ValueError, SyntaxError, TypeError):
            defaults[name] = ast.literal_eval(info["default"])
    return defaults


# ------------------------------------------------------------------------------------------ the runner


@dataclass(frozen=True)
class RunResult:
    """Outcome of one notebook: ``status`` is ``"ok"``, ``"FAILED"`` or ``"skipped"`` (``error``: why)."""

    name: str
    seconds: float
    status: str
    output: Path
    error: str = ""
    peak_mb: float | None = None
    size_mb: float | None = None
    log: Path | None = None


@dataclass
class _Watch:
    """What the runner knows about the running notebook from its progress events."""

    name: str
    started: float = field(default_factory=time.time)
    cell: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    last_print: float = field(default_factory=time.time)
    offset: int = 0

    def update(self, events: Sequence[dict[str, Any]], log: Log) -> None:
        fresh_training = False
        for event in events:
            if event.get("event") == "cell":
                self.cell = {**event, "started": event["t"]}
                self.training = {}
            elif event.get("event") == "progress":
                fresh_training = fresh_training or not self.training
                self.training = event
        now = time.time()
        quiet_for = now - self.last_print
        if (self.training and (fresh_training or quiet_for >= PROGRESS_EVERY_S)) or (
            self.cell and now - self.cell["started"] > 30 and quiet_for >= 3 * PROGRESS_EVERY_S
        ):
            log(self.line(now))
            self.last_print = now

    def line(self, now: float) -> str:
        where = f"    {self.name}: cell {self.cell.get('index', '?')}/{self.cell.get('total', '?')}"
        text = f"{where}, {format_seconds(now - self.started)} in the notebook"
        t = self.training
        if t:
            left = None if t.get("eta_s") is None else max(0.0, t["eta_s"] - (now - t["t"]))  # counts down
            eta = "" if left is None else f", about {format_seconds(left)} left in this cell"
            text += f"; {t['what']}: {t['done']}/{t['total']} epochs ({t.get('note', '')}){eta}"
        elif self.cell:
            text += f"; this cell running for {format_seconds(now - self.cell['started'])}"
        return text


def _worker_env(work_dir: Path, images: str, progress_file: Path) -> dict[str, str]:
    """The environment of a worker and its kernel: this package first on the path, the working folder, figure
    images and the progress file."""
    import wttm_core

    env = dict(os.environ)
    package_parent = str(Path(wttm_core.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("WTTM_WORK_DIR", str(work_dir))
    env[PROGRESS_ENV] = str(progress_file)
    from wttm_core.viz.export import FIGURE_IMAGES_ENV

    env[FIGURE_IMAGES_ENV] = images  # png / svg: every figure; none: no figure (unset would mean: batch runs)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def _kernel_cwd(path: Path, work_dir: Path) -> Path:
    """Where a notebook's kernel runs: its own folder, unless that is inside the installed package (then the
    working folder, so that nothing is ever written into site-packages)."""
    from wttm_core.resources import PACKAGED_DIR

    folder = path.parent.resolve()
    return work_dir if folder.is_relative_to(PACKAGED_DIR) else folder


def _run_one(
    path: Path, output: Path, parameters: dict[str, Any], *, timeout: float | None, deadline: float | None,
    work_dir: Path, images: str, log_file: Path, log: Log,
) -> RunResult:  # fmt: skip
    """Execute one notebook in a worker process, report its progress, and return its result."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wttm-run-") as scratch:
        spec_file, result_file, events = (Path(scratch) / n for n in ("spec.json", "result.json", "events.jsonl"))
        cwd = _kernel_cwd(path, work_dir)
        spec = {"src": str(path.resolve()), "dst": str(output.resolve()), "parameters": parameters,
                "timeout": timeout, "cwd": str(cwd), "deadline": deadline, "grace_s": GRACE_S,
                "result": str(result_file), "progress": str(events)}  # fmt: skip
        spec_file.write_text(json.dumps(spec))
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "w") as handle:
            child = subprocess.Popen(
                [sys.executable, str(Path(_worker.__file__).resolve()), str(spec_file)],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=_worker_env(work_dir, images, events), cwd=str(cwd),
            )  # fmt: skip
            _follow(child, events, _Watch(path.stem), deadline, log)
        outcome = json.loads(result_file.read_text()) if result_file.is_file() else {}
    seconds = time.perf_counter() - start
    if not outcome:
        outcome = {"status": "FAILED", "where": "worker", "cause": f"the worker process ended with {child.returncode}"}
    error = f"{outcome['where']}: {outcome['cause']}" if outcome["status"] != "ok" else ""
    peak = outcome.get("peak_bytes")
    size = output.stat().st_size / 1e6 if output.is_file() else None
    return RunResult(path.name, seconds, outcome["status"], output, error, peak and peak / 1e6, size, log_file)


def _follow(child: subprocess.Popen, events: Path, watch: _Watch, deadline: float | None, log: Log) -> None:
    """Wait for the worker, printing progress; kill it if it outlives the whole-run limit by far."""
    try:
        while child.poll() is None:
            time.sleep(0.5)
            new, watch.offset = progress_events.read_events(events, watch.offset)
            watch.update(new, log)
            if deadline is not None and time.time() > deadline + 2 * GRACE_S:
                child.kill()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=30)
        child.kill()
        raise


def _select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    if not only:
        return list(notebooks)
    by_name = {p.name: p for p in notebooks} | {p.stem: p for p in notebooks}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise ValueError(f"--only: no notebook named {unknown}; available: {[p.stem for p in notebooks]}")
    chosen = {by_name[name] for name in only}
    return [p for p in notebooks if p in chosen]


def _status_line(index: int, count: int, result: RunResult) -> str:
    head = f"[{index}/{count}] {result.name}"
    if result.status == "ok":
        memory = f", peak {result.peak_mb:.0f} MB" if result.peak_mb else ""
        size = f", {result.size_mb:.2f} MB saved" if result.size_mb is not None else ""
        return f"{head}: ok in {result.seconds:.1f} s{memory}{size}"
    if result.status == "skipped":
        return f"{head}: skipped ({result.error})"
    kept = f"; partial notebook kept in {result.output}" if result.output.is_file() else ""
    return f"{head}: FAILED in {result.error}{kept}"


def run_all(
    notebook_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    profile: str = "default",
    only: Sequence[str] | None = None,
    timeout: float | None = DEFAULT_CELL_TIMEOUT_S,
    max_minutes: float | None = DEFAULT_MAX_MINUTES,
    images: str = "png",
    logs: str | os.PathLike[str] | None = None,
    log: Log | None = None,
) -> list[RunResult]:
    """Execute every notebook of ``notebook_dir`` (name order, ``interactive=False``) into ``out_dir``, each in
    a worker process; report progress through ``log``; return one :class:`RunResult` per notebook. ``logs``:
    folder for the workers' logs (default: a temporary one, removed)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if images not in IMAGE_CHOICES:
        raise ValueError(f"images must be one of {IMAGE_CHOICES}, got {images!r}")
    _check_timeout(timeout)
    if max_minutes is not None:
        check_number("max_minutes", max_minutes, low=0, low_open=True)
    source = Path(notebook_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"notebook_dir: no directory {source} (run from the repository root?)")
    notebooks = _select(sorted(p for p in source.glob("*.ipynb") if not p.name.startswith(".")), only)
    log = log or _log_stderr
    deadline = time.time() + 60 * max_minutes if max_minutes else None
    work_dir = Path.cwd().resolve()
    with tempfile.TemporaryDirectory(prefix="wttm-logs-") as scratch:
        log_dir = Path(logs) if logs is not None else Path(scratch)
        results = []
        for index, path in enumerate(notebooks, start=1):
            output = Path(out_dir) / path.name
            if deadline is not None and time.time() > deadline:
                results.append(RunResult(path.name, 0.0, "skipped", output, "the whole-run limit was reached"))
            else:
                parameters: dict[str, Any] = {"interactive": False}
                if "profile" in declared_parameters(path):
                    parameters["profile"] = profile
                log(f"[{index}/{len(notebooks)}] {path.name} ...")
                results.append(
                    _run_one(path, output, parameters, timeout=timeout, deadline=deadline, work_dir=work_dir,
                             images=images, log_file=log_dir / f"{path.stem}.log", log=log)
                )  # fmt: skip
            log(_status_line(index, len(notebooks), results[-1]))
    return results


def format_table(results: Sequence[RunResult]) -> str:
    """A plain-text table: notebook, seconds, status, peak memory (MB), saved size (MB), and why a run failed."""
    width = max([len("notebook"), *(len(r.name) for r in results)])
    lines = [
        f"{'notebook':<{width}}  {'seconds':>8}  {'status':<7}  {'peak MB':>7}  {'size MB':>7}  cause",
        f"{'-' * width}  {'-' * 8}  {'-' * 7}  {'-' * 7}  {'-' * 7}  -----",
    ]
    for r in results:
        peak = f"{r.peak_mb:7.0f}" if r.peak_mb else f"{'-':>7}"
        size = f"{r.size_mb:7.2f}" if r.size_mb is not None else f"{'-':>7}"
        lines.append(f"{r.name:<{width}}  {r.seconds:>8.1f}  {r.status:<7}  {peak}  {size}  {r.error}".rstrip())
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<{width}}  {total:>8.1f}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wttm notebooks", description="Execute the notebooks with papermill.")
    parser.add_argument("--notebooks", help="directory of notebooks (default: ./notebooks, else the shipped ones)")
    parser.add_argument("--out", default="build/notebooks", help="output directory (default: build/notebooks)")
    parser.add_argument("--profile", default="default", choices=PROFILES, help="passed where a notebook declares it")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (name or stem)")
    parser.add_argument(
        "--max-minutes", type=float, default=DEFAULT_MAX_MINUTES,
        help=f"guard on the whole run: interrupt what runs after this many minutes (default {DEFAULT_MAX_MINUTES:g})",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=None, help="per-cell limit in seconds (default: none)")
    parser.add_argument("--images", default="png", choices=IMAGE_CHOICES, help="static image of every figure")
    parser.add_argument("--index", action=argparse.BooleanOptionalAction, default=False,
                        help="also write <out>/index.html, <out>/html/ and <out>/logs/")  # fmt: skip
    return parser


def _default_notebooks() -> Path:
    """``./notebooks`` when the current folder has one (a checkout), else the notebooks shipped with the package."""
    local = Path("notebooks")
    if local.is_dir():
        return local
    from wttm_core.resources import shipped

    try:
        return shipped("notebooks")
    except FileNotFoundError:
        return local


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    notebooks = Path(args.notebooks) if args.notebooks else _default_notebooks()
    out = Path(args.out)
    try:
        results = run_all(
            notebooks, out, profile=args.profile, only=args.only, timeout=args.timeout, max_minutes=args.max_minutes,
            images=args.images, logs=out / "logs" if args.index else None,
        )  # fmt: skip
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the notebook that was running is saved up to its last finished cell", file=sys.stderr)
        return 130
    if not results:
        print(f"error: no notebooks in {notebooks}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.index:
        from wttm_core.lab.index import write_index

        print(f"index: {write_index(out, [asdict(r) for r in results], profile=args.profile)}")
    return 1 if any(r.status != "ok" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
