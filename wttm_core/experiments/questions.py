"""Kept for old imports and ``python -m wttm_core.experiments.questions``: the one home is
:mod:`wttm_core.lab.experiments.questions`."""

from wttm_core.lab.experiments.questions import *  # noqa: F403
from wttm_core.lab.experiments.questions import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
