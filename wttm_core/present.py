"""Classroom mode, kept importable here: the one home is :mod:`wttm_core.lab.present` (``wttm present``)."""

from wttm_core.lab.present import *  # noqa: F403
from wttm_core.lab.present import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
