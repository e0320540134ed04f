"""The paper's facts, as data, in one module: the recipe, Tables 8-9, the training profiles, reported accuracies.

Zheng & Yang (ICLR 2024):

* the CIFAR-100 recipe (the CRD recipe that the paper and its baselines use) is the frozen dataclass
  :data:`RECIPE`;
* the per-pair ``gamma`` (= 1/T, Eqs. 8-9) and ``beta`` of TTM (Eq. 2) and WTTM (Eq. 23) are the rows of
  Tables 8 (same architecture) and 9 (different architecture) in :data:`PAIR_PRESETS`. Table 8's row assignment
  was rebuilt from a damaged copy of the paper: those rows carry ``reconstructed=True`` and their ``source`` says
  "Table 8 (reconstructed)" wherever presets are shown (``wttm presets``) or recorded (``config.json``'s
  ``preset_source``);
* the training profiles (``smoke``, ``cpu-quick``, ``gpu-paper``) are named size/speed budgets;
* the reported top-1 accuracies of Tables 1, 3 and 6 are read from ``data/paper_results.csv``: one row per
  (table, pair, method) with the accuracy in percent, its standard deviation where published and the number of
  runs averaged. ``method`` is ``teacher`` / ``student`` (the vanilla models), ``kd``, ``dkd``, ``ttm``, ``wttm``
  or ``wttm-noce``.

Facts that are *not* published are marked as such instead of invented: the beta of "WTTM without CE"
(Table 6) is unknown; :func:`method_hyperparameters` falls back to the pair's WTTM beta and says so.
The engine, the command line and the notebooks read all of this from here (:mod:`wttm_core.presets` is an alias).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from wttm_core._checks import check_int
from wttm_core.loss_terms import (
    BASE_METHODS,
    KD_CE_WEIGHT,
    KD_TEMPERATURE,
    KD_WEIGHT,
    PRESET_METHODS,
    TERMS,
    TTM_CE_WEIGHT,
)
from wttm_core.resources import shipped

__all__ = [
    "Recipe",
    "RECIPE",
    "PairPreset",
    "PAIR_PRESETS",
    "Profile",
    "PROFILES",
    "pair_preset",
    "learning_rate",
    "scaled_milestones",
    "method_hyperparameters",
    "get_profile",
    "PaperResult",
    "PAPER_RESULTS_PATH",
    "load_paper_results",
    "paper_results_for",
]


@dataclass(frozen=True)
class Recipe:
    """The CIFAR-100 training recipe (facts sheet, "CIFAR-100 recipe"; KD as in Eq. 1)."""

    epochs: int = 240
    batch_size: int = 64
    test_batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr: float = 0.05
    small_lr: float = 0.01
    small_lr_students: tuple[str, ...] = ("MobileNetV2", "ShuffleV1", "ShuffleV2")
    milestones: tuple[int, ...] = (150, 180, 210)
    lr_decay: float = 0.1
    kd_temperature: float = KD_TEMPERATURE  # the KD baseline's values live with the loss terms
    kd_ce_weight: float = KD_CE_WEIGHT
    kd_weight: float = KD_WEIGHT
    ttm_ce_weight: float = TTM_CE_WEIGHT


RECIPE = Recipe()


def learning_rate(student: str, recipe: Recipe = RECIPE) -> float:
    """The recipe's initial learning rate for a student architecture (0.01 for the light-weight students)."""
    return recipe.small_lr if student in recipe.small_lr_students else recipe.lr


def scaled_milestones(epochs: int, recipe: Recipe = RECIPE) -> tuple[int, ...]:
    """The lr-decay epochs (150/180/210 of 240) scaled proportionally to ``epochs``, rounded half up.

    ``scaled_milestones(240) == (150, 180, 210)``; ``scaled_milestones(24) == (15, 18, 21)``. A milestone ``m``
    means "multiply the lr by ``lr_decay`` from epoch index ``m`` on" (``torch.optim.lr_scheduler.MultiStepLR``).
    Repeated values are kept: two decays at the same epoch multiply.
    """
    check_int("epochs", epochs, low=1)
    return tuple(int(math.floor(m * epochs / recipe.epochs + 0.5)) for m in recipe.milestones)


@dataclass(frozen=True)
class PairPreset:
    """One row of Table 8 or 9: gamma (= 1/T) and beta of TTM and WTTM for a teacher -> student pair."""

    teacher: str
    student: str
    table: int
    ttm_gamma: float
    ttm_beta: float
    wttm_gamma: float
    wttm_beta: float
    wttm_noce_gamma: float | None = None  # Table 8 only; its beta is not published
    reconstructed: bool = False  # Table 8's row assignment was rebuilt from a damaged copy of the paper

    @property
    def pair(self) -> str:
        return f"{self.teacher} -> {self.student}"

    @property
    def source(self) -> str:
        """``"Table 9"``, or ``"Table 8 (reconstructed)"``: how presets are labelled wherever shown or recorded."""
        return f"Table {self.table}" + (" (reconstructed)" if self.reconstructed else "")


def _row(
    table: int,
    teacher: str,
    student: str,
    ttm: tuple[float, float],
    wttm: tuple[float, float],
    noce: float | None = None,
) -> PairPreset:
    return PairPreset(teacher, student, table, ttm[0], ttm[1], wttm[0], wttm[1], noce, reconstructed=table == 8)


# Table 8 (same architecture; the row assignment was rebuilt from a damaged copy - best available) and Table 9.
PAIR_PRESETS: tuple[PairPreset, ...] = (
    _row(8, "wrn_40_2", "wrn_16_2", (0.1, 101), (0.1, 4), 0.2),
    _row(8, "wrn_40_2", "wrn_40_1", (0.1, 76), (0.1, 3), 0.5),
    _row(8, "resnet56", "resnet20", (0.3, 7), (0.3, 1.5), 0.6),
    _row(8, "resnet110", "resnet20", (0.2, 8), (0.2, 2), 0.4),
    _row(8, "resnet110", "resnet32", (0.1, 33), (0.1, 1.5), 0.4),
    _row(8, "resnet32x4", "resnet8x4", (0.1, 100), (0.1, 3), 0.5),
    _row(8, "vgg13", "vgg8", (0.1, 45), (0.1, 2.25), 0.2),
    _row(9, "vgg13", "MobileNetV2", (0.2, 16), (0.2, 3)),
    _row(9, "ResNet50", "MobileNetV2", (0.2, 20), (0.2, 5)),
    _row(9, "ResNet50", "vgg8", (0.1, 70), (0.1, 2)),
    _row(9, "resnet32x4", "ShuffleV1", (0.2, 12), (0.2, 1.4)),
    _row(9, "resnet32x4", "ShuffleV2", (0.4, 40), (0.4, 16)),
    _row(9, "wrn_40_2", "ShuffleV1", (0.3, 8), (0.3, 3)),
)

_BY_PAIR = {(p.teacher, p.student): p for p in PAIR_PRESETS}


def pair_preset(teacher: str, student: str) -> PairPreset | None:
    """The Table 8/9 row for ``teacher -> student`` (architecture names as in the model zoo), or ``None``."""
    return _BY_PAIR.get((teacher, student))


def method_hyperparameters(method: str, teacher: str | None, student: str) -> dict[str, object]:
    """Preset ``gamma``/``beta`` for one base method and pair, with where each value came from.

    Returns ``{"gamma": float | None, "beta": float | None, "source": str}``. ``kd`` and ``ce`` need no preset
    (KD uses the recipe's T = 4, Eq. 1). For ``ttm``/``wttm``/``wttm-noce`` without a Table 8/9 row both values
    are ``None`` and the caller must supply them. "WTTM without CE" (Table 6) has a published gamma only; its
    beta falls back to the pair's WTTM beta (``source`` says so).
    """
    if method not in TERMS or not TERMS[method].base:
        raise ValueError(f"method must be one of {', '.join(BASE_METHODS)}, got {method!r}")
    if method not in PRESET_METHODS:
        return {"gamma": None, "beta": None, "source": "recipe"}
    row = pair_preset(teacher, student) if teacher is not None else None
    if row is None:
        return {"gamma": None, "beta": None, "source": "none (no Table 8/9 row for this pair)"}
    if method == "ttm":
        return {"gamma": row.ttm_gamma, "beta": row.ttm_beta, "source": row.source}
    if method == "wttm":
        return {"gamma": row.wttm_gamma, "beta": row.wttm_beta, "source": row.source}
    if row.wttm_noce_gamma is None:
        return {"gamma": None, "beta": None, "source": "none (WTTM without CE is only in Table 8)"}
    return {
        "gamma": row.wttm_noce_gamma,
        "beta": row.wttm_beta,
        "source": f"{row.source} gamma; beta not published (the pair's WTTM beta is used)",
    }


@dataclass(frozen=True)
class Profile:
    """A named size/speed budget for the notebooks and quick runs (the recipe itself stays fixed)."""

    name: str
    dataset: str
    train_size: int | None
    test_size: int | None
    epochs: int
    teacher_epochs: int
    seeds: tuple[int, ...] = field(default=(0,))
    device: str = "auto"
    description: str = ""


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", "synthetic", 512, 256, 1, 1, (0,), "auto", "a few seconds: checks that everything runs (CI)"),
        Profile(
            "cpu-quick",
            "synthetic",
            5000,
            1000,
            5,
            6,
            (0, 1, 2),
            "auto",
            "a few minutes on a 2-core CPU; method differences on the synthetic set",
        ),
        Profile(
            "gpu-paper",
            "cifar100",
            None,
            None,
            RECIPE.epochs,
            RECIPE.epochs,
            (0, 1, 2),
            "cuda",
            "the full recipe: 240 epochs on all 50,000 images",
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (``smoke``, ``cpu-quick`` or ``gpu-paper``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}") from None


# ------------------------------------------------------------------------------------------------ reported accuracies
# the checkout's data/ or the copy an installed wheel carries (wttm_core.resources)
PAPER_RESULTS_PATH = shipped("data/paper_results.csv")


@dataclass(frozen=True)
class PaperResult:
    """One reported number: top-1 accuracy (%) of ``method`` on ``teacher -> student`` in ``table``."""

    dataset: str
    table: int
    pair: str
    teacher: str
    student: str
    method: str
    accuracy: float
    std: float | None
    runs: int | None


def _optional(text: str, kind: type) -> float | int | None:
    return kind(text) if text.strip() else None


_COLUMNS = tuple(f.name for f in fields(PaperResult))  # the CSV's header: the record's fields, in order
# how a cell's text becomes its field (the other columns are text as they stand; an empty std / runs is None)
_PARSE: dict[str, Callable[[str], object]] = {
    "table": int,
    "accuracy": float,
    "std": lambda text: _optional(text, float),
    "runs": lambda text: _optional(text, int),
}


def load_paper_results(path: str | Path | None = None) -> list[PaperResult]:
    """All rows of the paper-results CSV (default: the repository's ``data/paper_results.csv``)."""
    path = Path(path) if path is not None else PAPER_RESULTS_PATH
    if not path.is_file():
        raise FileNotFoundError(f"paper results file not found: {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise ValueError(f"{path}: expected columns {_COLUMNS}, got {reader.fieldnames}")
        parsed = [{column: _PARSE.get(column, str)(row[column]) for column in _COLUMNS} for row in reader]
    return [PaperResult(**values) for values in parsed]  # type: ignore[arg-type]


def paper_results_for(
    teacher: str, student: str, *, table: int | None = None, path: str | Path | None = None
) -> dict[str, PaperResult]:
    """The reported numbers for one pair as ``{method: PaperResult}`` (Tables 1/3 before Table 6).

    ``table`` restricts to one table; otherwise a method reported in two tables (KD in Table 1 and Table 6 has
    the same value) keeps the first occurrence. Returns ``{}`` for a pair the paper does not report.
    """
    found: dict[str, PaperResult] = {}
    for row in load_paper_results(path):
        if row.teacher == teacher and row.student == student and (table is None or row.table == table):
            found.setdefault(row.method, row)
    return found
