"""Small notebooks written by the tests (for the runner and papermill tests)."""

from __future__ import annotations

from pathlib import Path

import nbformat


def write_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    """Write a ``python3`` notebook of code cells ``(source, tags)`` to ``path``; return ``path``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path
