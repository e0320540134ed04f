"""Notebook 05's workflow: train KD / TTM / WTTM students over seeds and compare them honestly.

:func:`setup_students` turns the notebook's parameters (profile, data set, teacher, student, methods, epochs,
per-method gamma/beta, seeds) into a fully resolved :class:`StudentSetup`; :func:`run_students` trains the
teacher when asked (cached), every method for every seed through the engine, and returns the runs with a table
of best and last accuracy (mean +- std) next to the paper's numbers and Welch-test verdicts.

Profiles (sizes from :data:`wttm_core.presets.PROFILES`; the pair is this notebook's choice):

* ``smoke`` - 256 / 128 synthetic images, 1 epoch, a resnet8 teacher trained for 1 epoch, 2 seeds (CI);
* ``cpu-quick`` - a resnet20 teacher trained on 5,000 synthetic images for 6 epochs (the one shipped in
  ``data/teachers/``) -> resnet8 students on the first 1,500 of them, 3 epochs, 3 seeds, 1,000 test images, each
  method's learning rate chosen first by a short pilot (one seed, 1 epoch, the same 3 rates for every method,
  1,000 training images, scored on 300 validation images carved from the students' training set;
  :mod:`~wttm_core.lab.experiments.tuning`) - sized so that the whole notebook takes about 2 minutes on a quiet
  2-core CPU;
  resnet20 -> resnet8 has no Table 8 row, so gamma/beta are those of resnet56 -> resnet20 (same thin-ResNet
  family) and the paper's numbers shown are that pair's;
* ``gpu-paper`` - the recipe: CIFAR-100, the standard resnet56 teacher -> resnet20, 240 epochs, 3 seeds.

``python -m wttm_core.lab.experiments.students`` runs the same workflow without Jupyter (machines without
papermill, e.g. a bare GPU box) and prints the accuracy table and the time per epoch of every method.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wttm_core._checks import check_int, check_number
from wttm_core.engine import TrainConfig
from wttm_core.engine.methods import parse_method
from wttm_core.lab.experiments.budget import Plan, check_budget, pilot_seconds_per_image, plan_epochs
from wttm_core.lab.experiments.orchestrate import (
    EpochHook,
    TeacherSource,
    VariantRuns,
    ensure_teacher,
    load_data,
    parse_teacher,
    resolve_path,
)
from wttm_core.lab.experiments.stats import Comparison
from wttm_core.lab.experiments.tables import accuracy_rows, comparisons, markdown_table
from wttm_core.lab.experiments.tuning import LR_GRID, Pilot, tune_learning_rates, with_learning_rates
from wttm_core.lab.experiments.variants import Variant
from wttm_core.loss_terms import PRESET_METHODS
from wttm_core.presets import Profile, get_profile, method_hyperparameters
from wttm_core.runs import Run, group_runs, read_run

__all__ = [
    "PROFILE_PAIRS",
    "REFERENCE_PAIR",
    "StudentSetup",
    "StudentContext",
    "StudentResults",
    "setup_students",
    "prepare_students",
    "run_students",
    "StudentPlan",
    "plan_students",
    "notebook_setup",
    "sweep_runs",
    "epoch_timing",
    "results_records",
    "timing_rows",
    "main",
]

# teacher, student and teacher epochs per profile (sizes, epochs and seeds come from presets.PROFILES)
PROFILE_PAIRS: dict[str, dict[str, Any]] = {
    "smoke": {
        "teacher": "train:resnet8",
        "student": "resnet8",
        "teacher_epochs": 1,
        "seeds": (0, 1),
        "train_size": 256,
        "test_size": 128,
        "tune_lr": False,
    },
    "cpu-quick": {
        "teacher": "train:resnet20",  # trained on the profile's 5,000 images: the shipped teacher fits
        "student": "resnet8",
        "student_train_size": 1500,  # the students train on the first 1,500 of the teacher's images
        "epochs": 3,
        "tune_lr": True,
        "lr_grid": (0.05, 0.2, 0.5),  # the recipe's rate, and x4, x10 (TTM's step by Eq. 19)
        "pilot": {"validation_size": 300, "train_size": 1000, "epochs": 2},  # 1 epoch: every method got 0.05
        "time_budget_s": 300,  # the students' epochs are cut (the same for all) if the plan would take longer
    },
    "gpu-paper": {
        "teacher": "resnet56",
        "student": "resnet20",
        "tune_lr": True,
        "pilot": {"validation_size": 5000, "train_size": 45000, "epochs": 30},
    },
}
# the learning-rate pilot: validation images carved from the training set, training images, epochs
PILOT = {"validation_size": 500, "train_size": 1500, "epochs": 2}
DEFAULT_METHODS = ("ce", "kd", "ttm", "wttm")
# gamma/beta (and the paper's numbers) for a pair without a Table 8/9 row come from this Table 8 pair
REFERENCE_PAIR = ("resnet56", "resnet20")
_TUNED = PRESET_METHODS  # the methods whose gamma / beta come from Tables 8-9


@dataclass
class StudentSetup:
    """The resolved parameters of a students experiment (what notebook 05 will run)."""

    profile: str
    dataset: str
    data_dir: str
    device: str
    teacher: TeacherSource
    teacher_arch: str
    teacher_epochs: int
    student: str
    methods: list[str]
    epochs: int
    train_size: int | None
    test_size: int | None
    seeds: list[int]
    student_train_size: int | None = None  # None: the students train on all train_size images, as the teacher
    hyper: dict[str, dict[str, float]] = field(default_factory=dict)
    hyper_source: dict[str, str] = field(default_factory=dict)
    paper_pair: tuple[str, str] = REFERENCE_PAIR
    out_dir: str = "build/runs/05_train_students"
    metric_temperature: float = 4.0
    quiet: bool = False
    tune_lr: bool = False
    lr_grid: list[float] = field(default_factory=lambda: list(LR_GRID))
    pilot: dict[str, int] = field(default_factory=lambda: dict(PILOT))
    time_budget_s: float | None = None  # seconds for the students after the pilot (None: unlimited)

    def describe(self) -> str:
        """A markdown summary of the setup (shown by the notebook before training)."""
        lines = [
            f"- profile **{self.profile}**: {self.dataset} data ({self.train_size or 'all'} train / "
            f"{self.test_size or 'all'} test images), {self.epochs} epoch(s), seeds {self.seeds}, device {self.device}"
            + (
                f"; the students train on the first {self.student_train_size} training images"
                if self.student_train_size is not None
                else ""
            ),
            f"- teacher: {self.teacher.describe()} ({self.teacher_arch})"
            + (f", {self.teacher_epochs} epoch(s)" if self.teacher.kind == "train" else ""),
            f"- student: {self.student}; methods: {', '.join(self.methods)}",
        ]
        for method, values in self.hyper.items():
            lines.append(
                f"- {method}: gamma {values['gamma']:g}, beta {values['beta']:g} ({self.hyper_source[method]})"
            )
        if self.tune_lr:
            lines.append(
                f"- learning rate: chosen per method from {self.lr_grid} on {self.pilot['validation_size']} "
                f"validation images carved from the training set (pilot: one seed, {self.pilot['epochs']} epoch(s), "
                f"{self.pilot['train_size']} training images)"
            )
        else:
            lines.append("- learning rate: the recipe's, the same for every method (no pilot)")
        lines.append(
            f"- paper numbers shown for: {self.paper_pair[0]} -> {self.paper_pair[1]} (only next to runs at the "
            "paper's loss settings)"
        )
        return "\n".join(lines)


def _teacher_arch(source: TeacherSource) -> str:
    if source.kind == "train":
        return source.value
    if source.kind == "standard":
        from wttm_core.teachers import STANDARD_TEACHERS

        return STANDARD_TEACHERS[source.value].arch
    from wttm_core.teachers import resolve_teacher  # the one answer to "which architecture" (issue 12)

    return resolve_teacher(None, resolve_path(source.value)).arch


def _per_method(name: str, value: float | Mapping[str, float] | None, method: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        found = value.get(method)
        return None if found is None else float(found)
    return check_number(name, value, low=0, low_open=True)  # or a dict method -> number


def _hyperparameters(method: str, teacher: str, student: str) -> tuple[dict[str, float | None], str]:
    preset = method_hyperparameters(method, teacher, student)
    if preset["gamma"] is not None:
        return {"gamma": preset["gamma"], "beta": preset["beta"]}, str(preset["source"])  # type: ignore[dict-item]
    borrowed = method_hyperparameters(method, *REFERENCE_PAIR)
    return (
        {"gamma": borrowed["gamma"], "beta": borrowed["beta"]},  # type: ignore[dict-item]
        f"{borrowed['source']} preset of {REFERENCE_PAIR[0]} -> {REFERENCE_PAIR[1]} (no row for this pair)",
    )


def setup_students(
    profile: str = "cpu-quick",
    *,
    dataset: str | None = None,
    data_dir: str = "data",
    device: str | None = None,
    teacher: str | None = None,
    teacher_epochs: int | None = None,
    student: str | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    epochs: int | None = None,
    seeds: Sequence[int] | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    student_train_size: int | None = None,
    gamma: float | Mapping[str, float] | None = None,
    beta: float | Mapping[str, float] | None = None,
    out_dir: str | None = None,
    quiet: bool = False,
    tune_lr: bool | None = None,
    lr_grid: Sequence[float] | None = None,
    time_budget_s: float | str | None = "profile",
) -> StudentSetup:
    """Resolve notebook 05's parameters; ``None`` means "the profile's value" (gamma/beta: the presets).

    ``gamma``/``beta``: one number for every TTM-like method or ``{method: value}``. ``tune_lr`` chooses each
    method's lr from ``lr_grid`` (:data:`~wttm_core.lab.experiments.tuning.LR_GRID`) on a validation split first.
    The students train on the first ``student_train_size`` of the teacher's ``train_size`` images (``None``: the
    profile's choice, else all). ``time_budget_s`` bounds their training (:mod:`~wttm_core.lab.experiments.budget`):
    ``"profile"`` (300 s for ``cpu-quick``, none otherwise), ``None`` (unlimited) or seconds.
    """
    profile = "cpu-quick" if profile == "default" else profile  # `make notebooks` passes "default"
    prof, pair = get_profile(profile), PROFILE_PAIRS[profile]
    _check_methods(methods)
    source = parse_teacher(teacher or pair["teacher"])
    teacher_arch = _teacher_arch(source)
    student = _check_student(student or pair["student"])
    data = _data_fields(prof, pair, dataset or prof.dataset, train_size, test_size, student_train_size)
    setup = StudentSetup(
        profile=profile,
        **data,
        data_dir=str(resolve_path(data_dir)),
        device=device or prof.device,
        teacher=source,
        teacher_arch=teacher_arch,
        teacher_epochs=int(teacher_epochs or pair.get("teacher_epochs", prof.teacher_epochs)),
        student=student,
        methods=list(methods),
        epochs=int(epochs or pair.get("epochs", prof.epochs)),
        seeds=list(seeds if seeds is not None else pair.get("seeds", prof.seeds)),
        paper_pair=_paper_pair(teacher_arch, student),
        out_dir=out_dir or f"build/runs/05_train_students/{profile}",  # profiles never overwrite each other
        quiet=quiet,
        **_tuning_fields(
            pair, tune_lr, lr_grid, time_budget_s, _smaller(data["student_train_size"], data["train_size"])
        ),
    )
    _resolve_hyperparameters(setup, gamma, beta)
    return setup


def _data_fields(
    prof: Profile, pair: Mapping[str, Any], dataset: str, train: int | None, test: int | None, student: int | None
) -> dict[str, Any]:
    """The data set and its sizes: the teacher's train / test images and the students' share of the former."""
    return {
        "dataset": dataset,
        "train_size": _profile_size(train, "train_size", pair, prof, dataset),
        "test_size": _profile_size(test, "test_size", pair, prof, dataset),
        "student_train_size": _student_train_size(student, pair, dataset == prof.dataset),
    }


def _tuning_fields(
    pair: Mapping[str, Any], tune_lr: bool | None, lr_grid: Sequence[float] | None, budget: Any, pilot_size: int | None
) -> dict[str, Any]:
    """The learning-rate pilot's settings and the students' time budget (``tuning`` / ``budget`` modules)."""
    return {
        "tune_lr": bool(pair["tune_lr"] if tune_lr is None else tune_lr),
        "lr_grid": _check_lr_grid(pair.get("lr_grid", LR_GRID) if lr_grid is None else lr_grid),
        "time_budget_s": check_budget(pair.get("time_budget_s") if budget == "profile" else budget),
        "pilot": _fit_pilot(dict(pair.get("pilot", PILOT)), pilot_size),
    }


def _student_train_size(given: int | None, pair: Mapping[str, Any], own_dataset: bool) -> int | None:
    """The students' share of the teacher's images: ``given``, else the profile pair's (on its own data set only)."""
    if given is None and own_dataset:
        given = pair.get("student_train_size")
    return None if given is None else check_int("student_train_size", given, low=1)


def _profile_size(given: int | None, key: str, pair: Mapping[str, Any], prof: Profile, dataset: str) -> int | None:
    """``given``, else the pair's or the profile's ``key`` - which apply to the profile's own data set only."""
    if given is not None or dataset != prof.dataset:
        return given
    return pair.get(key, getattr(prof, key))


def _smaller(a: int | None, b: int | None) -> int | None:
    """The smaller of two sizes, ``None`` meaning "all"."""
    return b if a is None else a if b is None else min(a, b)


def _fit_pilot(pilot: dict[str, int], train_size: int | None) -> dict[str, int]:
    """The pilot's split, shrunk to fit inside a training set of ``train_size`` images (``None``: all)."""
    if train_size is not None:
        validation = max(1, min(pilot["validation_size"], train_size // 5))
        pilot["validation_size"] = validation
        pilot["train_size"] = min(pilot["train_size"], train_size - validation)
    return pilot


def _paper_pair(teacher_arch: str, student: str) -> tuple[str, str]:
    """The pair whose paper numbers the tables show: this one if the paper has it, else the reference pair."""
    from wttm_core.paper import paper_results_for

    return (teacher_arch, student) if paper_results_for(teacher_arch, student) else REFERENCE_PAIR


def _check_methods(methods: Sequence[str]) -> None:
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods must be a non-empty list of method names, got {methods!r}")
    for method in methods:
        parse_method(method)


def _check_student(student: str) -> str:
    from wttm_core.models import MODEL_NAMES

    if student not in MODEL_NAMES:
        raise ValueError(f"student: unknown architecture {student!r} (choose from {MODEL_NAMES})")
    return student


def _check_lr_grid(lr_grid: Sequence[float]) -> list[float]:
    grid = sorted({float(lr) for lr in lr_grid})
    if not grid or any(not 0 < lr < math.inf for lr in grid):
        raise ValueError(f"lr_grid must hold positive learning rates, got {list(lr_grid)!r}")
    return grid


def _resolve_hyperparameters(
    setup: StudentSetup, gamma: float | Mapping[str, float] | None, beta: float | Mapping[str, float] | None
) -> None:
    """Each TTM-like method's gamma and beta (given, else the presets) and the temperature the metrics use."""
    for method in setup.methods:
        base = parse_method(method).base
        if base not in _TUNED:
            continue
        values, origin = _hyperparameters(base, setup.teacher_arch, setup.student)
        given = {"gamma": _per_method("gamma", gamma, method), "beta": _per_method("beta", beta, method)}
        overridden = [key for key, value in given.items() if value is not None]
        values.update({key: given[key] for key in overridden})
        if overridden:
            origin = "given" if len(overridden) == 2 else f"{origin}; {overridden[0]} given"
        if values["gamma"] is None or values["beta"] is None:
            raise ValueError(f"gamma/beta: no preset for method {method!r}; give them explicitly")
        setup.hyper[method] = {"gamma": float(values["gamma"]), "beta": float(values["beta"])}
        setup.hyper_source[method] = origin
    gammas = sorted({h["gamma"] for h in setup.hyper.values()})
    setup.metric_temperature = 1.0 / gammas[0] if gammas else 4.0


@dataclass
class StudentResults:
    """What :func:`run_students` produced: the runs, grouped by method label, and the tables derived from them."""

    setup: StudentSetup
    teacher_dir: Path | None
    teacher_checkpoint: str
    runs: list[Run]
    groups: dict[str, list[Run]]
    rows: list[dict[str, Any]]
    verdicts: list[Comparison]
    seconds: float
    pilot: Pilot | None = None
    plan: Plan | None = None

    def table(self) -> str:
        """Markdown: best and last accuracy (mean +- std over seeds), the learning rate, the paper's number."""
        paper_header = f"paper ({self.setup.paper_pair[0]} -> {self.setup.paper_pair[1]}, CIFAR-100)"
        return markdown_table(
            self.rows,
            [
                ("label", "method"),
                ("lr", "lr"),
                ("runs", "seeds"),
                ("best", "best acc. (%)"),
                ("last", "last acc. (%)"),
                ("paper", paper_header),
                ("cohort_size", "trained together"),
                ("seconds_per_epoch", "cohort s / epoch"),
                ("seconds_per_student_epoch", "share per student (s / epoch)"),
            ],
        )

    def step_size_note(self) -> str:
        """What the learning rates say about a gap between methods: one shared rate still means unequal steps.

        At one learning rate TTM with beta = 36 steps about ``1 / (1 - lambda) = 10`` times as far as KD (Eq. 19),
        and the Table 8 presets give TTM and WTTM a CE weight of 1 against KD's 0.1, so a gap between methods at
        a shared rate mixes the step size with the loss.
        """
        rates = {row["label"]: row.get("lr") for row in self.rows}
        if len(rates) < 2:
            return ""  # one method: no gap to read
        split = "notebook 07 splits a KD → TTM gap into step size and Rényi term."
        if len(set(rates.values())) == 1:
            return (
                f"Every method ran at the same learning rate ({next(iter(rates.values()))!s}). At one rate the "
                "methods' steps still differ in size - by Eq. 19 TTM (β = 36) steps about 1 / (1 − λ) = 10 times as "
                "far as KD, and the Table 8 presets give TTM and WTTM a CE weight of 1 against KD's 0.1 - so a gap "
                "between them mixes step size with the loss. A short pilot cannot see which rate pays off over the "
                f"whole run; {split}"
            )
        return (
            "Each method ran at the rate the pilot chose for it from the same grid (an equal tuning budget). A short "
            "pilot can still miss a method's best rate for the whole run, so a large gap is worth re-checking at "
            f"the other methods' rates; {split}"
        )


def _variants(setup: StudentSetup) -> list[Variant]:
    variants = []
    for method in setup.methods:
        options: dict[str, Any] = {"metric_temperature": setup.metric_temperature}
        options.update(setup.hyper.get(method, {}))
        variants.append(Variant(method.upper(), method, options))
    return variants


@dataclass
class StudentContext:
    """What every student run shares: the data (loaded once), the teacher and the base configuration."""

    data: tuple[Any, Any]
    teacher_dir: Path | None
    teacher_checkpoint: str
    base: TrainConfig
    seconds: float

    @property
    def teacher_accuracy(self) -> float | None:
        """The test accuracy (%) of a teacher trained here (``None`` for a given checkpoint)."""
        if self.teacher_dir is None:
            return None
        return json.loads((self.teacher_dir / "summary.json").read_text()).get("last_test_acc")


def prepare_students(setup: StudentSetup, *, log: Callable[[str], None] = print) -> StudentContext:
    """Load the data and train (or reuse, or locate) the teacher; nothing about the students yet."""
    start = time.perf_counter()
    data = load_data(setup.dataset, setup.train_size, setup.test_size, data_dir=setup.data_dir)
    teacher_dir = None
    options: dict[str, Any] = {}
    if setup.teacher.kind == "train":
        teacher_dir = ensure_teacher(
            setup.teacher_arch,
            dataset=setup.dataset,
            epochs=setup.teacher_epochs,
            data=data,
            data_dir=setup.data_dir,
            device=setup.device,
            quiet=setup.quiet,
            log=log,
        )
        checkpoint = str(teacher_dir / "checkpoint.pth")
    elif setup.teacher.kind == "checkpoint":
        checkpoint = str(resolve_path(setup.teacher.value))
    else:
        checkpoint = ""
        options = {"teacher": setup.teacher.value, "teacher_dir": setup.data_dir}
    if setup.student_train_size is not None and setup.student_train_size < len(data[0]):
        data = (data[0].subset(range(setup.student_train_size)), data[1])  # the first n do not depend on the size
    base = TrainConfig(
        arch=setup.student,
        teacher_checkpoint=checkpoint or None,
        teacher_arch=setup.teacher_arch,
        dataset=setup.dataset,
        data_dir=setup.data_dir,
        epochs=setup.epochs,
        device=setup.device,
        quiet=setup.quiet,
        **options,
    )
    teacher = checkpoint or f"standard teacher {setup.teacher.value}"
    return StudentContext(data, teacher_dir, teacher, base, time.perf_counter() - start)


def run_students(
    setup: StudentSetup,
    context: StudentContext | None = None,
    *,
    on_epoch: EpochHook | None = None,
    reuse: bool = True,
    log: Callable[[str], None] = print,
) -> StudentResults:
    """Train (or reuse) every method for every seed (after :func:`prepare_students` when ``context`` is
    ``None``); build the table and the verdicts.

    Verdicts compare every method with KD (when run) and WTTM with TTM on the last-epoch test accuracy.
    """
    start = time.perf_counter()
    if context is None:
        context = prepare_students(setup, log=log)
    runs_plan = plan_students(setup, context, log=log)
    runs = runs_plan.runs.run(on_epoch=on_epoch, reuse=reuse, log=log)
    groups = group_runs(runs)
    from wttm_core.paper import paper_results_for

    rows = accuracy_rows(groups, paper=paper_results_for(*setup.paper_pair), pair=setup.paper_pair)
    for row in rows:
        group = groups[row["label"]]
        row.update(epoch_timing(group))
        for key in ("method", "gamma", "beta", "lr"):
            row[key] = group[0].config.get(key)
    pairs = _verdict_pairs(list(groups))
    verdicts = comparisons(groups, pairs=pairs) if pairs else []
    seconds = time.perf_counter() - start
    return StudentResults(
        setup,
        context.teacher_dir,
        context.teacher_checkpoint,
        runs,
        groups,
        rows,
        verdicts,
        seconds,
        runs_plan.pilot,
        runs_plan.plan,
    )


@dataclass
class StudentPlan:
    """What :func:`run_students` will train, once the pilot (if any) has chosen the rates and the budget the
    epochs: the :func:`~wttm_core.lab.experiments.orchestrate.run_variants` arguments, the pilot and the plan."""

    runs: VariantRuns
    pilot: Pilot | None = None
    plan: Plan | None = None


def plan_students(setup: StudentSetup, context: StudentContext, *, log: Callable[[str], None] = print) -> StudentPlan:
    """Run the learning-rate pilot (when ``setup.tune_lr``; cached) and fit the epochs to the time budget; return
    the student runs to train. ``setup.epochs`` becomes the budget's epochs."""
    base, variants = context.base, _variants(setup)
    pilot = plan = None
    if setup.tune_lr:
        pilot = _pilot(setup, context, variants, log)
        variants = with_learning_rates(variants, pilot.chosen)
        plan = _plan(setup, pilot, runs=len(variants) * len(setup.seeds), images=len(context.data[0]))
        log(plan.describe())
        if plan.epochs != setup.epochs:
            setup.epochs, base = plan.epochs, dataclasses.replace(base, epochs=plan.epochs, milestones=None)
    return StudentPlan(VariantRuns(variants, setup.seeds, base, setup.out_dir, context.data), pilot, plan)


# notebook 05's parameters that its setup cell passes to setup_students under the same name
_NOTEBOOK_KEYWORDS = (
    "dataset",
    "data_dir",
    "device",
    "teacher",
    "teacher_epochs",
    "student",
    "methods",
    "epochs",
    "seeds",
    "gamma",
    "beta",
    "tune_lr",
    "time_budget_s",
)


def notebook_setup(parameters: Mapping[str, Any]) -> StudentSetup:
    """The setup notebook 05's setup cell makes from its parameters (every one of them, defaults included):
    ``quiet`` is ``not interactive`` and a sweep point (``results_dir`` set) keeps its runs next to its results."""
    results_dir = parameters["results_dir"]
    return setup_students(
        parameters["profile"],
        **{key: parameters[key] for key in _NOTEBOOK_KEYWORDS},
        quiet=not parameters["interactive"],
        out_dir=None if results_dir is None else str(Path(results_dir).parent / "runs"),
    )


def sweep_runs(parameters: Mapping[str, Any], *, log: Callable[[str], None] = print) -> list[VariantRuns]:
    """The student runs notebook 05 will train with ``parameters`` (a sweep point's, defaults included): the
    setup, the data and the teacher (trained and cached here if needed), the pilot, then the runs - exactly what
    the notebook's cells compute, so that a sweep can train the points that share a teacher as one cohort
    (:func:`wttm_core.lab.sweep.run_sweep`) and the notebook then finds its runs finished."""
    setup = notebook_setup(parameters)
    return [plan_students(setup, prepare_students(setup, log=log), log=log).runs]


def _plan(setup: StudentSetup, pilot: Pilot, *, runs: int, images: int) -> Plan:
    """The students' epochs within ``setup.time_budget_s``, from the pilot's measured cost per image."""
    measured = pilot_seconds_per_image(resolve_path(setup.out_dir) / "lr-pilot", pilot.epochs, pilot.train_images)
    return plan_epochs(runs, images, setup.epochs, measured, setup.time_budget_s)


def _verdict_pairs(labels: list[str]) -> list[tuple[str, str]]:
    """One family of comparisons: every method against CE, every distiller against KD, WTTM against TTM."""
    pairs = [(label, "CE") for label in labels if label != "CE"] if "CE" in labels else []
    if "KD" in labels:
        pairs += [(label, "KD") for label in labels if label not in ("CE", "KD")]
    if {"TTM", "WTTM"} <= set(labels):
        pairs.append(("WTTM", "TTM"))
    return pairs


def _pilot(setup: StudentSetup, context: StudentContext, variants: list[Variant], log: Callable[[str], None]) -> Pilot:
    """Each method's learning rate from one grid, scored on a validation split of the training set."""
    from wttm_core.data import validation_split

    train = context.data[0]
    size = min(setup.pilot["validation_size"], len(train) // 5)
    train_part, validation = validation_split(train, max(size, 1), seed=0)  # never the test set
    if setup.pilot["train_size"] < len(train_part):
        train_part = train_part.subset(range(setup.pilot["train_size"]))
    return tune_learning_rates(
        variants,
        base=context.base,
        data=(train_part, validation),
        root=Path(setup.out_dir) / "lr-pilot",
        grid=setup.lr_grid,
        epochs=setup.pilot["epochs"],
        seed=setup.seeds[0],
        log=log,
    )


def _teacher_epoch_seconds(context: StudentContext) -> list[float]:
    """Training seconds of each epoch of a teacher trained here (``[]`` for a given checkpoint)."""
    if context.teacher_dir is None:
        return []
    return [round(row["train_seconds"], 2) for row in read_run(context.teacher_dir).metrics if row.get("train_seconds")]


def epoch_timing(runs: Sequence[Run]) -> dict[str, Any]:
    """The training time per epoch of one method's runs, honest about cohorts (means over seeds and epochs).

    Students trained together (a cohort: one teacher pass per batch for all) share every epoch's wall time, so
    it cannot be attributed to one of them: ``seconds_per_epoch`` is the wall time of an epoch of the whole
    cohort, ``cohort_size`` how many students trained in it (1: alone; ``"a-b"`` when the runs differ) and
    ``seconds_per_student_epoch`` that time divided by the cohort's size - one student's share when it trains
    with the others, not what it would cost alone. Runs written before cohorts count as trained alone.
    """
    records = [m for r in runs for m in r.metrics if m.get("train_seconds") is not None]
    if not records:
        return {"seconds_per_epoch": None, "cohort_size": None, "seconds_per_student_epoch": None}
    sizes = [int(m.get("cohort_students") or 1) for m in records]
    low, high = min(sizes), max(sizes)
    return {
        "seconds_per_epoch": round(sum(m["train_seconds"] for m in records) / len(records), 2),
        "cohort_size": low if low == high else f"{low}-{high}",
        "seconds_per_student_epoch": round(
            sum(m["train_seconds"] / n for m, n in zip(records, sizes, strict=True)) / len(records), 2
        ),
    }


def timing_rows(results: StudentResults) -> list[dict[str, Any]]:
    """Per method: training seconds of the first epoch (warm-up included) and the mean of the later ones, and
    images/s of the later epochs (all epochs when there is only one), averaged over seeds. Students trained as a
    cohort share these seconds (``cohort``: how many; see :func:`epoch_timing`), and their images/s is each
    student's images over the cohort's wall time."""
    rows = []
    for label, runs in results.groups.items():
        first = [r.metrics[0]["train_seconds"] for r in runs if r.metrics]
        later = [m for r in runs for m in (r.metrics[1:] or r.metrics)]
        rows.append(
            {
                "label": label,
                "runs": len(runs),
                "cohort": epoch_timing(runs)["cohort_size"],
                "first_epoch_s": round(sum(first) / len(first), 2) if first else None,
                "later_epoch_s": round(sum(m["train_seconds"] for m in later) / len(later), 2) if later else None,
                "images_per_s": round(sum(m["images_per_s"] or 0.0 for m in later) / len(later)) if later else None,
            }
        )
    return rows


def results_records(results: StudentResults) -> list[dict[str, Any]]:
    """Flat records (one per method) for a sweep's ``results.json``: accuracies, hyperparameters, timing."""
    keep = (
        "label",
        "method",
        "lr",
        "gamma",
        "beta",
        "runs",
        "best_mean",
        "best_std",
        "last_mean",
        "last_std",
        "paper_accuracy",
        "seconds_per_epoch",
        "cohort_size",
        "seconds_per_student_epoch",
    )
    return [{key: row.get(key) for key in keep} for row in results.rows]


def _parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`; its flags' names are :func:`setup_students`' keywords (``--out``: out_dir)."""
    parser = argparse.ArgumentParser(
        prog="python -m wttm_core.lab.experiments.students",
        description="Notebook 05 without Jupyter: train KD/TTM/WTTM students.",
    )
    parser.add_argument("--profile", default="cpu-quick", choices=sorted(PROFILE_PAIRS))
    parser.add_argument("--dataset", choices=("synthetic", "cifar100"))
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device")
    parser.add_argument("--teacher", help="train:<arch>, a checkpoint path or a standard teacher name")
    parser.add_argument("--teacher-epochs", type=int)
    parser.add_argument("--student")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument(
        "--tune-lr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="choose each method's learning rate on a validation split first (profile default)",
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--out", help="runs folder (default build/runs/05_train_students/<profile>)")
    parser.add_argument("--json", help="also write the table and timings to this JSON file")
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.lab.experiments.students --profile gpu-paper --dataset synthetic --epochs 3 ...``."""
    settings = vars(_parser().parse_args(argv))
    json_path = settings.pop("json")
    try:
        setup = setup_students(settings.pop("profile"), out_dir=settings.pop("out"), **settings)
    except (ValueError, FileNotFoundError) as error:
        print(f"students: {error}", file=sys.stderr)
        return 2
    print(setup.describe())
    context = prepare_students(setup)
    teacher_epochs = _teacher_epoch_seconds(context)
    if teacher_epochs:
        print(f"teacher: {len(teacher_epochs)} epoch(s), training seconds per epoch {teacher_epochs}")
    results = run_students(setup, context)
    _print_results(results)
    if json_path:
        _write_results_json(Path(json_path), setup, context, results, teacher_epochs)
    return 0


def _print_results(results: StudentResults) -> None:
    """The pilot (if any), the accuracy table, the verdicts and the time per epoch, as Markdown."""
    print()
    if results.pilot is not None:
        print(results.pilot.describe())
        print(markdown_table(results.pilot.rows(), [(k, k) for k in results.pilot.rows()[0]]))
        print()
    print(results.table())
    for verdict in results.verdicts:
        print("-", verdict.sentence())
    print("\ntime per epoch (training only; the first epoch includes warm-up; students trained together share it):")
    print(
        markdown_table(
            timing_rows(results),
            [
                ("label", "method"),
                ("runs", "runs"),
                ("cohort", "trained together"),
                ("first_epoch_s", "first epoch, cohort (s)"),
                ("later_epoch_s", "later epochs, cohort mean (s)"),
                ("images_per_s", "images/s per student (later epochs)"),
            ],
        )
    )
    print(f"\ntotal {results.seconds:.0f} s")


def _write_results_json(
    path: Path, setup: StudentSetup, context: StudentContext, results: StudentResults, teacher_epochs: list[float]
) -> None:
    """The setup, the device, the table, the timings and every run's per-epoch numbers as JSON (``--json``)."""
    from wttm_core.engine.state import write_json

    payload = {
        "setup": {k: v for k, v in asdict(setup).items() if k != "teacher"} | {"teacher": setup.teacher.describe()},
        "device": results.runs[0].config.get("environment", {}),
        "rows": results.rows,
        "timing": timing_rows(results),
        "teacher_epoch_seconds": teacher_epochs,
        "teacher_test_acc": context.teacher_accuracy,
        "epochs": {
            r.name: [{k: m.get(k) for k in ("epoch", "train_seconds", "images_per_s", "test_acc")} for m in r.metrics]
            for r in results.runs
        },
    }
    write_json(path, json.loads(json.dumps(payload, default=str)))


if __name__ == "__main__":
    sys.exit(main())
