"""Classroom mode: the interactive notebooks as Voila dashboards (code hidden, sliders live).

A notebook is *interactive* when its papermill ``parameters`` cell assigns ``interactive`` (the switch between
ipywidgets sliders driving plotly ``FigureWidget``s and static figures). :func:`write_presentation` writes a
copy of each interactive notebook with ``interactive = True`` injected after its parameters cell (papermill's
own injection, so a notebook whose committed default is ``False`` still presents live), without outputs, and
showing only the teaching content: cells tagged for instructors, set-up, exercise checkers (a dashboard hides the
code a student would fill in) or worked solutions (:data:`CLASSROOM_HIDDEN`, the tags of ``notebooks/TEACHING.md``)
still run, so every later cell finds the names they define, but show nothing
(their output is captured), and such markdown cells are left out;
:func:`voila_command` is the Voila command line that serves such a folder on 127.0.0.1.

``wttm present`` (``make present``, ``python -m wttm_core.present``) does both and runs Voila until Ctrl-C.
Safety, because a dashboard starts kernels that train for minutes:

- the server requires a random token, printed in the URLs it lists;
- it answers only requests whose ``Host`` header is ``localhost``, a loopback address or a name passed with
  ``--allow-host`` (a web page elsewhere cannot reach it by DNS rebinding; :mod:`wttm_core.lab.voila_guard`);
- viewers never see tracebacks (with server paths);
- the output folder is the command's own: it keeps a manifest (:data:`MANIFEST`) of what it wrote and only
  ever replaces or removes those files, unchanged; it refuses a non-empty folder it does not own, and a file
  of the same name that it did not write. ``--dry-run`` writes and deletes nothing.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wttm_core._checks import check_int
from wttm_core.rundir import write_json, write_text_atomic

PARAMETERS_TAG = "parameters"
INTERACTIVE = "interactive"
#: Cell tags that the classroom dashboards hide: a code cell still runs with its output captured (``%%capture``),
#: a markdown cell is left out. ``parameters`` cells print nothing and stay as they are (papermill reads them).
CLASSROOM_HIDDEN = ("setup", "instructor", "exercise", "solution")
_CAPTURE = "%%capture\n"
#: The manifest of the files ``wttm present`` wrote into its output folder (name -> SHA-256).
MANIFEST = ".wttm-present.json"
_MANIFEST_FORMAT = "wttm-present/1"

__all__ = [
    "declares_interactive",
    "reads_interactive",
    "interactive_notebooks",
    "presentation_notebook",
    "voila_command",
    "write_presentation",
    "plan_presentation",
    "PresentationPlan",
    "MANIFEST",
    "CLASSROOM_HIDDEN",
    "classroom_cell",
    "main",
]


def _read_notebook(path: Path) -> dict[str, Any]:
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"path: {path} is not a readable notebook ({error})") from error
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"path: {path} is not a notebook (no 'cells' list)")
    return notebook


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _code_cells(path: Path) -> list[tuple[bool, ast.Module]]:
    """(is the parameters cell, parsed source) of every code cell; IPython syntax (``%pip``, ``!ls``) is first
    turned into the Python that IPython itself would run."""
    from IPython.core.inputtransformer2 import TransformerManager

    to_python = TransformerManager().transform_cell
    parsed = []
    for cell in _read_notebook(path)["cells"]:
        if cell.get("cell_type") != "code":
            continue
        is_parameters = PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])
        try:
            tree = ast.parse(to_python(_source(cell)))
        except SyntaxError as error:
            raise ValueError(f"path: a code cell of {path} is not valid Python ({error})") from error
        parsed.append((is_parameters, tree))
    return parsed


def reads_interactive(path: str | os.PathLike[str]) -> bool:
    """True when a code cell other than the parameters cell reads the name ``interactive`` (it switches on it)."""
    return any(
        isinstance(node, ast.Name) and node.id == INTERACTIVE and isinstance(node.ctx, ast.Load)
        for is_parameters, tree in _code_cells(Path(path))
        if not is_parameters
        for node in ast.walk(tree)
    )


def declares_interactive(path: str | os.PathLike[str]) -> bool:
    """True when the notebook's parameters cell assigns ``interactive`` (as papermill reads that cell)."""
    from wttm_core.notebook_runner import declared_parameters

    _read_notebook(Path(path))  # a clear ValueError for a file that is not a notebook
    return INTERACTIVE in declared_parameters(path)


def interactive_notebooks(directory: str | os.PathLike[str]) -> list[Path]:
    """The interactive notebooks directly in ``directory``, sorted by name (checkpoint copies excluded)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory: {directory} is not a directory")
    return [path for path in sorted(directory.glob("*.ipynb")) if declares_interactive(path)]


def classroom_cell(cell: Mapping[str, Any], hidden: Collection[str] = CLASSROOM_HIDDEN) -> dict | None:
    """``cell`` as the classroom shows it: None (left out) for a non-code cell tagged with one of ``hidden``; a
    code cell so tagged runs with its output captured (IPython's ``%%capture``); any other cell unchanged.
    Code cells lose their outputs and execution count either way."""
    tags = cell.get("metadata", {}).get("tags", [])
    is_hidden = any(tag in hidden for tag in tags)
    if cell.get("cell_type") != "code":
        return None if is_hidden else dict(cell)
    cell = {**cell, "outputs": [], "execution_count": None}
    source = _source(cell)
    if is_hidden and not source.startswith(_CAPTURE):
        cell["source"] = _CAPTURE + source
    return cell


def presentation_notebook(
    path: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None, *, classroom: bool = True
) -> dict:
    """The notebook at ``path`` for the classroom, with ``parameters`` (default ``interactive=True``) injected.

    Every cell passes through :func:`classroom_cell` (no outputs; instructor, set-up and solution cells show
    nothing); ``classroom=False`` keeps every cell as it is (outputs still dropped), for a copy opened in
    JupyterLab. The injection follows papermill: a cell tagged ``injected-parameters`` (papermill's own
    translation of the values) right after the ``parameters`` cell, replacing an earlier injected cell.
    """
    from papermill.translators import translate_parameters

    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError(f"parameters: expected a mapping, got {type(parameters).__name__}")
    parameters = {INTERACTIVE: True} if parameters is None else dict(parameters)
    notebook = _read_notebook(Path(path))
    cells, injected_after_parameters = [], False
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue  # replaced below, as papermill does
        cell = classroom_cell(cell, CLASSROOM_HIDDEN if classroom else ())
        if cell is None:
            continue
        cells.append(cell)
        if PARAMETERS_TAG in tags:
            source = translate_parameters("python3", "python", parameters, "Parameters")
            injected = {"cell_type": "code", "execution_count": None, "outputs": [], "source": source}
            if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5):
                injected["id"] = "injected-parameters"  # nbformat 4.5 requires cell ids
            cells.append({**injected, "metadata": {"tags": ["injected-parameters"]}})
            injected_after_parameters = True
    if not injected_after_parameters:
        raise ValueError(f"path: {path} has no cell tagged {PARAMETERS_TAG!r} to inject parameters after")
    return {**notebook, "cells": cells}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _read_manifest(destination: Path) -> dict[str, str] | None:
    """The manifest's ``name -> SHA-256`` map, or None when the folder has no (valid) manifest."""
    path = destination / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) and data.get("format") == _MANIFEST_FORMAT else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    # only plain notebook names directly in the folder: a planted "../x" entry must not reach outside it
    return {name: digest for name, digest in files.items() if _plain_notebook_name(name)}


def _plain_notebook_name(name: str) -> bool:
    return name == Path(name).name and name.endswith(".ipynb") and not name.startswith(".") and "\\" not in name


@dataclass(frozen=True)
class PresentationPlan:
    """What :func:`write_presentation` will do: the copies to write (name -> notebook text) and the stale
    copies of an earlier presentation to remove (names), all inside ``destination``."""

    destination: Path
    writes: dict[str, str]
    removals: list[str]


def plan_presentation(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    parameters: Mapping[str, Any] | Callable[[Path], Mapping[str, Any]] | None = None,
    *,
    classroom: bool = True,
) -> PresentationPlan:
    """Decide everything :func:`write_presentation` writes and removes, touching nothing.

    Raises ``ValueError`` (naming the argument) when ``destination`` is ``source``, is not a folder, holds files
    but no manifest of an earlier presentation, or holds a file this command would replace or remove but did
    not write (or that changed since it wrote it).
    """
    source, destination = Path(source), Path(destination)
    notebooks = interactive_notebooks(source)
    if destination.exists() and not destination.is_dir():
        raise ValueError(f"destination: {destination} exists and is not a folder")
    if destination.resolve() == source.resolve():
        raise ValueError("destination: must differ from source (the copies would overwrite the notebooks)")
    manifest = _read_manifest(destination) if destination.is_dir() else {}
    if manifest is None:
        if any(destination.iterdir()):
            raise ValueError(
                f"destination: {destination} is not empty and was not written by wttm present (no {MANIFEST}); "
                "choose an empty or new folder - nothing in it was touched"
            )
        manifest = {}
    writes = {}
    for path in notebooks:
        values = parameters(path) if callable(parameters) else parameters
        writes[path.name] = json.dumps(presentation_notebook(path, values, classroom=classroom), indent=1) + "\n"
    removals = sorted(name for name in manifest if name not in writes and (destination / name).exists())
    for name in [*writes, *removals]:
        target = destination / name
        if target.exists() and (target.is_symlink() or manifest.get(name) != _digest_of(target)):
            raise ValueError(
                f"destination: {target} was not written by wttm present (or changed since); move it away - "
                "nothing was touched"
            )
    return PresentationPlan(destination, writes, removals)


def write_presentation(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    parameters: Mapping[str, Any] | Callable[[Path], Mapping[str, Any]] | None = None,
    *,
    classroom: bool = True,
) -> list[Path]:
    """Write a presentation copy (:func:`presentation_notebook`) of every interactive notebook in ``source``.

    ``parameters`` is one mapping for all notebooks or a function of the notebook's path (e.g. a smaller
    ``profile`` only where a notebook declares one); ``classroom=False`` keeps the instructor, set-up and
    solution cells visible (:func:`presentation_notebook`). Each file is written atomically into ``destination``
    (created if missing) and recorded in its manifest; copies this command wrote earlier for notebooks that
    are no longer interactive are removed, so the dashboard list matches ``source``. Files it did not write
    are never touched (see :func:`plan_presentation` for what is refused). Returns the written paths, sorted.
    """
    plan = plan_presentation(source, destination, parameters, classroom=classroom)
    plan.destination.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(plan.destination) or {}
    written = []
    for name, text in plan.writes.items():
        manifest[name] = _sha256(text)  # recorded before the write: an interrupted write stays ours
        write_json(plan.destination / MANIFEST, {"format": _MANIFEST_FORMAT, "files": manifest})
        write_text_atomic(plan.destination / name, text)
        written.append(plan.destination / name)
    for name in plan.removals:
        (plan.destination / name).unlink(missing_ok=True)
        manifest.pop(name, None)
    write_json(plan.destination / MANIFEST, {"format": _MANIFEST_FORMAT, "files": manifest})
    return sorted(written)


def voila_command(
    directory: str | os.PathLike[str],
    *,
    port: int = 8866,
    token: str | None = None,
    executable: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> list[str]:
    """The Voila command line serving ``directory`` on 127.0.0.1:``port`` (code hidden, no browser opened).

    Voila runs through :mod:`wttm_core.lab.voila_guard` (``executable`` replaces the Python that runs it), which
    answers only requests whose ``Host`` is a loopback address, ``localhost`` or one of ``allowed_hosts``.
    Tracebacks are never shown to viewers. ``token=None`` serves without a token (``wttm present`` always
    passes a random one).
    """
    check_int("port", port, low=1, high=65535)
    if token is not None and (not isinstance(token, str) or not token.isalnum()):
        raise ValueError("token: expected None or a non-empty alphanumeric string")
    hosts = list(allowed_hosts)
    for host in hosts:
        if not isinstance(host, str) or not host or any(c.isspace() or c in "/?#@:" for c in host):
            raise ValueError(f"allow-host: expected a host name, got {host!r}")
    command = [
        executable or sys.executable,
        "-m",
        "wttm_core.lab.voila_guard",
        *(f"--allow-host={host}" for host in hosts),
        str(directory),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={port}",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
    ]
    if token is not None:
        command.append(f"--Voila.token={token}")
    return command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``wttm present`` (also ``python -m wttm_core.present``)."""
    parser.add_argument("--notebooks", default="notebooks", help="folder holding the notebooks (default: notebooks)")
    parser.add_argument("--out", default="build/present", help="folder for the presentation copies (its own)")
    parser.add_argument("--port", type=int, default=8866, help="port on 127.0.0.1 (default: 8866)")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this Host name (besides localhost / loopback addresses); repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be written and the command only")


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise OSError(
                error.errno, f"port {port} on 127.0.0.1 is not free ({error.strerror}); pass --port"
            ) from None


def run(args: argparse.Namespace) -> int:
    """``wttm present``: write the copies into ``--out`` (unless ``--dry-run``), list the dashboards' URLs with
    their token, then run Voila until Ctrl-C. Returns 1 when there is nothing to present."""
    token = secrets.token_hex(16)
    command = voila_command(args.out, port=args.port, token=token, allowed_hosts=args.allow_host)
    command.append("--Voila.port_retries=0")  # the listed URLs name this port: never serve on another
    try:  # every refusal before anything is written
        plan = plan_presentation(args.notebooks, args.out)
    except ValueError as error:  # name the command's arguments
        text = str(error).replace("destination:", "--out:", 1).replace("directory:", "--notebooks:", 1)
        raise ValueError(text) from None
    if not plan.writes:
        print(f"no interactive notebooks in {args.notebooks}", file=sys.stderr)
        return 1
    if args.dry_run:
        for name in plan.writes:
            print(f"would write: {plan.destination / name}")
        for name in plan.removals:
            print(f"would remove (an earlier presentation's copy): {plan.destination / name}")
    else:
        _check_port_free(args.port)
        write_presentation(args.notebooks, args.out)
    for name in plan.writes:
        print(f"dashboard: http://127.0.0.1:{args.port}/voila/render/{name}?token={token}")
    print(" ".join(command), flush=True)
    if args.dry_run:
        return 0
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.present ARGS``: the same as ``wttm present ARGS``; returns the exit code."""
    from wttm_core.cli import run_subcommand

    return run_subcommand("present", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
