"""Geometry and curves for the figures: the 3-class simplex, Renyi curves (Eq. 4), point-wise maps (Fig. 4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from wttm_core._checks import check_int
from wttm_core.functional import renyi_entropy
from wttm_core.theory._common import _f64

__all__ = ["SIMPLEX_VERTICES", "simplex_xy", "renyi_curve", "pointwise_map_properties"]

# Corners of the equilateral triangle used to draw a 3-class distribution: class 0 bottom left, class 1 bottom
# right, class 2 on top. A distribution p maps to the point p @ SIMPLEX_VERTICES (barycentric coordinates).
SIMPLEX_VERTICES = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]], dtype=torch.float64)


def simplex_xy(p: Tensor) -> Tensor:
    """Map 3-class distributions (or zero-sum directions) ``[..., 3]`` to plane coordinates ``[..., 2]``.

    Linear (barycentric): ``p @ SIMPLEX_VERTICES``; one-hot vectors land on the triangle's corners.
    """
    if not isinstance(p, Tensor):
        raise TypeError(f"p must be a torch.Tensor, got {type(p).__name__}")
    if p.dim() == 0 or p.shape[-1] != 3:
        raise ValueError(f"p must have 3 entries in its last dimension, got shape {tuple(p.shape)}")
    return _f64(p) @ SIMPLEX_VERTICES


def renyi_curve(p: Tensor, alphas: Sequence[float] | Tensor) -> Tensor:
    """Renyi entropies ``H_alpha(p)`` (Eq. 4) for each order in ``alphas``, float64.

    ``p`` is one distribution ``[K]`` (result ``[len(alphas)]``) or a batch ``[M, K]`` (result
    ``[M, len(alphas)]``). Non-increasing in ``alpha``: ``log K`` (support size) at 0, Shannon at 1,
    ``-log max p`` as ``alpha -> inf``.
    """
    if not isinstance(p, Tensor) or p.dim() not in (1, 2):
        raise ValueError("p must be a tensor holding one distribution [K] or a batch [M, K]")
    alpha_list = torch.as_tensor(alphas, dtype=torch.float64).flatten().tolist()
    if not alpha_list:
        raise ValueError("alphas must not be empty")
    p64 = _f64(p)
    return torch.stack([renyi_entropy(p64, a) for a in alpha_list], dim=-1)


def pointwise_map_properties(f: Callable[[Tensor], Tensor], points: int = 1001) -> dict[str, bool]:
    """Check what a good smoothing map ``f`` of Eq. 6 needs (Fig. 4) on a grid of ``[0, 1]``.

    Returns ``{"f(0)=0", "f(1)=1", "non-decreasing", "f(p)>p"}`` -> bool; ``f(p) > p`` is tested on the open
    interval. The power map ``p^gamma`` with ``0 < gamma < 1`` satisfies all four.
    """
    points = check_int("points", points, low=3)
    grid = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    values = f(grid)
    if not isinstance(values, Tensor) or values.shape != grid.shape:
        raise ValueError("f must map a 1-D tensor to a tensor of the same shape")
    values = _f64(values)
    return {
        "f(0)=0": bool(abs(float(values[0])) <= 1e-12),
        "f(1)=1": bool(abs(float(values[-1]) - 1.0) <= 1e-12),
        "non-decreasing": bool((values[1:] >= values[:-1] - 1e-12).all()),
        "f(p)>p": bool((values[1:-1] > grid[1:-1]).all()),
    }
