"""Re-execute a notebook over a parameter grid with papermill: ``wttm sweep path.yaml``.

A sweep is the same notebook run once per grid point, never a second training loop (``make sweep SWEEP=...``).
The YAML file says which notebook, which parameters stay fixed and which vary::

    name: example                      # output folder build/sweeps/<name>/ (default: the file's stem)
    notebook: notebooks/05_train_students.ipynb
    parameters: {profile: cpu-quick}   # injected into every point
    grid:                              # Cartesian product of these lists ...
      methods: [[ttm], [wttm]]
      gamma: [0.2, 0.3]
    # points: [{gamma: 0.2}, ...]      # ... or an explicit list of points (with grid: both are combined)
    results_parameter: results_dir     # the notebook writes results.json into this folder (default)
    plot: {x: gamma, y: best_acc_mean, colour: methods}   # the summary plot (optional)
    timeout: 900                       # per-cell timeout, seconds

Layout of ``build/sweeps/<name>/``: ``points/<point>/`` holds ``notebook.ipynb`` (the executed copy),
``results/results.json`` (what the notebook reported), ``point.json`` (its parameters) and ``done.json`` or
``failed.json``; ``summary.csv`` has one row per result record of every finished point (the point's parameters
as columns first), ``summary.html`` the summary plot, ``failures.txt`` the failed points.

Every key of ``grid``, ``points`` and ``parameters`` (and ``results_parameter``) must be a parameter the
notebook declares in its ``parameters`` cell (papermill's inspection): a misspelt key is refused before anything
runs, naming it and the known ones. A point is identified by its parameters, the fixed ``parameters`` and the
SHA-256 of the notebook: a re-run skips points whose ``done.json`` records the same identity and re-runs those
whose fixed parameters or notebook changed, and retries failed ones. The command exits with 1 when any point
failed (and lists them), 2 on a bad sweep file.

Points that share a teacher train as cohorts: for a notebook with a planner in :data:`PLANNERS` (notebook 05),
before the points execute, the sweep asks the notebook's own setup functions which student runs each point to
be run will train (its parameters with the notebook's defaults; a teacher or a learning-rate pilot the setup
needs is trained and cached first, as the notebook would), trains the runs that share a teacher and data as one
cohort (one teacher pass per batch for all; :func:`~wttm_core.lab.experiments.orchestrate.train_variant_runs`)
into the folders where each notebook reads them, and then executes the notebooks, which find their runs
finished and train nothing. Finished runs are reused and interrupted ones resumed (their locks held meanwhile);
a point the planner cannot plan (a bad parameter, a default that is not a literal) runs as before, and so does
every point with ``--no-cohorts``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import importlib
import io
import itertools
import json
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wttm_core._checks import check_int
from wttm_core.rundir import write_json, write_text_atomic

__all__ = [
    "RESULTS_FILE",
    "SweepSpec",
    "PointOutcome",
    "SweepReport",
    "load_sweep",
    "parse_sweep",
    "expand_points",
    "point_id",
    "point_identity",
    "notebook_parameters",
    "write_results",
    "read_results",
    "run_sweep",
    "collect_rows",
    "PLANNERS",
    "notebook_defaults",
    "train_points_together",
    "main",
]

RESULTS_FILE = "results.json"
#: Notebooks whose student runs a sweep can plan ahead ("module:function", called as ``f(parameters, log=...)``
#: and returning the :class:`~wttm_core.lab.experiments.orchestrate.VariantRuns` the notebook will train).
PLANNERS: dict[str, str] = {"05_train_students.ipynb": "wttm_core.lab.experiments.students:sweep_runs"}
_SPEC_KEYS = frozenset({"name", "notebook", "parameters", "grid", "points", "results_parameter", "plot", "timeout"})
Executor = Callable[..., Any]


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file (see the module docstring for the keys)."""

    name: str
    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    results_parameter: str = "results_dir"
    plot: dict[str, str] = field(default_factory=dict)
    timeout: int = 900


def _check_mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} must be a mapping with string keys, got {type(value).__name__}")
    return dict(value)


def parse_sweep(data: Any, *, default_name: str = "sweep", base_dir: str | Path = ".") -> SweepSpec:
    """Validate a sweep description (the YAML's content) and return a :class:`SweepSpec`.

    Relative notebook paths are taken relative to ``base_dir`` when the file exists there, else to the current
    directory. Raises ``ValueError`` naming the offending key.
    """
    if not isinstance(data, dict):
        raise ValueError(f"sweep file must hold a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ValueError(f"sweep file: unknown key(s) {unknown} (known: {sorted(_SPEC_KEYS)})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"name must be a folder name (letters, digits, . _ -), got {name!r}")
    notebook = data.get("notebook")
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
        raise ValueError(f"notebook must be the path of an .ipynb file, got {notebook!r}")
    path = Path(notebook)
    if not path.is_absolute() and (Path(base_dir) / path).is_file():
        path = Path(base_dir) / path
    if not path.is_file():
        raise ValueError(f"notebook: no such file {notebook}")
    parameters = _check_mapping("parameters", data.get("parameters"))
    grid = _check_mapping("grid", data.get("grid"))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{key} must be a non-empty list of values, got {values!r}")
    points = data.get("points") or []
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise ValueError("points must be a list of mappings (one per point)")
    if not grid and not points:
        raise ValueError("sweep file needs grid or points (the parameters that vary)")
    results_parameter = data.get("results_parameter", "results_dir")
    if not isinstance(results_parameter, str) or not results_parameter.isidentifier():
        raise ValueError(f"results_parameter must be a parameter name, got {results_parameter!r}")
    plot = _check_mapping("plot", data.get("plot"))
    if plot and not {"x", "y"} <= set(plot):
        raise ValueError(f"plot needs at least x and y, got {sorted(plot)}")
    timeout = data.get("timeout", 900)
    check_int("timeout", timeout, low=1)  # seconds per cell
    _check_declared(path, parameters, grid, points, results_parameter)
    return SweepSpec(
        name,
        path,
        parameters,
        grid,
        [dict(p) for p in points],
        results_parameter,
        {k: str(v) for k, v in plot.items()},
        timeout,
    )


def notebook_parameters(notebook: str | Path) -> set[str]:
    """The names the notebook's ``parameters`` cell assigns (papermill's inspection); ValueError when the
    notebook cannot be read or has no such cell."""
    from wttm_core.notebook_runner import declared_parameters

    try:
        declared = declared_parameters(notebook)
    except Exception as error:  # papermill raises its own and nbformat's errors for an unreadable notebook
        raise ValueError(f"notebook: {notebook} cannot be inspected ({type(error).__name__}: {error})") from None
    if not declared:
        raise ValueError(f"notebook: {notebook} has no cell tagged 'parameters' (nothing a sweep could vary)")
    return declared


def _check_declared(
    notebook: Path,
    parameters: dict[str, Any],
    grid: dict[str, list[Any]],
    points: list[dict[str, Any]],
    results_parameter: str,
) -> None:
    """Every key a sweep sets must be a parameter the notebook declares (checked before anything runs)."""
    declared = notebook_parameters(notebook)
    where = [("parameters", key) for key in parameters] + [("grid", key) for key in grid]
    where += [(f"points[{i}]", key) for i, point in enumerate(points) for key in point]
    where.append(("results_parameter", results_parameter))
    for section, key in where:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"{section}: {key!r} is not a parameter name (a Python identifier)")
        if key == results_parameter and section != "results_parameter":
            raise ValueError(f"{section}: {key!r} is set by the sweep itself (results_parameter); leave it out")
        if key not in declared:
            raise ValueError(
                f"{section}: {key!r} is not a parameter of {notebook.name} (known: {', '.join(sorted(declared))})"
            )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sweep file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"sweep file {path}: invalid YAML ({error})") from None
    repo_root = Path(__file__).resolve().parent.parent
    base = repo_root if (repo_root / "notebooks").is_dir() else path.parent
    return parse_sweep(data, default_name=path.stem, base_dir=base)


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The varying parameters of every point: the grid's Cartesian product (in file order), then ``points``."""
    points: list[dict[str, Any]] = []
    if spec.grid:
        keys = list(spec.grid)
        points += [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]
    points += [dict(p) for p in spec.points]
    return points


def _short(value: Any) -> str:
    """A readable folder-name fragment of a value; a leading minus sign is kept (``gamma=-1``)."""
    if isinstance(value, list | tuple):
        return "+".join(_short(v) for v in value)
    text = str(value)
    sign = "-" if text.startswith("-") else ""
    return sign + re.sub(r"[^A-Za-z0-9.+-]+", "-", text[len(sign) :]).strip("-")


def point_id(point: dict[str, Any]) -> str:
    """A stable folder name for a point: readable ``key=value`` pairs plus a hash of the exact parameters."""
    canonical = json.dumps(point, sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    readable = "_".join(f"{k}={_short(v)}" for k, v in sorted(point.items()))[:80]
    return f"{readable}-{digest}" if readable else digest


def point_identity(spec: SweepSpec, point: dict[str, Any]) -> dict[str, Any]:
    """What decides a point's result: its parameters, the sweep's fixed parameters and the notebook's SHA-256
    (recorded in ``done.json``; a point whose identity changed is run again)."""
    return json.loads(
        json.dumps(
            {
                "parameters": point,
                "fixed": spec.parameters,
                "notebook_sha256": hashlib.sha256(spec.notebook.read_bytes()).hexdigest(),
            },
            default=str,
        )
    )


def write_results(results_dir: str | Path, records: Sequence[dict[str, Any]] | dict[str, Any]) -> Path:
    """Write a notebook's results for a sweep: ``<results_dir>/results.json`` (a list of flat records).

    Notebooks call this when their ``results_dir`` parameter is set; values should be numbers or strings.
    """
    rows = [records] if isinstance(records, dict) else list(records)
    if not all(isinstance(r, dict) for r in rows):
        raise TypeError("records must be a dict or a sequence of dicts")
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESULTS_FILE
    write_json(path, rows)
    return path


def read_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """The records a notebook wrote with :func:`write_results` (``[]`` when it wrote none)."""
    path = Path(results_dir) / RESULTS_FILE
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else [data]


@dataclass(frozen=True)
class PointOutcome:
    """What happened to one point: ``status`` is ``"done"``, ``"skipped"`` (done before) or ``"failed"``."""

    point: dict[str, Any]
    directory: Path
    status: str
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class SweepReport:
    """The outcome of :func:`run_sweep`: every point, the summary CSV and plot paths."""

    root: Path
    outcomes: list[PointOutcome]
    csv_path: Path
    plot_path: Path | None

    @property
    def failed(self) -> list[PointOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def _done_identity(directory: Path) -> dict[str, Any] | None:
    marker = directory / "done.json"
    if not marker.is_file():
        return None
    try:
        done = json.loads(marker.read_text())
        return {key: done.get(key) for key in ("parameters", "fixed", "notebook_sha256")}
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None


def _default_executor() -> Executor:
    from wttm_core.notebook_runner import execute_notebook

    return execute_notebook


def _error_text(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    head = f"{type(error).__name__}: " + (lines[-1] if lines else "")
    return head[:500]


def run_sweep(
    spec: SweepSpec,
    *,
    out: str | Path = "build/sweeps",
    execute: Executor | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    cohorts: bool = True,
) -> SweepReport:
    """Execute every point of ``spec`` (skipping those done before unless ``force``), then collect and plot.

    With ``cohorts`` the student runs of the points to execute are first trained together where they share a
    teacher (:func:`train_points_together`), so that the notebooks find them finished.

    ``execute(src, dst, parameters=..., timeout=...)`` runs one notebook (default:
    :func:`wttm_core.notebook_runner.execute_notebook`, papermill with kernel ``python3``). A point whose
    execution raises is recorded as failed (``failed.json`` with the error) and the sweep goes on.
    """
    execute = execute or _default_executor()
    root = Path(out) / spec.name
    (root / "points").mkdir(parents=True, exist_ok=True)
    points = expand_points(spec)
    directories = [root / "points" / point_id(point) for point in points]
    pairs = list(zip(points, directories, strict=True))
    done = [not force and _done_identity(d) == point_identity(spec, p) for p, d in pairs]
    if cohorts:
        todo = [pair for pair, skip in zip(pairs, done, strict=True) if not skip]
        train_points_together(spec, todo, log=log)
    outcomes: list[PointOutcome] = []
    for index, (point, directory) in enumerate(pairs, start=1):
        if done[index - 1]:
            log(f"[{index}/{len(points)}] skip (done before): {directory.name}")
            outcomes.append(PointOutcome(point, directory, "skipped", 0.0))
            continue
        log(f"[{index}/{len(points)}] run: {directory.name}")
        outcomes.append(_run_point(spec, point, directory, point_identity(spec, point), execute, log))

    rows = collect_rows(outcomes)
    csv_path = root / "summary.csv"
    _write_csv(csv_path, rows)
    failures = [o for o in outcomes if o.status == "failed"]
    failure_text = "".join(f"{o.directory.name}\t{o.error}\n" for o in failures)
    write_text_atomic(root / "failures.txt", failure_text)
    plot_path = _write_plot(root, rows, spec.plot) if spec.plot and rows else None
    return SweepReport(root, outcomes, csv_path, plot_path)


def _run_point(
    spec: SweepSpec,
    point: dict[str, Any],
    directory: Path,
    identity: dict[str, Any],
    execute: Executor,
    log: Callable[[str], None],
) -> PointOutcome:
    """Execute one point into ``directory``; a failure is recorded in ``failed.json`` and returned, not raised."""
    parameters = _injected(spec, point, directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("done.json", "failed.json"):
        (directory / stale).unlink(missing_ok=True)
    write_json(directory / "point.json", {"parameters": point, "injected": parameters})
    start = time.perf_counter()
    try:
        execute(spec.notebook, directory / "notebook.ipynb", parameters=parameters, timeout=spec.timeout)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a failed point is recorded and reported, the sweep goes on
        seconds = time.perf_counter() - start
        message = _error_text(error)
        record = {"parameters": point, "seconds": seconds, "error": message}
        write_json(directory / "failed.json", {**record, "traceback": traceback.format_exc()[-4000:]})
        log(f"    FAILED after {seconds:.1f} s: {message}")
        return PointOutcome(point, directory, "failed", seconds, message)
    seconds = time.perf_counter() - start
    write_json(directory / "done.json", {**identity, "seconds": seconds})
    log(f"    done in {seconds:.1f} s")
    return PointOutcome(point, directory, "done", seconds)


def _injected(spec: SweepSpec, point: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The parameters papermill injects into the point's notebook: the fixed ones, the point's, the results
    folder."""
    return {**spec.parameters, **point, spec.results_parameter: str((directory / "results").resolve())}


def notebook_defaults(notebook: str | Path) -> dict[str, Any]:
    """The notebook's literal parameter defaults: :func:`wttm_core.lab.runner.parameter_defaults`."""
    from wttm_core.lab.runner import parameter_defaults

    return parameter_defaults(notebook)


def _planner(notebook: Path) -> Callable[..., list[Any]] | None:
    """The planning function of ``notebook`` in :data:`PLANNERS` (``None``: its points are not planned)."""
    target = PLANNERS.get(notebook.name)
    if target is None:
        return None
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def train_points_together(
    spec: SweepSpec, points: Sequence[tuple[dict[str, Any], Path]], *, log: Callable[[str], None] = print
) -> int:
    """Train the student runs that the ``(point, directory)`` pairs' notebooks will train, the runs that share a
    teacher and data as one cohort, where each notebook will read them; return how many runs were trained.

    Runs with the notebook's working folder (the kernel's: the notebook's own folder), so that relative paths
    and caches resolve as in the notebook. A point that cannot be planned, or a cohort that fails, is logged
    and left to its notebook (which trains what is missing, or fails with the error in ``failed.json``).
    """
    from wttm_core.lab.experiments.orchestrate import train_variant_runs, with_shared_data

    planner = _planner(spec.notebook)
    if planner is None or not points:
        return 0
    notebook = spec.notebook.resolve()
    defaults = notebook_defaults(notebook)
    batches: list[Any] = []
    datasets: list[Any] = []  # one copy of each distinct data set, however many points load it
    with contextlib.chdir(notebook.parent):
        for point, directory in points:
            try:
                planned = planner({**defaults, **_injected(spec, point, directory.resolve())}, log=log)
                batches += [with_shared_data(batch, datasets) for batch in planned]
            except Exception as error:  # the notebook reports it (or trains its runs itself)
                log(f"    {directory.name}: not planned ahead ({_error_text(error)}); its notebook trains its runs")
        if not batches:
            return 0
        log(f"cohorts: training the student runs of {len(points)} point(s) together where they share a teacher")
        start = time.perf_counter()
        try:
            trained = train_variant_runs(batches, log=log)
        except Exception as error:  # each notebook then trains (or reports) what is missing
            log(f"cohorts: stopped ({_error_text(error)}); each notebook trains what is missing")
            return 0
    log(f"cohorts: {trained} run(s) trained in {time.perf_counter() - start:.1f} s")
    return trained


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "+".join(str(_cell(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def collect_rows(outcomes: Sequence[PointOutcome]) -> list[dict[str, Any]]:
    """One row per result record of every finished point: the point's parameters, ``point``, then the record."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.status == "failed":
            continue
        base = {key: _cell(value) for key, value in outcome.point.items()}
        base["point"] = outcome.directory.name
        records = read_results(outcome.directory / "results") or [{}]
        for record in records:
            rows.append({**base, **{key: _cell(value) for key, value in record.items()}})
    return rows


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def _write_plot(root: Path, rows: Sequence[dict[str, Any]], plot: dict[str, str]) -> Path | None:
    from wttm_core.viz.dynamics import sweep_summary_figure

    try:
        figure = sweep_summary_figure(
            rows, x=plot["x"], y=plot["y"], colour=plot.get("colour"), error=plot.get("error"), title=plot.get("title")
        )
    except ValueError as error:  # the CSV is still written: a plot that cannot be drawn is reported, not fatal
        columns = sorted({k for r in rows for k in r})
        print(f"summary plot skipped: {error} (result columns: {columns})")
        return None
    path = root / "summary.html"
    # plotly.js sits next to the page once per sweep, so the plot opens offline
    script = root / "plotly.min.js"
    if not script.is_file():
        from plotly.offline import get_plotlyjs

        write_text_atomic(script, get_plotlyjs())
    write_text_atomic(path, figure.to_html(include_plotlyjs="directory", full_html=True))
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``wttm sweep`` (also ``python -m wttm_core.sweep``)."""
    parser.add_argument("sweep", help="the sweep YAML file")
    parser.add_argument("--out", default="build/sweeps", help="parent folder of the output (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="re-run points that are already done")
    parser.add_argument("--list", action="store_true", help="print the points and exit")
    parser.add_argument(
        "--no-cohorts",
        dest="cohorts",
        action="store_false",
        help="let each point's notebook train its own runs (by default the points' runs that share a teacher "
        "are trained together first, one teacher pass per batch for all)",
    )


def run(args: argparse.Namespace) -> int:
    """``wttm sweep``: validate the sweep file (exit 2 naming the key), run the points, report; 1 if any failed."""
    spec = load_sweep(args.sweep)  # ValueError -> one line, exit 2 (before anything runs)
    if args.list:
        for point in expand_points(spec):
            print(point_id(point), json.dumps(point))
        return 0
    report = run_sweep(spec, out=args.out, force=args.force, cohorts=args.cohorts)
    counts = {status: sum(o.status == status for o in report.outcomes) for status in ("done", "skipped", "failed")}
    print(f"sweep {spec.name}: {counts['done']} run, {counts['skipped']} skipped, {counts['failed']} failed")
    print(f"summary: {report.csv_path}" + (f", plot: {report.plot_path}" if report.plot_path else ""))
    if report.failed:
        print("FAILED points (details in each point's failed.json):", file=sys.stderr)
        for outcome in report.failed:
            print(f"  {outcome.directory}: {outcome.error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.sweep ARGS``: the same as ``wttm sweep ARGS``; returns the exit code."""
    from wttm_core.cli import run_subcommand

    return run_subcommand("sweep", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
