"""A fair step size for every method: learning rates chosen on a validation split, from one grid for all.

Why: the methods' losses differ in scale, and on a short run a larger gradient is a larger step. By Eq. 19,
TTM with ``beta = lambda T / (1 - lambda)`` (36 at T = 4, lambda = 0.9) *is* KD plus ``lambda T (T - 1)``
times a Renyi term, multiplied by ``1 / (1 - lambda) = 10``: at one shared learning rate TTM takes ten times
KD's step. Comparing methods at one learning rate therefore mixes "which loss" with "how big a step", and on a
short budget the step size can dominate. The fair protocol, used by notebooks 05-07:

1. carve a class-balanced validation set out of the *training* set (:func:`wttm_core.data.validation_split`;
   the test set is never used to choose anything);
2. a **pilot**: every method, one seed, fewer epochs, trained on the rest of the training set at every
   learning rate of the *same* grid (an equal tuning budget for every method), scored on the validation set;
3. each method's best rate is **cached** next to the pilot runs (``pilot.json``), reported, and reused by all
   the seeds that follow, which train on the whole training set and are scored on the test set.

A run whose loss becomes non-finite at a large rate counts as diverged (score ``None``) and is never chosen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wttm_core.atomic import atomic_write
from wttm_core.engine import TrainConfig, TrainingDiverged
from wttm_core.lab.experiments.orchestrate import resolve_path, run_variants
from wttm_core.lab.experiments.variants import Variant

__all__ = ["LR_GRID", "Pilot", "tune_learning_rates", "with_learning_rates"]

LR_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)  # steps of about x2.5 around the recipe's 0.05


@dataclass
class Pilot:
    """The outcome of a learning-rate pilot: validation accuracy (%) per method and rate, and each choice."""

    grid: list[float]
    scores: dict[str, dict[float, float | None]]
    chosen: dict[str, float]
    epochs: int
    train_images: int
    validation_images: int
    seed: int
    reused: bool = False

    def rows(self) -> list[dict[str, Any]]:
        """One row per method: its validation accuracy at every rate (``"diverged"``) and the chosen rate."""
        rows = []
        for label, by_lr in self.scores.items():
            row: dict[str, Any] = {"label": label, "chosen lr": self.chosen[label]}
            for lr in self.grid:
                score = by_lr.get(lr)
                row[f"lr {lr:g}"] = "diverged" if score is None else f"{score:.1f}"
            rows.append(row)
        return rows

    def describe(self) -> str:
        """A sentence saying how the rates were chosen (shown before the numbers)."""
        return (
            f"Learning rates chosen per method from the same grid {self.grid} by validation accuracy after "
            f"{self.epochs} epoch(s) of one seed ({self.seed}), trained on {self.train_images} training images and "
            f"scored on {self.validation_images} validation images carved from the training set (never the test "
            f"set){'; reused from an earlier pilot' if self.reused else ''}."
        )


def with_learning_rates(variants: Sequence[Variant], chosen: dict[str, float]) -> list[Variant]:
    """``variants`` with each one's chosen learning rate (``chosen`` maps labels to rates)."""
    missing = [v.label for v in variants if v.label not in chosen]
    if missing:
        raise ValueError(f"chosen: no learning rate for {missing}")
    return [dataclasses.replace(v, options={**v.options, "lr": float(chosen[v.label])}) for v in variants]


def _key(variants: Sequence[Variant], base: TrainConfig, grid: Sequence[float], sizes: tuple[int, int]) -> str:
    """A fingerprint of everything that decides the pilot's outcome (to recognise a cached pilot)."""
    text = json.dumps(
        {
            "variants": [[v.label, v.method, v.options] for v in variants],
            "grid": list(grid),
            "sizes": sizes,
            "base": {k: v for k, v in dataclasses.asdict(base).items() if k not in ("out", "quiet", "extra")},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tune_learning_rates(
    variants: Sequence[Variant],
    *,
    base: TrainConfig,
    data: tuple[Any, Any],
    root: str | Path,
    grid: Sequence[float] = LR_GRID,
    epochs: int = 2,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Pilot:
    """Train every variant at every rate of ``grid`` (one seed, ``epochs``) and pick each one's best rate.

    ``data`` is ``(train_part, validation)`` from :func:`wttm_core.data.validation_split`: the pilot trains on
    the first and scores on the second (its "test" accuracy is the validation accuracy). The choice maximises
    the last-epoch validation accuracy; ties go to the smaller rate. The result is cached in
    ``<root>/pilot.json`` and reused while the variants, grid, base configuration and data sizes are unchanged.
    """
    grid = sorted({float(lr) for lr in grid})
    if not grid or any(not lr > 0 for lr in grid):
        raise ValueError(f"grid must hold positive learning rates, got {grid}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    root = resolve_path(root)
    sizes = (len(data[0]), len(data[1]))
    key = _key(variants, dataclasses.replace(base, epochs=epochs, seed=seed), grid, sizes)
    cached = _read_pilot(root / "pilot.json", key)
    if cached is not None:
        log(f"learning-rate pilot: reusing {root / 'pilot.json'}")
        return cached
    pilot_base = dataclasses.replace(base, epochs=epochs, milestones=None, extra={**base.extra, "split": "validation"})
    scores: dict[str, dict[float, float | None]] = {}
    for variant in variants:
        scores[variant.label] = {}
        for lr in grid:
            trial = dataclasses.replace(
                variant, label=f"{variant.label} @ lr {lr:g}", options={**variant.options, "lr": lr}
            )
            try:
                run = run_variants([trial], [seed], base=pilot_base, root=root, data=data, diagnostics=False, log=log)[
                    0
                ]
                scores[variant.label][lr] = run.last("test_acc")
            except TrainingDiverged as error:
                log(f"    {trial.label}: diverged ({error})")
                scores[variant.label][lr] = None
    chosen = {label: _best(by_lr) for label, by_lr in scores.items()}
    pilot = Pilot(grid, scores, chosen, epochs, sizes[0], sizes[1], seed)
    _write_pilot(root / "pilot.json", key, pilot)
    return pilot


def _best(by_lr: dict[float, float | None]) -> float:
    finite = [(score, -lr) for lr, score in by_lr.items() if score is not None]
    if not finite:
        raise ValueError(f"every learning rate of the grid diverged ({sorted(by_lr)}): try smaller rates")
    return -max(finite)[1]


def _write_pilot(path: Path, key: str, pilot: Pilot) -> None:
    payload = dataclasses.asdict(pilot) | {"key": key}
    payload["scores"] = {label: {repr(lr): s for lr, s in by.items()} for label, by in pilot.scores.items()}
    payload.pop("reused")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(payload, indent=2) + "\n")


def _read_pilot(path: Path, key: str) -> Pilot | None:
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if payload.get("key") != key:
        return None
    scores = {label: {float(lr): s for lr, s in by.items()} for label, by in payload["scores"].items()}
    fields = {k: payload[k] for k in ("grid", "chosen", "epochs", "train_images", "validation_images", "seed")}
    return Pilot(scores=scores, reused=True, **fields)
