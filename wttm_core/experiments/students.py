"""Kept for old imports and ``python -m wttm_core.experiments.students``: the one home is
:mod:`wttm_core.lab.experiments.students`."""

from wttm_core.lab.experiments.students import *  # noqa: F403
from wttm_core.lab.experiments.students import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
