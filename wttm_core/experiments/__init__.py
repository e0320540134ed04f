"""The experiments moved into the lab: their one home is :mod:`wttm_core.lab.experiments`.

This package keeps the old import paths working: ``import wttm_core.experiments.stats`` gives the same module
object as ``wttm_core.lab.experiments.stats``. The three modules with a command line (``questions``, ``examples``,
``students``) are small files here instead, so that ``python -m wttm_core.experiments.questions`` still runs.
"""

import importlib
import sys

from wttm_core.lab.experiments import *  # noqa: F403
from wttm_core.lab.experiments import __all__  # noqa: F401

_SUBMODULES = ("budget", "diagnostics", "orchestrate", "stats", "tables", "tuning", "variants")

for _name in _SUBMODULES:
    _module = importlib.import_module(f"wttm_core.lab.experiments.{_name}")
    sys.modules[f"{__name__}.{_name}"] = _module
    globals()[_name] = _module
