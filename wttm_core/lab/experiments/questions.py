"""Notebook 07's experiments: the questions the paper leaves open, each under one fair protocol.

Every experiment trains all of its variants with the same student, data, epochs, recipe and seeds (at least 3
in the default profile), includes plain cross-entropy (CE) as the baseline, reports the last-epoch test accuracy
as mean +- std and judges every difference by paired t intervals (runs share their seed, hence initialisation
and data order), the test set's binomial error and Holm's correction within each experiment
(:mod:`~wttm_core.lab.experiments.stats`). Runs shared between experiments are trained once and reused from disk.

The losses differ in scale, so at one shared learning rate they also differ in step size (Eq. 19: TTM with
beta 36 is ten times KD + 10.8 Renyi). :func:`step_size_question` measures how much of KD -> TTM is step size
and how much the Renyi term; the other questions can run every method at its own learning rate, chosen on a
validation split from one grid for all (:mod:`~wttm_core.lab.experiments.tuning`).

* :func:`step_size_question` - where does TTM's gain over KD come from: KD at TTM's step (lr / (1 - lambda)),
  KD + lambda T (T - 1) Renyi at that rate, TTM, with paired intervals for each part;
* :func:`question8` - WTTM *without* cross-entropy against KD *with* it (Table 6), WTTM with CE as reference,
  and :func:`question8_noisy`, the same with 30 % symmetric label noise in the student's training labels;
* :func:`question9` - teachers of different strength, varied by architecture (each trained with the same
  budget; snapshots by epoch are still accepted): does the student keep improving with a better teacher?
* :func:`question10` - WTTM's sample weight U (Eq. 22) against U normalised to mean 1, H(p^t_T),
  1 - max p^t and no weight (TTM), every scheme at the same average strength;
* :func:`renyi_question` - future work: KD plus a decoupled Renyi regulariser with its own weight and order
  (Eqs. 4, 15, 19: weight 10.8 and order 1/4 make KD + Renyi a rescaled TTM).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wttm_core._checks import check_int, check_number
from wttm_core.engine import TrainConfig, read_jsonl
from wttm_core.lab.experiments import orchestrate
from wttm_core.lab.experiments.budget import check_budget, pilot_seconds_per_image, plan_epochs
from wttm_core.lab.experiments.stats import Comparison, estimate, format_mean_std
from wttm_core.lab.experiments.students import REFERENCE_PAIR
from wttm_core.lab.experiments.tables import comparisons
from wttm_core.lab.experiments.tuning import LR_GRID, Pilot, tune_learning_rates
from wttm_core.lab.experiments.variants import (
    WEIGHTING_LABELS,
    Variant,
    eq19_renyi_weight,
    kd_renyi_variant,
    weight_means,
    weighting_variants,
)
from wttm_core.presets import method_hyperparameters
from wttm_core.runs import Run, final_values, group_runs

__all__ = [
    "QUESTION_PROFILES",
    "QuestionSetup",
    "QuestionContext",
    "QuestionResult",
    "setup_questions",
    "prepare_questions",
    "step_size_question",
    "question8",
    "question8_noisy",
    "tune_questions",
    "question9",
    "teacher_knowledge",
    "question10",
    "renyi_question",
    "run_all",
    "reference_record",
    "reference_path",
    "compare_with_reference",
    "setup_differences",
    "findings",
]

QUESTION_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "dataset": "synthetic",
        "teacher": "train:resnet8",
        "teacher_epochs": 2,
        "teacher_train_size": 256,
        "student": "resnet8",
        "train_size": 128,
        "test_size": 128,
        "epochs": 1,
        "seeds": (0, 1),
        "strengths": (1, "train:resnet8"),
        "strength_epochs": None,  # question 9's trained teachers: the main teacher's budget and images
        "strength_train_size": None,
        "label_noise": 0.3,
        "renyi": ((10.8, 0.25),),
        "device": "auto",
        "lr_grid": LR_GRID,
        "pilot_epochs": 2,
        "more_questions": True,  # the shipped smoke reference holds every experiment
        "time_budget_s": None,
    },
    "cpu-quick": {
        "dataset": "synthetic",
        "teacher": "train:resnet20",
        "teacher_epochs": 6,
        "teacher_train_size": 5000,
        "student": "resnet8",
        "train_size": 1000,
        "test_size": 1000,
        "epochs": 2,
        "seeds": (0, 1, 2),
        "strengths": ("train:resnet8", "train:resnet20"),
        # question 9's teachers: trained to convergence on the students' 1,000 images (both ship; on 5,000 images
        # both architectures converge to the data's ceiling alike - benchmarks/RESULTS.md)
        "strength_epochs": 60,
        "strength_train_size": 1000,
        "label_noise": 0.3,
        "renyi": ((10.8, 0.5),),  # the tied (10.8, 1/4) variant runs in the step-size experiment
        "device": "auto",
        "lr_grid": (0.05, 0.2, 0.5),  # the recipe's rate, and x4, x10 (TTM's step by Eq. 19)
        "pilot_epochs": 2,  # the students' epochs (1 epoch picked the smallest rate for every method)
        "more_questions": False,  # Q10 and the Renyi regulariser: opt in (about 5 more students per seed)
        "time_budget_s": 300,  # the students' epochs are cut (the same for all) if the plan would take longer
    },
    "gpu-paper": {
        "dataset": "cifar100",
        "teacher": "resnet110",
        "teacher_epochs": 240,
        "teacher_train_size": None,
        "student": "resnet20",
        "train_size": None,
        "test_size": None,
        "epochs": 240,
        "seeds": (0, 1, 2),
        "strengths": ("resnet56", "resnet110"),
        "strength_epochs": None,  # the standard teachers, trained to convergence by their authors
        "strength_train_size": None,
        "label_noise": 0.3,
        "renyi": ((10.8, 0.5), (2.7, 0.25)),
        "device": "cuda",
        "lr_grid": LR_GRID,
        "pilot_epochs": 30,
        "more_questions": True,
        "time_budget_s": None,
    },
}


@dataclass
class QuestionSetup:
    """The resolved parameters shared by all of notebook 07's experiments."""

    profile: str
    dataset: str
    data_dir: str
    device: str
    teacher: orchestrate.TeacherSource
    teacher_epochs: int
    teacher_train_size: int | None
    student: str
    train_size: int | None
    test_size: int | None
    epochs: int
    seeds: list[int]
    strengths: list[int | str]
    strength_epochs: int | None
    strength_train_size: int | None
    renyi: list[tuple[float, float]]
    label_noise: float
    gamma: float
    wttm_beta: float
    noce_gamma: float
    noce_beta: float
    out_dir: str = "build/runs/07_open_questions"
    quiet: bool = True
    hyper_source: str = ""
    lr_grid: list[float] = field(default_factory=lambda: list(LR_GRID))
    pilot_epochs: int = 2
    more_questions: bool = True  # question 10 and the Renyi regulariser (opt-in in cpu-quick)
    time_budget_s: float | None = None  # seconds for the students after the pilot (None: unlimited)

    def describe(self) -> str:
        return "\n".join(
            [
                f"- profile **{self.profile}**: {self.dataset}, student {self.student} on "
                f"{self.train_size or 'all'} training images, {self.epochs} epoch(s), seeds {self.seeds}",
                f"- teacher: {self.teacher.describe()}"
                + (
                    f" ({self.teacher_epochs} epochs on {self.teacher_train_size} images)"
                    if self.teacher.kind == "train"
                    else ""
                ),
                f"- WTTM gamma {self.gamma:g}, beta {self.wttm_beta:g}; without CE gamma {self.noce_gamma:g}, "
                f"beta {self.noce_beta:g} ({self.hyper_source})",
                f"- teacher strengths (question 9): {self.strengths}"
                + (
                    f", each trained {self.strength_epochs} epochs (to convergence) on "
                    f"{self.strength_train_size or self.teacher_train_size} images"
                    if self.strength_epochs
                    else ""
                ),
                f"- label noise (question 8, noisy variant): {self.label_noise:.0%} of the student's training labels",
                f"- KD + Renyi (weight, order): {self.renyi}"
                + (
                    ""
                    if self.more_questions
                    else " (question 10 and the Renyi regulariser are off: opt in with `more_questions=True`)"
                ),
                f"- learning-rate pilot: the same grid {self.lr_grid} for every method, {self.pilot_epochs} epoch(s); "
                + (f"time budget {self.time_budget_s:g} s" if self.time_budget_s else "no time budget"),
            ]
        )


def _checked_strengths(values: dict[str, Any], source: Any) -> list[Any]:
    """Question 9's teachers: names, or epoch numbers of the trained main teacher; the main teacher included."""
    strengths = list(values["strengths"])
    if source.kind != "train" and any(isinstance(s, int) for s in strengths):
        raise ValueError("strengths: epoch numbers need a trained teacher ('train:<arch>'); give teacher names")
    for spec in strengths:
        if not isinstance(spec, int):
            orchestrate.parse_teacher(str(spec))  # raises naming a bad teacher
    if source.kind == "train" and values["teacher"] not in strengths and not any(isinstance(x, int) for x in strengths):
        strengths.append(values["teacher"])  # the main teacher is one of the strengths
    if len(strengths) < 2:
        raise ValueError(f"strengths must list at least 2 teachers, got {strengths}")
    epochs_given = [s for s in strengths if isinstance(s, int)]
    if any(not 1 <= s <= int(values["teacher_epochs"]) for s in epochs_given):
        raise ValueError(f"strengths: teacher epochs must lie in 1..{values['teacher_epochs']}, got {strengths}")
    return strengths


def setup_questions(profile: str = "cpu-quick", **overrides: Any) -> QuestionSetup:
    """Resolve notebook 07's parameters: the profile's values, updated by the non-``None`` ``overrides``."""
    profile = "cpu-quick" if profile == "default" else profile  # `make notebooks` passes "default"
    if profile not in QUESTION_PROFILES:
        raise ValueError(f"profile must be one of {sorted(QUESTION_PROFILES)}, got {profile!r}")
    values = dict(QUESTION_PROFILES[profile])
    budget = overrides.pop("time_budget_s", "profile")  # None here means unlimited, not "the profile's"
    if budget != "profile":
        values["time_budget_s"] = check_budget(budget)
    unknown = sorted(set(overrides) - set(values) - {"data_dir", "out_dir", "quiet"})
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    seeds = list(values["seeds"])
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least 2 distinct seeds (mean +- std), got {seeds}")
    source = orchestrate.parse_teacher(values["teacher"])
    strengths = _checked_strengths(values, source)
    noise = check_number("label_noise", values["label_noise"], low=0, high=1, low_open=True, high_open=True)
    strength = {  # question 9's teachers trained here: their epochs and images (None: the main teacher's)
        name: None if values[name] is None else check_int(name, values[name], low=1)
        for name in ("strength_epochs", "strength_train_size")
    }
    wttm = method_hyperparameters("wttm", *REFERENCE_PAIR)
    noce = method_hyperparameters("wttm-noce", *REFERENCE_PAIR)
    return QuestionSetup(
        profile=profile,
        dataset=values["dataset"],
        data_dir=str(orchestrate.resolve_path(values.get("data_dir", "data"))),
        device=values["device"],
        teacher=source,
        teacher_epochs=int(values["teacher_epochs"]),
        teacher_train_size=values["teacher_train_size"],
        student=values["student"],
        train_size=values["train_size"],
        test_size=values["test_size"],
        epochs=int(values["epochs"]),
        seeds=seeds,
        strengths=strengths,
        strength_epochs=strength["strength_epochs"],
        strength_train_size=strength["strength_train_size"],
        renyi=[(float(w), float(a)) for w, a in values["renyi"]],
        label_noise=float(noise),
        gamma=float(wttm["gamma"]),
        wttm_beta=float(wttm["beta"]),  # type: ignore[arg-type]
        noce_gamma=float(noce["gamma"]),
        noce_beta=float(noce["beta"]),  # type: ignore[arg-type]
        out_dir=values.get("out_dir") or f"build/runs/07_open_questions/{profile}",
        quiet=values.get("quiet", True),
        hyper_source=f"{wttm['source']} presets of {REFERENCE_PAIR[0]} -> {REFERENCE_PAIR[1]}; {noce['source']}",
        lr_grid=sorted({float(lr) for lr in values["lr_grid"]}),
        pilot_epochs=int(values["pilot_epochs"]),
        more_questions=bool(values["more_questions"]),
        time_budget_s=values["time_budget_s"],
    )


@dataclass
class QuestionContext:
    """Data, teachers and the base student configuration, prepared once for all experiments."""

    setup: QuestionSetup
    data: tuple[Any, Any]
    checkpoint: str
    teacher_checkpoints: dict[str, str]
    teacher_accuracy: dict[str, float]
    base: TrainConfig
    log: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)

    def run(
        self, variants: Sequence[Variant], base: TrainConfig | None = None, data: tuple[Any, Any] | None = None
    ) -> dict[str, list[Run]]:
        """Train (or reuse) ``variants`` over the setup's seeds, each at its method's chosen learning rate (when
        :func:`tune_questions` ran and the variant sets none); runs grouped by label, in variant order."""
        chosen = self.cache.get("pilot")
        if chosen is not None:
            variants = [v if "lr" in v.options else _at_rate(v, chosen.chosen[_family(v)]) for v in variants]
        runs = orchestrate.run_variants(
            variants,
            self.setup.seeds,
            base=base or self.base,
            root=self.setup.out_dir,
            data=data or self.data,
            diagnostics=False,
            log=self.log,
        )
        return group_runs(runs)

    @property
    def lr(self) -> float:
        """The recipe's learning rate for the student (what every method gets without a pilot)."""
        from wttm_core.presets import learning_rate

        return float(self.base.lr) if self.base.lr is not None else learning_rate(self.setup.student)


def _family(variant: Variant) -> str:
    """The pilot label whose learning rate a variant uses: by base method, TTM for an unweighted WTTM."""
    from wttm_core.engine.methods import parse_method

    base = parse_method(variant.method).base
    if base == "ttm" or (base == "wttm" and variant.options.get("weighting") == "none"):
        return WEIGHTING_LABELS["none"]
    return {"ce": "CE", "kd": "KD (T=4)", "wttm": WEIGHTING_LABELS["power-sum"]}.get(base, "WTTM without CE")


def _at_rate(variant: Variant, lr: float) -> Variant:
    return Variant(variant.label, variant.method, {**variant.options, "lr": float(lr)})


def _teacher_test_accuracy(teacher_dir: Path, epoch: int) -> float:
    for row in read_jsonl(teacher_dir / "metrics.jsonl"):
        if row.get("epoch") == epoch:
            return float(row["test_acc"])
    raise ValueError(f"teacher run {teacher_dir} has no epoch {epoch}")


def prepare_questions(setup: QuestionSetup, *, log: Callable[[str], None] = print) -> QuestionContext:
    """Load the data, train or locate the teachers (all strengths), build the base configuration."""
    sizes = (setup.teacher_train_size, setup.train_size, setup.strength_train_size or setup.teacher_train_size)
    size = None if None in sizes else max(sizes)  # type: ignore[type-var]
    train, test = orchestrate.load_data(setup.dataset, size, setup.test_size, data_dir=setup.data_dir)

    def first(n: int | None) -> Any:  # the first n images (the synthetic set's first n do not depend on its size)
        return train if n is None or n >= len(train) else train.subset(range(n))

    teacher_data, student_train = (first(setup.teacher_train_size), test), first(setup.train_size)
    strength_data = (first(setup.strength_train_size), test) if setup.strength_train_size else teacher_data
    teachers = _Teachers(setup, teacher_data, strength_data, log)
    main = teachers.main()
    for spec in setup.strengths:
        teachers.add(spec, main)
    base = TrainConfig(
        arch=setup.student,
        teacher_checkpoint=main,
        dataset=setup.dataset,
        data_dir=setup.data_dir,
        epochs=setup.epochs,
        device=setup.device,
        quiet=setup.quiet,
        metric_temperature=1.0 / setup.gamma,
    )
    return QuestionContext(setup, (student_train, test), main, teachers.checkpoints, teachers.accuracy, base, log)


@dataclass
class _Teachers:
    """The teachers of question 9: trained here (``train:<arch>``, each with the same budget: ``strength_epochs`` on
    ``strength_train_size`` images, to convergence in cpu-quick), snapshots of the main teacher (epoch numbers), or
    standard / checkpointed teachers located and evaluated."""

    setup: QuestionSetup
    data: tuple[Any, Any]
    strength_data: tuple[Any, Any]  # question 9's teachers trained here learn from these images
    log: Callable[[str], None]
    checkpoints: dict[str, str] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)

    def train(self, arch: str, snapshots: Any = (), strength: bool = False) -> Path:
        """A teacher trained here (or found trained, or shipped): the main teacher's budget and images, or with
        ``strength`` question 9's (``strength_epochs`` on ``strength_train_size`` images, when the profile sets
        them)."""
        s = self.setup
        epochs, data = (
            (s.strength_epochs or s.teacher_epochs, self.strength_data) if strength else (s.teacher_epochs, self.data)
        )
        return orchestrate.ensure_teacher(
            arch, dataset=s.dataset, epochs=epochs, data=data, data_dir=s.data_dir,
            device=s.device, quiet=s.quiet, log=self.log, snapshot_epochs=snapshots,
        )  # fmt: skip

    def main(self) -> str:
        s = self.setup
        if s.teacher.kind != "train":
            return self.locate(s.teacher)
        # the strengths must exist (a shipped teacher has only some epochs); a teacher trained here keeps every
        # epoch of a short run (shared with notebook 05's cache)
        epochs = [int(e) for e in s.strengths if isinstance(e, int)]
        return str(self.train(s.teacher.value, epochs) / "checkpoint.pth")

    def locate(self, source: orchestrate.TeacherSource, strength: bool = False) -> str:
        from wttm_core.teachers import find_teacher_checkpoint

        if source.kind == "checkpoint":
            return str(orchestrate.resolve_path(source.value))
        if source.kind == "train":
            return str(self.train(source.value, strength=strength) / "checkpoint.pth")
        return str(find_teacher_checkpoint(source.value, self.setup.data_dir))

    def add(self, spec: int | str, main: str) -> None:
        if isinstance(spec, int):  # a snapshot of the main teacher after `spec` epochs
            folder = Path(main).parent
            name = f"teacher after {spec} epoch{'s' if spec > 1 else ''}"
            snapshot = folder / f"checkpoint_epoch{spec}.pth"
            self.checkpoints[name] = main if spec == self.setup.teacher_epochs else str(snapshot)
            self.accuracy[name] = _teacher_test_accuracy(folder, spec)
            return
        source = orchestrate.parse_teacher(str(spec))
        path = self.locate(source, strength=True)
        epochs = self.setup.strength_epochs or self.setup.teacher_epochs
        name = f"{source.value} teacher"
        self.checkpoints[name] = path
        if source.kind == "train":
            self.accuracy[name] = _teacher_test_accuracy(Path(path).parent, epochs)
            return
        from wttm_core.engine import evaluate_model
        from wttm_core.models import load_checkpoint

        model = load_checkpoint(path, num_classes=self.data[1].num_classes)
        self.accuracy[name] = evaluate_model(model, self.data[1], device=self.setup.device)["top1"]


@dataclass
class QuestionResult:
    """One experiment's outcome: runs by label, last-epoch accuracies, verdicts and a short table."""

    title: str
    groups: dict[str, list[Run]]
    values: dict[str, list[float]]
    verdicts: list[Comparison]
    extra: dict[str, Any] = field(default_factory=dict)

    def values_for(self, how: str = "last") -> dict[str, list[float]]:
        """Per label, every seed's ``"last"`` or ``"best"`` test accuracy (%)."""
        return {label: final_values(runs, "test_acc", how=how) for label, runs in self.groups.items()}

    def rows(self) -> list[dict[str, Any]]:
        """One record per label: runs, last and best accuracy as mean +- std (formatted and as numbers)."""
        out = []
        best = self.values_for("best")
        for label, xs in self.values.items():
            e, b = estimate(xs), estimate(best[label])
            out.append(
                {
                    "question": self.title.split(":")[0],
                    "label": label,
                    "runs": e.n,
                    "last": format_mean_std(e.mean, e.std),
                    "best": format_mean_std(b.mean, b.std),
                    "last_mean": e.mean,
                    "last_std": e.std,
                    "best_mean": b.mean,
                    "best_std": b.std,
                }
            )
        return out


def _result(
    title: str, groups: Mapping[str, list[Run]], pairs: Sequence[tuple[str, str]], **extra: Any
) -> QuestionResult:
    values = {label: final_values(runs, "test_acc", how="last") for label, runs in groups.items()}
    return QuestionResult(title, dict(groups), values, comparisons(groups, pairs=pairs), dict(extra))


def _ce() -> Variant:
    return Variant("CE", "ce")


def _kd() -> Variant:
    return Variant("KD (T=4)", "kd")


def _wttm(ctx: QuestionContext) -> Variant:
    return Variant(WEIGHTING_LABELS["power-sum"], "wttm", {"gamma": ctx.setup.gamma, "beta": ctx.setup.wttm_beta})


def _noce(ctx: QuestionContext) -> Variant:
    return Variant("WTTM without CE", "wttm-noce", {"gamma": ctx.setup.noce_gamma, "beta": ctx.setup.noce_beta})


def _ttm(ctx: QuestionContext) -> Variant:
    """Plain TTM at the strength that gives WTTM's preset the same mean weight (as in question 10)."""
    return next(v for v in _weighting_variants(ctx) if v.options.get("weighting") == "none")


def tune_questions(ctx: QuestionContext, *, grid: Sequence[float] | None = None, epochs: int | None = None) -> Pilot:
    """Choose each method's learning rate (CE, KD, TTM, WTTM, WTTM without CE) on a validation split of the
    student's training set, one seed, ``epochs`` epochs, one grid for all (:mod:`~wttm_core.lab.experiments.tuning`;
    ``None``: the setup's ``lr_grid`` / ``pilot_epochs``); afterwards :meth:`QuestionContext.run` trains every
    variant at its method's rate."""
    grid = ctx.setup.lr_grid if grid is None else grid
    epochs = ctx.setup.pilot_epochs if epochs is None else epochs
    from wttm_core.data import validation_split

    train = ctx.data[0]
    split = validation_split(train, max(100, len(train) // 5), seed=ctx.setup.seeds[0])
    variants = [_ce(), _kd(), _ttm(ctx), _wttm(ctx), _noce(ctx)]
    pilot = tune_learning_rates(
        variants, base=ctx.base, data=split, root=Path(ctx.setup.out_dir) / "lr-pilot", grid=grid, epochs=epochs,
        seed=ctx.setup.seeds[0], log=ctx.log,
    )  # fmt: skip
    ctx.cache["pilot"] = pilot
    _fit_budget(ctx, pilot)
    return pilot


# students per seed after the pilot: step size 5, question 8 4, with noise 4, question 9 4 (more: 10 4, Renyi 1)
_RUNS_PER_SEED, _MORE_RUNS_PER_SEED = 17, 5


def _fit_budget(ctx: QuestionContext, pilot: Pilot) -> None:
    """Lower every experiment's epochs (the same for all) when the plan would exceed ``time_budget_s``."""
    s = ctx.setup
    measured = pilot_seconds_per_image(
        orchestrate.resolve_path(s.out_dir) / "lr-pilot", pilot.epochs, pilot.train_images
    )
    runs = (_RUNS_PER_SEED + (_MORE_RUNS_PER_SEED if s.more_questions else 0)) * len(s.seeds)
    plan = plan_epochs(runs, len(ctx.data[0]), s.epochs, measured, s.time_budget_s)
    ctx.log(plan.describe())
    ctx.cache["plan"] = plan
    if plan.epochs != s.epochs:
        s.epochs, ctx.base = plan.epochs, dataclasses.replace(ctx.base, epochs=plan.epochs)


def step_size_question(ctx: QuestionContext) -> QuestionResult:
    """Where does TTM's gain over KD come from? Eq. 19 splits it into a step size and a Renyi term.

    ``L_TTM(beta = lambda T / (1 - lambda)) = (L_KD - lambda T (T - 1) H_{1/T}(q)) / (1 - lambda) + c``: TTM
    is KD plus a Renyi term, times ``1 / (1 - lambda)`` (10 at lambda = 0.9). Four runs at fixed rates
    ``eta`` (the recipe's) and ``eta / (1 - lambda)`` separate the parts (plain SGD: multiplying a loss by 10
    is multiplying the step by 10, except for the weight decay, which the larger rate also multiplies):

    * step size = KD at ``eta / (1 - lambda)`` - KD at ``eta``;
    * Renyi term = (KD + 10.8 Renyi) at ``eta / (1 - lambda)`` - KD at ``eta / (1 - lambda)``;
    * rest = TTM (beta 36) at ``eta`` - (KD + 10.8 Renyi) at ``eta / (1 - lambda)`` (weight decay only).
    """
    from wttm_core.presets import RECIPE

    eta, factor = ctx.lr, 1.0 / (1.0 - RECIPE.kd_weight)
    fast = round(eta * factor, 12)  # 0.5, not 0.5000000000000001, in config.json
    weight, order = eq19_renyi_weight(), 1.0 / RECIPE.kd_temperature
    ttm_beta = RECIPE.kd_weight * RECIPE.kd_temperature / (1.0 - RECIPE.kd_weight)
    kd, kd_fast = f"KD (T=4) at lr {eta:g}", f"KD (T=4) at lr {fast:g}"
    renyi = f"KD + {weight:g} Renyi at lr {fast:g}"
    ttm = f"TTM (beta={ttm_beta:g}) at lr {eta:g}"
    variants = [
        _at_rate(Variant(f"CE at lr {eta:g}", "ce"), eta),
        _at_rate(Variant(kd, "kd"), eta),
        _at_rate(Variant(kd_fast, "kd"), fast),
        _at_rate(kd_renyi_variant(weight, order, label=renyi), fast),
        _at_rate(Variant(ttm, "ttm", {"gamma": order, "beta": ttm_beta}), eta),
    ]
    groups = ctx.run(variants)
    pairs = [(kd_fast, kd), (renyi, kd_fast), (ttm, renyi), (ttm, kd), (kd, f"CE at lr {eta:g}")]
    parts = {"step size": pairs[0], "Renyi term": pairs[1], "rest (weight decay)": pairs[2], "total": pairs[3]}
    return _result("Where the gain comes from: step size vs the Renyi term (Eq. 19)", groups, pairs, parts=parts,
                   lr=eta, factor=factor)  # fmt: skip


def question8(ctx: QuestionContext) -> QuestionResult:
    """Question 8 (Table 6): is WTTM without cross-entropy as good as KD with it? CE as the baseline."""
    groups = ctx.run([_ce(), _kd(), _wttm(ctx), _noce(ctx)])
    wttm = WEIGHTING_LABELS["power-sum"]
    return _result(
        "Q8: WTTM without CE vs KD with CE",
        groups,
        [("WTTM without CE", "KD (T=4)"), ("WTTM without CE", wttm), ("KD (T=4)", "CE"), (wttm, "CE")],
    )


def question8_noisy(ctx: QuestionContext) -> QuestionResult:
    """Question 8 with noisy labels: a fraction ``label_noise`` of the student's training labels is replaced by
    a random other class (symmetric noise; the teacher was trained on clean labels, the test set is clean).
    CE, KD, WTTM and WTTM without CE: does dropping the (now partly wrong) labels help?"""
    from wttm_core.data import with_label_noise

    noise = ctx.setup.label_noise
    tag = f" | {noise:.0%} noisy labels"
    noisy = (with_label_noise(ctx.data[0], noise, seed=0), ctx.data[1])
    variants = [Variant(v.label + tag, v.method, v.options) for v in (_ce(), _kd(), _wttm(ctx), _noce(ctx))]
    chosen = ctx.cache.get("pilot")
    if chosen is not None:  # the clean pilot's rates, by method
        variants = [_at_rate(v, chosen.chosen[_family(v)]) for v in variants]
    groups = ctx.run(variants, dataclasses.replace(ctx.base, extra={"label_noise": noise}), noisy)
    ce, kd, wttm, noce = (v.label for v in variants)
    return _result(
        f"Q8 with {noise:.0%} label noise: is dropping CE useful when labels are wrong?",
        groups,
        [(noce, kd), (noce, wttm), (kd, ce), (wttm, ce), (noce, ce)],
        label_noise=noise,
    )


def question9(ctx: QuestionContext) -> QuestionResult:
    """Question 9: with a stronger teacher (another architecture), does the student keep improving?"""
    groups: dict[str, list[Run]] = {}
    means: dict[str, tuple[list[float], list[float]]] = {"KD (T=4)": ([], []), "WTTM": ([], [])}
    names = sorted(ctx.teacher_checkpoints, key=ctx.teacher_accuracy.__getitem__)  # weakest first
    for name in names:
        path = ctx.teacher_checkpoints[name]
        base = dataclasses.replace(ctx.base, teacher_checkpoint=path)
        if path == ctx.checkpoint:
            variants = [_kd(), _wttm(ctx)]
        else:
            wttm = _wttm(ctx)
            variants = [Variant(f"KD (T=4) | {name}", "kd"), Variant(f"WTTM | {name}", "wttm", wttm.options)]
        found = ctx.run(variants, base)
        for method, variant in zip(("KD (T=4)", "WTTM"), variants, strict=True):
            key = f"{method} | {name}"
            groups[key] = found[variant.label]
            e = estimate(final_values(found[variant.label], "test_acc", how="last"))
            means[method][0].append(e.mean)
            means[method][1].append(e.std or 0.0)
    groups.update(ctx.run([_ce()]))  # the baseline without a teacher (the same runs as question 8's)
    weakest, strongest = names[0], names[-1]
    pairs = [(f"{m} | {strongest}", f"{m} | {weakest}") for m in ("KD (T=4)", "WTTM")]
    pairs += [(f"WTTM | {strongest}", f"KD (T=4) | {strongest}"), (f"KD (T=4) | {weakest}", "CE")]
    return _result(
        "Q9: student accuracy against teacher strength (teachers of different architectures)",
        groups,
        pairs,
        teacher_accuracy=[ctx.teacher_accuracy[n] for n in names],
        teachers=names,
        students=means,
    )


def teacher_knowledge(ctx: QuestionContext) -> dict[str, dict[str, float]]:
    """What each of question 9's teachers knows, on the test set, beyond its accuracy (all in %): ``accuracy``
    (top-1), ``superclass accuracy`` (the superclass holding most of its probability is the true one) and
    ``mass in family`` - of the probability it puts on *other* superclasses, the share inside the true
    superclass's family (:data:`wttm_core.data.SUPERCLASS_FAMILIES`), next to ``chance``, the share a uniform
    spread would give (:func:`wttm_core.data.family_statistics`). Two teachers can rank differently on each."""
    import torch

    from wttm_core.data import family_statistics

    test = ctx.data[1]
    labels = torch.as_tensor(test.labels)
    out = {}
    for name, path in ctx.teacher_checkpoints.items():
        probs = torch.softmax(orchestrate.teacher_logits(path, test, device=ctx.setup.device), dim=1).cpu()
        stats = family_statistics(probs, labels, torch.as_tensor(test.fine_to_coarse))
        out[name] = {
            "accuracy": 100.0 * (probs.argmax(dim=1) == labels).double().mean().item(),
            "superclass accuracy": 100.0 * (1.0 - stats["superclass_error_rate"]),
            "mass in family": 100.0 * stats["other_superclass_mass_in_family"],
            "chance": 100.0 * stats["other_superclass_mass_in_family_chance"],
        }
    return out


def _weighting_variants(ctx: QuestionContext) -> list[Variant]:
    s = ctx.setup
    if "weight_means" not in ctx.cache:
        logits = orchestrate.teacher_logits(ctx.checkpoint, ctx.data[0], device=s.device)
        ctx.cache["weight_means"] = weight_means(logits, s.gamma)
    means = ctx.cache["weight_means"]
    # U gets WTTM's preset beta; every other scheme the beta giving the same mean weight times beta
    reference = s.wttm_beta * means["power-sum"]
    return [
        _wttm(ctx) if v.options["weighting"] == "power-sum" else v
        for v in weighting_variants(s.gamma, reference, means)
    ]


def question10(ctx: QuestionContext) -> QuestionResult:
    """Question 10 / future work: other sample weights at the same average strength as WTTM's U."""
    groups = ctx.run([_ce(), *_weighting_variants(ctx)])  # CE: the baseline, shared with question 8
    pairs = [(label, WEIGHTING_LABELS["none"]) for label in groups if label not in (WEIGHTING_LABELS["none"], "CE")]
    pairs.append((WEIGHTING_LABELS["none"], "CE"))
    means = ctx.cache["weight_means"]
    return _result(
        "Q10: WTTM's weight U against other sample weights (same mean strength)",
        groups,
        pairs,
        weight_means=means,
        ttm_beta=ctx.setup.wttm_beta * means["power-sum"],
    )


def renyi_question(ctx: QuestionContext) -> QuestionResult:
    """Future work: KD plus a Renyi-entropy regulariser with its own weight and order (Eqs. 4, 15, 19).

    Every variant runs at KD's learning rate (chosen or the recipe's): the regulariser changes the loss's scale,
    so part of any difference is again step size (see :func:`step_size_question`)."""
    kd = _kd()
    chosen = ctx.cache.get("pilot")
    lr = chosen.chosen[kd.label] if chosen is not None else ctx.lr
    variants = [_ce(), _at_rate(kd, lr)] + [_at_rate(kd_renyi_variant(w, a), lr) for w, a in ctx.setup.renyi]
    groups = ctx.run(variants)  # CE and KD: the baselines, shared with question 8
    pairs = [(label, "KD (T=4)") for label in groups if label not in ("KD (T=4)", "CE")] + [("KD (T=4)", "CE")]
    return _result("Future work: KD + a decoupled Renyi regulariser", groups, pairs, eq19_weight=eq19_renyi_weight())


REFERENCE_DIR = "data/reference_runs"


def reference_path(profile: str) -> Path:
    """Where the shipped reference result of notebook 07 for ``profile`` lives."""
    return orchestrate.resolve_path(REFERENCE_DIR) / f"07_open_questions-{profile}.json"


def _record(result: QuestionResult) -> list[dict[str, Any]]:
    return [
        {
            "question": result.title.split(":")[0],
            "comparison": f"{c.label_a} - {c.label_b}",
            "difference": c.difference,
            "ci": list(c.ci) if c.ci is not None else None,
            "verdict": c.verdict.replace(c.label_a, "first").replace(c.label_b, "second"),
        }
        for c in result.verdicts
    ]


def reference_record(setup: QuestionSetup, results: Sequence[QuestionResult], pilot: Pilot | None) -> dict[str, Any]:
    """Everything another run needs to compare itself with this one: the comparisons (difference, interval,
    verdict), the learning rates chosen, the setup, and when / where / from which commit it was made."""
    from wttm_core.lab.experiments.examples import provenance

    return {
        "made": provenance(),
        "profile": setup.profile,
        "setup": setup.describe(),
        "chosen_lr": pilot.chosen if pilot is not None else None,
        "comparisons": [row for result in results for row in _record(result)],
    }


def _agreement(mine: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """``"agrees"``, or what differs: the verdict (a winner in one run, another or none in the other) or the
    intervals (which do not overlap although both verdicts are the same)."""
    if mine["verdict"] != ref["verdict"]:
        return f"DIFFERS: verdict '{mine['verdict']}' here, '{ref['verdict']}' in the reference"
    if (
        mine["ci"] is not None
        and ref["ci"] is not None
        and (mine["ci"][1] < ref["ci"][0] or ref["ci"][1] < mine["ci"][0])
    ):
        return "DIFFERS: the intervals do not overlap"
    return "agrees"


def setup_differences(setup: QuestionSetup | str, reference: Mapping[str, Any]) -> list[str]:
    """Where this run's setup (``setup`` or its :meth:`QuestionSetup.describe`) differs from the reference's
    ``"setup"``: one ``"here: ... | reference: ..."`` line per differing line of the two descriptions (in order;
    a line only one side has is shown against ``"(none)"``). Empty when they are the same, or when the
    reference records no setup. The description holds the epochs *after* the time budget's cut, so a run
    cut to 1 epoch is told apart from one that trained 2."""
    theirs = reference.get("setup")
    if not isinstance(theirs, str):
        return []
    mine = setup if isinstance(setup, str) else setup.describe()
    a, b = mine.splitlines(), theirs.splitlines()
    a, b = a + ["(none)"] * (len(b) - len(a)), b + ["(none)"] * (len(a) - len(b))
    return [
        f"here: {x.removeprefix('- ')} | reference: {y.removeprefix('- ')}" for x, y in zip(a, b, strict=True) if x != y
    ]


def compare_with_reference(
    results: Sequence[QuestionResult], reference: Mapping[str, Any], setup: QuestionSetup | str | None = None
) -> list[dict[str, Any]]:
    """One row per comparison of this run: its difference and interval next to the reference's, and whether the
    two agree (:func:`_agreement`); comparisons the reference lacks are marked ``"not in the reference"``. Given
    this run's ``setup``, a setup that differs from the reference's (:func:`setup_differences`: other epochs,
    sizes, teacher, ...) is flagged on every row, so that runs of different experiments are not read as a
    disagreement of the same one: each row then has a ``"setup"`` entry, ``"same"`` or ``"DIFFERS: ..."``."""
    by_key = {(r["question"], r["comparison"]): r for r in reference.get("comparisons", [])}
    differs = setup is not None and bool(setup_differences(setup, reference))
    rows = []
    for mine in (row for result in results for row in _record(result)):
        ref = by_key.get((mine["question"], mine["comparison"]))

        def show(row: Mapping[str, Any] | None) -> str:
            if row is None:
                return ""
            ci = row["ci"]
            return f"{row['difference']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else " (no interval)")

        rows.append(
            {
                "question": mine["question"],
                "comparison": mine["comparison"],
                "this run": show(mine),
                "reference": show(ref),
                "agreement": _agreement(mine, ref) if ref is not None else "not in the reference",
            }
        )
        if setup is not None:
            rows[-1]["setup"] = "DIFFERS: not the same experiment" if differs else "same"
    return rows


def run_all(ctx: QuestionContext, *, tune: bool = True) -> tuple[list[QuestionResult], Pilot | None]:
    """Every experiment of notebook 07 in order (after the learning-rate pilot when ``tune``)."""
    pilot = tune_questions(ctx) if tune else None
    experiments = [step_size_question, question8, question8_noisy, question9]
    if ctx.setup.more_questions:
        experiments += [question10, renyi_question]
    return [experiment(ctx) for experiment in experiments], pilot


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.lab.experiments.questions --profile cpu-quick --reference``: notebook 07 without
    Jupyter; ``--reference`` writes the result as the shipped reference (:func:`reference_path`)."""
    import argparse
    import sys

    from wttm_core.engine.state import write_json

    parser = argparse.ArgumentParser(prog="python -m wttm_core.lab.experiments.questions", description=main.__doc__)
    parser.add_argument("--profile", default="cpu-quick", choices=sorted(QUESTION_PROFILES))
    parser.add_argument("--reference", action="store_true", help="write the result as the shipped reference")
    parser.add_argument("--no-tune", action="store_true", help="every method at the recipe's learning rate")
    args = parser.parse_args(argv)
    ctx = prepare_questions(setup_questions(args.profile))
    results, pilot = run_all(ctx, tune=not args.no_tune)
    for result in results:
        print(result.title)
        for verdict in result.verdicts:
            print("   ", verdict.sentence())
    if args.reference:
        path = reference_path(args.profile)
        write_json(path, reference_record(ctx.setup, results, pilot))
        print("reference written to", path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def findings(result: QuestionResult) -> str:
    """A markdown paragraph of what ``result`` shows, generated from its verdicts (so it never contradicts the
    numbers above it): the differences beyond the noise, those within it, and those the runs cannot judge."""
    won = [c for c in result.verdicts if c.significant]
    noise = [c for c in result.verdicts if c.verdict == "within noise"]
    unknown = [c for c in result.verdicts if c.verdict == "inconclusive"]
    parts = []
    if won:
        parts.append(
            "Beyond the noise: "
            + "; ".join(f"{c.verdict} ({c.label_a} - {c.label_b} = {c.difference:+.2f} points)" for c in won)
            + "."
        )
    if noise:
        parts.append(
            "Within the noise (this protocol cannot tell them apart): "
            + "; ".join(f"{c.label_a} vs {c.label_b} ({c.difference:+.2f})" for c in noise)
            + "."
        )
    if unknown:
        parts.append("Not judged (no spread to estimate the noise from): " + "; ".join(
            f"{c.label_a} vs {c.label_b}" for c in unknown) + ".")  # fmt: skip
    return f"**{result.title}.** " + " ".join(parts)
