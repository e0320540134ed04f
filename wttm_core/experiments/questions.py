"""Notebook 07's experiments: the questions the paper leaves open, each under one fair protocol.

Every experiment trains all of its variants with the same student, data, epochs, recipe and seeds (at least 3
in the default profile), reports the last-epoch test accuracy as mean +- std and judges every difference with
Welch's t-test and the combined standard deviation (:mod:`~wttm_core.experiments.stats`). Runs shared between
experiments (KD and WTTM with the main teacher) are trained once and reused from disk.

* :func:`question8` - WTTM *without* cross-entropy against KD *with* it (Table 6), WTTM with CE as reference;
* :func:`question9` - teachers of different strength (snapshots of one teacher after more and more epochs, or
  several standard teachers): does the student keep improving with a better teacher, for KD and for WTTM?
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

from wttm_core.engine import TrainConfig, read_jsonl
from wttm_core.experiments.orchestrate import (
    SNAPSHOT_ALL_UP_TO,
    TeacherSource,
    ensure_teacher,
    load_data,
    parse_teacher,
    resolve_path,
    run_variants,
    teacher_logits,
)
from wttm_core.experiments.stats import Comparison, compare, estimate, format_mean_std
from wttm_core.experiments.students import REFERENCE_PAIR
from wttm_core.experiments.variants import (
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
    "question8",
    "question9",
    "question10",
    "renyi_question",
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
        "strengths": (1, 2),
        "renyi": ((10.8, 0.25),),
        "device": "auto",
    },
    "cpu-quick": {
        "dataset": "synthetic",
        "teacher": "train:resnet20",
        "teacher_epochs": 6,
        "teacher_train_size": 5000,
        "student": "resnet8",
        "train_size": 1500,
        "test_size": 1000,
        "epochs": 4,
        "seeds": (0, 1, 2),
        "strengths": (2, 4, 6),
        "renyi": ((10.8, 0.25), (10.8, 0.5), (2.7, 0.25)),
        "device": "auto",
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
        "renyi": ((10.8, 0.25), (10.8, 0.5), (2.7, 0.25)),
        "device": "cuda",
    },
}


@dataclass
class QuestionSetup:
    """The resolved parameters shared by all of notebook 07's experiments."""

    profile: str
    dataset: str
    data_dir: str
    device: str
    teacher: TeacherSource
    teacher_epochs: int
    teacher_train_size: int | None
    student: str
    train_size: int | None
    test_size: int | None
    epochs: int
    seeds: list[int]
    strengths: list[int | str]
    renyi: list[tuple[float, float]]
    gamma: float
    wttm_beta: float
    noce_gamma: float
    noce_beta: float
    out_dir: str = "build/runs/07_open_questions"
    quiet: bool = True
    hyper_source: str = ""

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
                f"- teacher strengths (question 9): {self.strengths}",
                f"- KD + Renyi (weight, order): {self.renyi}",
            ]
        )


def setup_questions(profile: str = "cpu-quick", **overrides: Any) -> QuestionSetup:
    """Resolve notebook 07's parameters: the profile's values, updated by the non-``None`` ``overrides``."""
    profile = "cpu-quick" if profile == "default" else profile  # `make notebooks` passes "default"
    if profile not in QUESTION_PROFILES:
        raise ValueError(f"profile must be one of {sorted(QUESTION_PROFILES)}, got {profile!r}")
    values = dict(QUESTION_PROFILES[profile])
    unknown = sorted(set(overrides) - set(values) - {"data_dir", "out_dir", "quiet"})
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    seeds = list(values["seeds"])
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least 2 distinct seeds (mean +- std), got {seeds}")
    source = parse_teacher(values["teacher"])
    strengths = list(values["strengths"])
    if source.kind != "train" and any(isinstance(s, int) for s in strengths):
        raise ValueError("strengths: epoch numbers need a trained teacher ('train:<arch>'); give teacher names")
    if len(strengths) < 2:
        raise ValueError(f"strengths must list at least 2 teachers, got {strengths}")
    epochs_given = [s for s in strengths if isinstance(s, int)]
    if any(not 1 <= s <= int(values["teacher_epochs"]) for s in epochs_given):
        raise ValueError(f"strengths: teacher epochs must lie in 1..{values['teacher_epochs']}, got {strengths}")
    wttm = method_hyperparameters("wttm", *REFERENCE_PAIR)
    noce = method_hyperparameters("wttm-noce", *REFERENCE_PAIR)
    return QuestionSetup(
        profile=profile,
        dataset=values["dataset"],
        data_dir=str(resolve_path(values.get("data_dir", "data"))),
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
        renyi=[(float(w), float(a)) for w, a in values["renyi"]],
        gamma=float(wttm["gamma"]),
        wttm_beta=float(wttm["beta"]),  # type: ignore[arg-type]
        noce_gamma=float(noce["gamma"]),
        noce_beta=float(noce["beta"]),  # type: ignore[arg-type]
        out_dir=values.get("out_dir") or f"build/runs/07_open_questions/{profile}",
        quiet=values.get("quiet", True),
        hyper_source=f"{wttm['source']} presets of {REFERENCE_PAIR[0]} -> {REFERENCE_PAIR[1]}; {noce['source']}",
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

    def run(self, variants: Sequence[Variant], base: TrainConfig | None = None) -> dict[str, list[Run]]:
        """Train (or reuse) ``variants`` over the setup's seeds; runs grouped by label, in variant order."""
        runs = run_variants(
            variants,
            self.setup.seeds,
            base=base or self.base,
            root=self.setup.out_dir,
            data=self.data,
            diagnostics=False,
            log=self.log,
        )
        return group_runs(runs)


def _teacher_test_accuracy(teacher_dir: Path, epoch: int) -> float:
    for row in read_jsonl(teacher_dir / "metrics.jsonl"):
        if row.get("epoch") == epoch:
            return float(row["test_acc"])
    raise ValueError(f"teacher run {teacher_dir} has no epoch {epoch}")


def prepare_questions(setup: QuestionSetup, *, log: Callable[[str], None] = print) -> QuestionContext:
    """Load the data, train or locate the teachers (all strengths), build the base configuration."""
    sizes = (setup.teacher_train_size, setup.train_size)
    size = None if None in sizes else max(sizes)  # type: ignore[type-var]
    train, test = load_data(setup.dataset, size, setup.test_size, data_dir=setup.data_dir)

    def first(n: int | None) -> Any:  # the first n images (the synthetic set's first n do not depend on its size)
        return train if n is None or n >= len(train) else train.subset(range(n))

    teacher_data, student_train = (first(setup.teacher_train_size), test), first(setup.train_size)
    checkpoints: dict[str, str] = {}
    accuracy: dict[str, float] = {}
    if setup.teacher.kind == "train":
        teacher_dir = ensure_teacher(
            setup.teacher.value,
            dataset=setup.dataset,
            epochs=setup.teacher_epochs,
            data=teacher_data,
            data_dir=setup.data_dir,
            device=setup.device,
            quiet=setup.quiet,
            log=log,
            # every epoch is kept for short runs (and then shared with notebook 05's cache); else only these
            snapshot_epochs=None if setup.teacher_epochs <= SNAPSHOT_ALL_UP_TO else [int(e) for e in setup.strengths],
        )
        main = str(teacher_dir / "checkpoint.pth")
        for epoch in setup.strengths:
            epoch = int(epoch)
            name = f"teacher after {epoch} epoch{'s' if epoch > 1 else ''}"
            checkpoints[name] = (
                main if epoch == setup.teacher_epochs else str(teacher_dir / f"checkpoint_epoch{epoch}.pth")
            )
            accuracy[name] = _teacher_test_accuracy(teacher_dir, epoch)
    else:
        from wttm_core.engine import evaluate_model
        from wttm_core.models import load_checkpoint
        from wttm_core.teachers import find_teacher_checkpoint

        def locate(source: TeacherSource) -> str:
            if source.kind == "checkpoint":
                return str(resolve_path(source.value))
            return str(find_teacher_checkpoint(source.value, setup.data_dir))

        main = locate(setup.teacher)
        for spec in setup.strengths:
            path = locate(parse_teacher(str(spec)))
            checkpoints[str(spec)] = path
            model = load_checkpoint(path, num_classes=test.num_classes)
            accuracy[str(spec)] = evaluate_model(model, test, device=setup.device)["top1"]
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
    return QuestionContext(setup, (student_train, test), main, checkpoints, accuracy, base, log)


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
    verdicts = [compare(values[a], values[b], label_a=a, label_b=b) for a, b in pairs]
    return QuestionResult(title, dict(groups), values, verdicts, dict(extra))


def _kd() -> Variant:
    return Variant("KD (T=4)", "kd")


def _wttm(ctx: QuestionContext) -> Variant:
    return Variant(WEIGHTING_LABELS["power-sum"], "wttm", {"gamma": ctx.setup.gamma, "beta": ctx.setup.wttm_beta})


def question8(ctx: QuestionContext) -> QuestionResult:
    """Question 8 (Table 6): is WTTM without cross-entropy as good as KD with it?"""
    s = ctx.setup
    noce = Variant("WTTM without CE", "wttm-noce", {"gamma": s.noce_gamma, "beta": s.noce_beta})
    groups = ctx.run([_kd(), _wttm(ctx), noce])
    return _result(
        "Q8: WTTM without CE vs KD with CE",
        groups,
        [("WTTM without CE", "KD (T=4)"), ("WTTM without CE", WEIGHTING_LABELS["power-sum"])],
    )


def question9(ctx: QuestionContext) -> QuestionResult:
    """Question 9: with a stronger teacher, does the student keep improving (KD vs WTTM)?"""
    groups: dict[str, list[Run]] = {}
    means: dict[str, tuple[list[float], list[float]]] = {"KD (T=4)": ([], []), "WTTM": ([], [])}
    names = sorted(ctx.teacher_checkpoints, key=ctx.teacher_accuracy.__getitem__)  # weakest first
    for name in names:
        path = ctx.teacher_checkpoints[name]
        base = dataclasses.replace(ctx.base, teacher_checkpoint=path)
        if path == ctx.checkpoint:
            variants = [_kd(), _wttm(ctx)]
        else:
            variants = [
                Variant(f"KD (T=4) | {name}", "kd"),
                Variant(f"WTTM | {name}", "wttm", {"gamma": ctx.setup.gamma, "beta": ctx.setup.wttm_beta}),
            ]
        found = ctx.run(variants, base)
        for method, variant in zip(("KD (T=4)", "WTTM"), variants, strict=True):
            key = f"{method} | {name}"
            groups[key] = found[variant.label]
            e = estimate(final_values(found[variant.label], "test_acc", how="last"))
            means[method][0].append(e.mean)
            means[method][1].append(e.std or 0.0)
    weakest, strongest = names[0], names[-1]
    pairs = [(f"{m} | {strongest}", f"{m} | {weakest}") for m in ("KD (T=4)", "WTTM")]
    pairs.append((f"WTTM | {strongest}", f"KD (T=4) | {strongest}"))
    return _result(
        "Q9: student accuracy against teacher strength",
        groups,
        pairs,
        teacher_accuracy=[ctx.teacher_accuracy[n] for n in names],
        teachers=names,
        students=means,
    )


def question10(ctx: QuestionContext) -> QuestionResult:
    """Question 10 / future work: other sample weights at the same average strength as WTTM's U."""
    s = ctx.setup
    if "weight_means" not in ctx.cache:
        logits = teacher_logits(ctx.checkpoint, ctx.data[0], device=s.device)
        ctx.cache["weight_means"] = weight_means(logits, s.gamma)
    means = ctx.cache["weight_means"]
    # U gets WTTM's preset beta; every other scheme the beta giving the same mean weight times beta
    reference = s.wttm_beta * means["power-sum"]
    variants = [
        _wttm(ctx) if v.options["weighting"] == "power-sum" else v
        for v in weighting_variants(s.gamma, reference, means)
    ]
    groups = ctx.run(variants)
    pairs = [(label, WEIGHTING_LABELS["none"]) for label in groups if label != WEIGHTING_LABELS["none"]]
    return _result(
        "Q10: WTTM's weight U against other sample weights (same mean strength)",
        groups,
        pairs,
        weight_means=means,
        ttm_beta=reference,
    )


def renyi_question(ctx: QuestionContext) -> QuestionResult:
    """Future work: KD plus a Renyi-entropy regulariser with its own weight and order (Eqs. 4, 15, 19)."""
    variants = [_kd()] + [kd_renyi_variant(w, a) for w, a in ctx.setup.renyi]
    groups = ctx.run(variants)
    pairs = [(label, "KD (T=4)") for label in groups if label != "KD (T=4)"]
    return _result("Future work: KD + a decoupled Renyi regulariser", groups, pairs, eq19_weight=eq19_renyi_weight())
