"""Notebook sweeps, kept importable here: the one home is :mod:`wttm_core.lab.sweep` (``wttm sweep``)."""

from wttm_core.lab.sweep import *  # noqa: F403
from wttm_core.lab.sweep import __all__, _write_plot, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
