"""Files the project ships next to its code, found the same way in a checkout and in an installed wheel.

The notebooks read a few small files: ``data/paper_results.csv`` (the paper's numbers), ``data/example_runs/``
(notebook 06's runs), ``data/teachers/`` (the small trained synthetic teacher) and the notebooks themselves. In a
checkout (or an editable install) they live at the repository root; a wheel carries copies under
``wttm_core/_resources/`` (``setup.py`` copies them at build time). :func:`shipped` finds either, so nothing
depends on the folder a notebook runs in. Shipped files are read, never written: runs and caches go to the
working folder (:func:`wttm_core.lab.experiments.project_root`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGED_DIR", "SHIPPED", "checkout_root", "shipped"]

PACKAGED_DIR = Path(__file__).resolve().parent / "_resources"
# what a wheel carries (relative to the repository root; setup.py copies exactly these)
SHIPPED = ("data/paper_results.csv", "data/example_runs", "data/teachers", "notebooks")


def checkout_root() -> Path | None:
    """The repository this package was imported from (``None`` for an installed wheel)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def shipped(relative: str | Path) -> Path:
    """The shipped file or folder ``relative`` (e.g. ``"data/paper_results.csv"``): the checkout's copy when
    there is one, else the wheel's. Raises ``FileNotFoundError`` naming both places when neither has it."""
    relative = Path(relative)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"relative must be a path inside the project, got {relative}")
    root = checkout_root()
    places = ([root / relative] if root is not None else []) + [PACKAGED_DIR / relative]
    for place in places:
        if place.exists():
            return place
    raise FileNotFoundError(f"{relative}: not shipped with this installation (looked in {', '.join(map(str, places))})")
