"""Kept for old imports and ``python -m wttm_core.experiments.examples``: the one home is
:mod:`wttm_core.lab.experiments.examples`."""

from wttm_core.lab.experiments.examples import *  # noqa: F403
from wttm_core.lab.experiments.examples import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
