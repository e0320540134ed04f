"""Small helpers shared by the theory modules (private): the float64 view, and the ``lam in (0, 1]`` check built on
:mod:`wttm_core._checks` (the home of every other argument check)."""

from __future__ import annotations

import torch
from torch import Tensor

from wttm_core._checks import check_scalar


def _f64(x: Tensor) -> Tensor:
    return x.detach().to(torch.float64)


def _check_lambda(lam: object) -> float:
    lam = check_scalar("lam", lam)
    if lam > 1.0:
        raise ValueError(f"lam must lie in (0, 1], got {lam}")
    return lam
