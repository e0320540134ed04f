"""A fair step size for every method: learning rates chosen on a validation split, from one grid for all.

Why: the methods' losses differ in scale, and on a short run a larger gradient is a larger step. By Eq. 19,
TTM with ``beta = lambda T / (1 - lambda)`` (36 at T = 4, lambda = 0.9) *is* KD plus ``lambda T (T - 1)``
times a Renyi term, multiplied by ``1 / (1 - lambda) = 10``: at one shared learning rate TTM takes ten times
KD's step. Comparing methods at one learning rate therefore mixes "which loss" with "how big a step", and on a
short budget the step size can dominate. The fair protocol, used by notebooks 05-07:

1. carve a class-balanced validation set out of the *training* set (:func:`wttm_core.data.validation_split`;
   the test set is never used to choose anything);
2. a **pilot**: every method, one seed, fewer epochs, trained on the rest of the training set at every
   learning rate of the *same* grid (an equal tuning budget for every method), scored on the validation set by
   its **validation loss** - the cross-entropy of the student's logits against the labels of the validation
   images, what the engine records as ``test_loss`` when it evaluates on that split - with the validation
   accuracy as the tie-break (both are reported);
3. each method's best rate is **cached** next to the pilot runs (``pilot.json``, keyed by everything that
   decides the choice, the scoring rule included), reported, and reused by all the seeds that follow, which
   train on the whole training set and are scored on the test set.

Why the loss and not the accuracy: a pilot is short and small, and at the CPU profiles' size a student's
validation accuracy after it is a few per cent on 100 classes - a handful of correct images, so the best
accuracy is mostly the luckiest rate. The cross-entropy uses every image's probability of its label and moves
smoothly with the step size, so it ranks the rates on far more information.

A run whose loss becomes non-finite at a large rate counts as diverged (score ``None``) and is never chosen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wttm_core._checks import check_int
from wttm_core.atomic import atomic_write
from wttm_core.engine import TrainConfig
from wttm_core.lab.experiments.orchestrate import resolve_path, run_variants
from wttm_core.lab.experiments.variants import Variant
from wttm_core.runs import Run

__all__ = ["LR_GRID", "Pilot", "tune_learning_rates", "with_learning_rates"]

LR_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)  # steps of about x2.5 around the recipe's 0.05
CRITERION = "validation loss"  # the scoring rule; part of a cached pilot's key
LOSS_TIE = 1e-4  # validation losses closer than this are a tie, broken by the validation accuracy


@dataclass
class Pilot:
    """The outcome of a learning-rate pilot, per method and rate: ``losses`` (validation cross-entropy, the
    score) and ``scores`` (validation accuracy in %, the tie-break), ``None`` for a diverged run; and each
    method's chosen rate."""

    grid: list[float]
    scores: dict[str, dict[float, float | None]]
    chosen: dict[str, float]
    epochs: int
    train_images: int
    validation_images: int
    seed: int
    reused: bool = False
    losses: dict[str, dict[float, float | None]] = field(default_factory=dict)
    criterion: str = CRITERION

    def rows(self) -> list[dict[str, Any]]:
        """One row per method: at every rate its validation loss and, in brackets, accuracy (``"diverged"``),
        and the chosen rate."""
        rows = []
        for label, by_lr in self.scores.items():
            row: dict[str, Any] = {"label": label, "chosen lr": self.chosen[label]}
            for lr in self.grid:
                score, loss = by_lr.get(lr), self.losses.get(label, {}).get(lr)
                row[f"lr {lr:g}"] = "diverged" if score is None or loss is None else f"{loss:.3f} ({score:.1f} %)"
            rows.append(row)
        return rows

    def describe(self) -> str:
        """A sentence saying how the rates were chosen (shown before the numbers)."""
        return (
            f"Learning rates chosen per method from the same grid {self.grid} by the lowest validation loss (the "
            f"student's cross-entropy on the validation images; validation accuracy breaks ties) after "
            f"{self.epochs} epoch(s) of one seed ({self.seed}), trained on {self.train_images} training images and "
            f"scored on {self.validation_images} validation images carved from the training set (never the test "
            f"set){'; reused from an earlier pilot' if self.reused else ''}. Each entry: validation loss "
            "(validation accuracy)."
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
            "criterion": CRITERION,
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
    the first and scores on the second (its "test" metrics are validation metrics). The choice minimises the
    last-epoch validation loss (``test_loss``: the student's cross-entropy); losses within :data:`LOSS_TIE` go
    to the higher validation accuracy, then to the smaller rate. The trials (every variant at every rate) share
    the seed, the data and the teacher, so they train as one cohort: the teacher runs once per batch for all of
    them, and a trial that diverges stops alone (score ``None``). The result is cached in ``<root>/pilot.json``
    and reused while the variants, grid, base configuration, data sizes and scoring rule are unchanged (the
    pilot's runs themselves are cached by :func:`~wttm_core.lab.experiments.orchestrate.run_variants`).
    """
    grid = sorted({float(lr) for lr in grid})
    if not grid or any(not lr > 0 for lr in grid):
        raise ValueError(f"grid must hold positive learning rates, got {grid}")
    check_int("epochs", epochs, low=1)
    root = resolve_path(root)
    sizes = (len(data[0]), len(data[1]))
    key = _key(variants, dataclasses.replace(base, epochs=epochs, seed=seed), grid, sizes)
    cached = _read_pilot(root / "pilot.json", key)
    if cached is not None:
        log(f"learning-rate pilot: reusing {root / 'pilot.json'}")
        return cached
    pilot_base = dataclasses.replace(base, epochs=epochs, milestones=None, extra={**base.extra, "split": "validation"})
    pairs = list(itertools.product(variants, grid))
    trials = [
        dataclasses.replace(variant, label=f"{variant.label} @ lr {lr:g}", options={**variant.options, "lr": lr})
        for variant, lr in pairs
    ]
    # every trial shares the seed, the data and the teacher: one cohort, one teacher pass per batch for all
    runs = run_variants(trials, [seed], base=pilot_base, root=root, data=data, diagnostics=False, log=log)
    scores: dict[str, dict[float, float | None]] = {variant.label: {} for variant in variants}
    losses: dict[str, dict[float, float | None]] = {variant.label: {} for variant in variants}
    for (variant, lr), trial, run in zip(pairs, trials, runs, strict=True):
        score = _score(run, trial.label, log)
        scores[variant.label][lr], losses[variant.label][lr] = score if score else (None, None)
    chosen = {label: _best(scores[label], losses[label]) for label in scores}
    pilot = Pilot(grid, scores, chosen, epochs, sizes[0], sizes[1], seed, losses=losses)
    _write_pilot(root / "pilot.json", key, pilot)
    return pilot


def _score(run: Run, label: str, log: Callable[[str], None]) -> tuple[float, float] | None:
    """One pilot run's (validation accuracy, validation loss) at its last epoch; ``None`` when it diverged (the
    engine stopped it, with the reason in its summary, or its validation loss is not finite)."""
    reason = (run.summary or {}).get("diverged")
    if reason is not None or not run.metrics:
        log(f"    {label}: diverged ({reason or 'no epoch finished'})")
        return None
    accuracy, loss = run.last("test_acc"), run.last("test_loss")
    if not math.isfinite(loss):
        log(f"    {label}: diverged (validation loss {loss})")
        return None
    return accuracy, loss


def _best(accuracies: Mapping[float, float | None], losses: Mapping[float, float | None] | None = None) -> float:
    """The chosen rate: the lowest validation loss, losses within :data:`LOSS_TIE` broken by the higher accuracy,
    then by the smaller rate (without ``losses``: the highest accuracy, then the smaller rate); diverged rates
    (``None``) are never chosen."""
    ranked = []
    for lr, accuracy in accuracies.items():
        loss = 0.0 if losses is None else losses.get(lr)
        if accuracy is not None and loss is not None:
            ranked.append((round(loss / LOSS_TIE), -accuracy, lr))
    if not ranked:
        raise ValueError(f"every learning rate of the grid diverged ({sorted(accuracies)}): try smaller rates")
    return min(ranked)[2]


def _write_pilot(path: Path, key: str, pilot: Pilot) -> None:
    payload = dataclasses.asdict(pilot) | {"key": key}
    for name in ("scores", "losses"):
        payload[name] = {label: {repr(lr): s for lr, s in by.items()} for label, by in getattr(pilot, name).items()}
    payload.pop("reused")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(payload, indent=2) + "\n")


def _read_pilot(path: Path, key: str) -> Pilot | None:
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if payload.get("key") != key or payload.get("criterion") != CRITERION:
        return None
    scores, losses = (
        {label: {float(lr): s for lr, s in by.items()} for label, by in payload[name].items()}
        for name in ("scores", "losses")
    )
    fields = {k: payload[k] for k in ("grid", "chosen", "epochs", "train_images", "validation_images", "seed")}
    return Pilot(scores=scores, losses=losses, reused=True, **fields)
