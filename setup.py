"""Build hook: a wheel carries the files the notebooks read (``wttm_core.resources.SHIPPED``) under
``wttm_core/_resources/``, so a non-editable install finds them without the repository. Everything else about the
package is in ``pyproject.toml``."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("data/paper_results.csv", "data/example_runs", "data/teachers", "notebooks")  # = resources.SHIPPED
SKIP = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")


class BuildWithResources(build_py):
    """``build_py`` that also copies the shipped data and notebooks into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "wttm_core" / "_resources"
        for relative in SHIPPED:
            source = ROOT / relative
            if source.is_dir():
                shutil.copytree(source, target / relative, ignore=SKIP, dirs_exist_ok=True)
            elif source.is_file():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / relative)


setup(cmdclass={"build_py": BuildWithResources})
