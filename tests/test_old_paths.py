"""Modules that moved keep their old import paths (issue 12: "keep aliases where a name moves")."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MOVED = ["budget", "diagnostics", "orchestrate", "stats", "tables", "tuning", "variants"]
WITH_COMMAND_LINE = ["questions", "examples", "students"]


@pytest.mark.parametrize("name", MOVED)
def test_an_experiments_module_is_the_same_object_under_its_old_name(name: str) -> None:
    old = importlib.import_module(f"wttm_core.experiments.{name}")
    new = importlib.import_module(f"wttm_core.lab.experiments.{name}")
    assert old is new


@pytest.mark.parametrize("name", WITH_COMMAND_LINE)
def test_an_experiments_command_keeps_its_old_names_and_its_old_module_path(name: str) -> None:
    old = importlib.import_module(f"wttm_core.experiments.{name}")
    new = importlib.import_module(f"wttm_core.lab.experiments.{name}")
    assert old.__all__ == new.__all__
    assert all(getattr(old, public) is getattr(new, public) for public in new.__all__)
    assert old.main is new.main
    done = subprocess.run(
        [sys.executable, "-m", f"wttm_core.experiments.{name}", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_the_package_names_are_the_lab_s() -> None:
    import wttm_core.experiments as old
    import wttm_core.lab.experiments as new

    assert old.__all__ == new.__all__
    assert all(getattr(old, public) is getattr(new, public) for public in new.__all__)
