"""Kept for ``python -m wttm_core.notebook_runner`` and old imports: the runner lives in :mod:`wttm_core.lab.runner`."""

from wttm_core.lab.runner import (  # noqa: F401
    KERNEL_NAME,
    PROFILES,
    RunResult,
    declared_parameters,
    execute_notebook,
    format_table,
    main,
    run_all,
)

__all__ = ["KERNEL_NAME", "PROFILES", "RunResult", "declared_parameters", "execute_notebook", "run_all", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
