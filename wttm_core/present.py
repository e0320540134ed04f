"""Classroom mode: the interactive notebooks as Voila dashboards (code hidden, sliders live).

A notebook is *interactive* when its papermill ``parameters`` cell assigns ``interactive`` (the switch between
ipywidgets sliders driving plotly ``FigureWidget``s and static figures). :func:`write_presentation` writes a
copy of each interactive notebook with ``interactive = True`` injected after its parameters cell (papermill's
own injection, so a notebook whose committed default is ``False`` still presents live) and without outputs;
:func:`voila_command` is the Voila command line that serves such a folder on 127.0.0.1.

``python -m wttm_core.present`` (that is ``make present``) does both and runs Voila until Ctrl-C.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wttm_core.atomic import write_text_atomic

PARAMETERS_TAG = "parameters"
INTERACTIVE = "interactive"

__all__ = [
    "declares_interactive",
    "reads_interactive",
    "interactive_notebooks",
    "presentation_notebook",
    "voila_command",
    "write_presentation",
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


def presentation_notebook(path: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None) -> dict:
    """The notebook at ``path`` without outputs, with ``parameters`` (default ``interactive=True``) injected.

    The injection follows papermill: a cell tagged ``injected-parameters`` (papermill's own translation of the
    values) right after the ``parameters`` cell, replacing an earlier injected cell.
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
        if cell.get("cell_type") == "code":
            cell = {**cell, "outputs": [], "execution_count": None}
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


def write_presentation(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    parameters: Mapping[str, Any] | Callable[[Path], Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write a presentation copy (:func:`presentation_notebook`) of every interactive notebook in ``source``.

    ``parameters`` is one mapping for all notebooks or a function of the notebook's path (e.g. a smaller
    ``profile`` only where a notebook declares one). Each file is written atomically into ``destination``
    (created if missing); stale ``.ipynb`` files there are removed so the dashboard list matches ``source``.
    Returns the written paths, sorted.
    """
    source, destination = Path(source), Path(destination)
    notebooks = interactive_notebooks(source)
    if source.resolve() == destination.resolve():
        raise ValueError("destination: must differ from source (the copies would overwrite the notebooks)")
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        target = destination / path.name
        values = parameters(path) if callable(parameters) else parameters
        write_text_atomic(target, json.dumps(presentation_notebook(path, values), indent=1) + "\n")
        written.append(target)
    for stale in set(destination.glob("*.ipynb")) - set(written):
        stale.unlink()
    return written


def voila_command(
    directory: str | os.PathLike[str],
    *,
    port: int = 8866,
    token: str | None = None,
    executable: str | None = None,
) -> list[str]:
    """The Voila command line serving ``directory`` on 127.0.0.1:``port`` (code hidden, no browser opened).

    ``token=None`` serves without a token (a local classroom screen); tests pass one.
    """
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"port: expected an integer in 1..65535, got {port!r}")
    if token is not None and (not isinstance(token, str) or not token.isalnum()):
        raise ValueError("token: expected None or a non-empty alphanumeric string")
    voila = executable or shutil.which("voila", path=str(Path(sys.executable).parent)) or "voila"
    command = [
        voila,
        str(directory),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={port}",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=True",
    ]
    if token is not None:
        command.append(f"--Voila.token={token}")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.present``: build the presentation copies, then run Voila on them until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m wttm_core.present", description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", default="notebooks", help="folder holding the notebooks (default: notebooks)")
    parser.add_argument("--out", default="build/present", help="folder for the presentation copies")
    parser.add_argument("--port", type=int, default=8866, help="port on 127.0.0.1 (default: 8866)")
    parser.add_argument("--dry-run", action="store_true", help="write the copies and print the command only")
    args = parser.parse_args(argv)
    written = write_presentation(args.notebooks, args.out)
    if not written:
        print(f"no interactive notebooks in {args.notebooks}", file=sys.stderr)
        return 1
    command = voila_command(args.out, port=args.port)
    for path in written:
        print(f"dashboard: http://127.0.0.1:{args.port}/voila/render/{path.name}")
    print(" ".join(command), flush=True)
    if args.dry_run:
        return 0
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
