"""The packaging files agree with each other: environment.yml and pyproject.toml name the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI
CONDA_TO_PYPI = {"pytorch": "torch", "python-kaleido": "kaleido"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_environment_yml_is_conda_forge_python_311_with_the_project():
    env = _environment()
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert any(line.replace(" ", "").startswith("-e.[notebooks") for line in pip_section)


def test_environment_and_pyproject_name_the_same_dependencies():
    project = _pyproject()["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["notebooks"]}
    conda = {
        CONDA_TO_PYPI.get(_name(d), _name(d))
        for d in _environment()["dependencies"]
        if isinstance(d, str) and _name(d) not in {"python", "pip"}
    }
    assert conda == wanted, f"only in environment.yml: {conda - wanted}; only in pyproject: {wanted - conda}"


def test_console_script_points_at_the_cli():
    assert _pyproject()["project"]["scripts"]["wttm"] == "wttm_core.cli:main"
