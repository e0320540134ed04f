"""Notebook 05's workflow: train KD / TTM / WTTM students over seeds and compare them honestly.

:func:`setup_students` turns the notebook's parameters (profile, data set, teacher, student, methods, epochs,
per-method gamma/beta, seeds) into a fully resolved :class:`StudentSetup`; :func:`run_students` trains the
teacher when asked (cached), every method for every seed through the engine, and returns the runs with a table
of best and last accuracy (mean +- std) next to the paper's numbers and Welch-test verdicts.

Profiles (sizes from :data:`wttm_core.presets.PROFILES`; the pair is this notebook's choice):

* ``smoke`` - 256 / 128 synthetic images, 1 epoch, a resnet8 teacher trained for 1 epoch, 2 seeds (CI);
* ``cpu-quick`` - 5,000 / 1,000 synthetic images, a resnet20 teacher (6 epochs) -> resnet8, 5 epochs, 3 seeds;
  resnet20 -> resnet8 has no Table 8 row, so gamma/beta are those of resnet56 -> resnet20 (same thin-ResNet
  family) and the paper's numbers shown are that pair's;
* ``gpu-paper`` - the recipe: CIFAR-100, the standard resnet56 teacher -> resnet20, 240 epochs, 3 seeds.

``python -m wttm_core.experiments.students`` runs the same workflow without Jupyter (machines without
papermill, e.g. a bare GPU box) and prints the accuracy table and the time per epoch of every method.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wttm_core._checks import check_number
from wttm_core.engine import TrainConfig
from wttm_core.engine.methods import parse_method
from wttm_core.experiments.orchestrate import (
    EpochHook,
    TeacherSource,
    ensure_teacher,
    load_data,
    parse_teacher,
    resolve_path,
    run_variants,
)
from wttm_core.experiments.stats import Comparison
from wttm_core.experiments.tables import accuracy_rows, comparisons, markdown_table
from wttm_core.experiments.variants import Variant
from wttm_core.loss_terms import PRESET_METHODS
from wttm_core.presets import get_profile, method_hyperparameters
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
    },
    "cpu-quick": {"teacher": "train:resnet20", "student": "resnet8"},
    "gpu-paper": {"teacher": "resnet56", "student": "resnet20"},
}
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
    hyper: dict[str, dict[str, float]] = field(default_factory=dict)
    hyper_source: dict[str, str] = field(default_factory=dict)
    paper_pair: tuple[str, str] = REFERENCE_PAIR
    out_dir: str = "build/runs/05_train_students"
    metric_temperature: float = 4.0
    quiet: bool = False

    def describe(self) -> str:
        """A markdown summary of the setup (shown by the notebook before training)."""
        lines = [
            f"- profile **{self.profile}**: {self.dataset} data ({self.train_size or 'all'} train / "
            f"{self.test_size or 'all'} test images), {self.epochs} epoch(s), seeds {self.seeds}, device {self.device}",
            f"- teacher: {self.teacher.describe()} ({self.teacher_arch})"
            + (f", {self.teacher_epochs} epoch(s)" if self.teacher.kind == "train" else ""),
            f"- student: {self.student}; methods: {', '.join(self.methods)}",
        ]
        for method, values in self.hyper.items():
            lines.append(
                f"- {method}: gamma {values['gamma']:g}, beta {values['beta']:g} ({self.hyper_source[method]})"
            )
        lines.append(f"- paper numbers shown for: {self.paper_pair[0]} -> {self.paper_pair[1]}")
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
    methods: Sequence[str] = ("kd", "ttm", "wttm"),
    epochs: int | None = None,
    seeds: Sequence[int] | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    gamma: float | Mapping[str, float] | None = None,
    beta: float | Mapping[str, float] | None = None,
    out_dir: str | None = None,
    quiet: bool = False,
) -> StudentSetup:
    """Resolve notebook 05's parameters; ``None`` means "the profile's value" (gamma/beta: the presets).

    ``gamma``/``beta`` are one number for every TTM-like method or a dict ``{method: value}``.
    """
    profile = "cpu-quick" if profile == "default" else profile  # `make notebooks` passes "default"
    prof = get_profile(profile)
    pair = PROFILE_PAIRS[profile]
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods must be a non-empty list of method names, got {methods!r}")
    for method in methods:
        parse_method(method)
    source = parse_teacher(teacher or pair["teacher"])
    teacher_arch = _teacher_arch(source)
    student = student or pair["student"]
    from wttm_core.models import MODEL_NAMES

    if student not in MODEL_NAMES:
        raise ValueError(f"student: unknown architecture {student!r} (choose from {MODEL_NAMES})")
    dataset = dataset or prof.dataset

    def default_size(key: str) -> int | None:  # profile sizes apply to the profile's own data set only
        return pair.get(key, getattr(prof, key)) if dataset == prof.dataset else None

    seeds = list(seeds if seeds is not None else pair.get("seeds", prof.seeds))
    setup = StudentSetup(
        profile=profile,
        dataset=dataset,
        data_dir=str(resolve_path(data_dir)),
        device=device or prof.device,
        teacher=source,
        teacher_arch=teacher_arch,
        teacher_epochs=int(teacher_epochs or pair.get("teacher_epochs", prof.teacher_epochs)),
        student=student,
        methods=list(methods),
        epochs=int(epochs or prof.epochs),
        train_size=train_size if train_size is not None else default_size("train_size"),
        test_size=test_size if test_size is not None else default_size("test_size"),
        seeds=seeds,
        out_dir=out_dir or f"build/runs/05_train_students/{profile}",  # profiles never overwrite each other
        quiet=quiet,
    )
    from wttm_core.paper import paper_results_for

    if paper_results_for(teacher_arch, student):
        setup.paper_pair = (teacher_arch, student)
    for method in methods:
        base = parse_method(method).base
        if base not in _TUNED:
            continue
        values, origin = _hyperparameters(base, teacher_arch, student)
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
    return setup


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

    def table(self) -> str:
        """Markdown: best and last accuracy (mean +- std over seeds) next to the paper's number."""
        paper_header = f"paper ({self.setup.paper_pair[0]} -> {self.setup.paper_pair[1]}, CIFAR-100)"
        return markdown_table(
            self.rows,
            [
                ("label", "method"),
                ("runs", "seeds"),
                ("best", "best acc. (%)"),
                ("last", "last acc. (%)"),
                ("paper", paper_header),
                ("seconds_per_epoch", "s / epoch"),
            ],
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
    data, base = context.data, context.base
    runs = run_variants(
        _variants(setup), setup.seeds, base=base, root=setup.out_dir, data=data, on_epoch=on_epoch, reuse=reuse, log=log
    )
    groups = group_runs(runs)
    from wttm_core.paper import paper_results_for

    rows = accuracy_rows(groups, paper=paper_results_for(*setup.paper_pair))
    for row in rows:
        group = groups[row["label"]]
        per_epoch = [r.summary["train_seconds"] / max(r.summary["epochs_completed"], 1) for r in group if r.summary]
        row["seconds_per_epoch"] = round(sum(per_epoch) / len(per_epoch), 2) if per_epoch else None
        row["method"] = group[0].config.get("method")
        row["gamma"] = group[0].config.get("gamma")
        row["beta"] = group[0].config.get("beta")
    verdicts: list[Comparison] = []
    if "KD" in groups and len(groups) > 1:
        verdicts += comparisons(groups, "KD")
    if {"TTM", "WTTM"} <= set(groups):
        verdicts += comparisons({"WTTM": groups["WTTM"], "TTM": groups["TTM"]}, "TTM")
    return StudentResults(
        setup,
        context.teacher_dir,
        context.teacher_checkpoint,
        runs,
        groups,
        rows,
        verdicts,
        time.perf_counter() - start,
    )


def _teacher_epoch_seconds(context: StudentContext) -> list[float]:
    """Training seconds of each epoch of a teacher trained here (``[]`` for a given checkpoint)."""
    if context.teacher_dir is None:
        return []
    return [round(row["train_seconds"], 2) for row in read_run(context.teacher_dir).metrics]


def timing_rows(results: StudentResults) -> list[dict[str, Any]]:
    """Per method: training seconds of the first epoch (warm-up included) and the mean of the later ones, and
    images/s of the later epochs (all epochs when there is only one), averaged over seeds."""
    rows = []
    for label, runs in results.groups.items():
        first = [r.metrics[0]["train_seconds"] for r in runs if r.metrics]
        later = [m for r in runs for m in (r.metrics[1:] or r.metrics)]
        rows.append(
            {
                "label": label,
                "runs": len(runs),
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
        "gamma",
        "beta",
        "runs",
        "best_mean",
        "best_std",
        "last_mean",
        "last_std",
        "paper_accuracy",
        "seconds_per_epoch",
    )
    return [{key: row.get(key) for key in keep} for row in results.rows]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.experiments.students --profile gpu-paper --dataset synthetic --epochs 3 ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m wttm_core.experiments.students",
        description="Notebook 05 without Jupyter: train KD/TTM/WTTM students.",
    )
    parser.add_argument("--profile", default="cpu-quick", choices=sorted(PROFILE_PAIRS))
    parser.add_argument("--dataset", choices=("synthetic", "cifar100"))
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device")
    parser.add_argument("--teacher", help="train:<arch>, a checkpoint path or a standard teacher name")
    parser.add_argument("--teacher-epochs", type=int)
    parser.add_argument("--student")
    parser.add_argument("--methods", nargs="+", default=["kd", "ttm", "wttm"])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--out", help="runs folder (default build/runs/05_train_students/<profile>)")
    parser.add_argument("--json", help="also write the table and timings to this JSON file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        setup = setup_students(
            args.profile,
            dataset=args.dataset,
            data_dir=args.data_dir,
            device=args.device,
            teacher=args.teacher,
            teacher_epochs=args.teacher_epochs,
            student=args.student,
            methods=args.methods,
            epochs=args.epochs,
            seeds=args.seeds,
            train_size=args.train_size,
            test_size=args.test_size,
            out_dir=args.out,
            quiet=args.quiet,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"students: {error}", file=sys.stderr)
        return 2
    print(setup.describe())
    context = prepare_students(setup)
    teacher_epochs = _teacher_epoch_seconds(context)
    if teacher_epochs:
        print(f"teacher: {len(teacher_epochs)} epoch(s), training seconds per epoch {teacher_epochs}")
    results = run_students(setup, context)
    print()
    print(results.table())
    for verdict in results.verdicts:
        print("-", verdict.sentence())
    print("\ntime per epoch (training only; the first epoch includes warm-up):")
    print(
        markdown_table(
            timing_rows(results),
            [
                ("label", "method"),
                ("runs", "runs"),
                ("first_epoch_s", "first epoch (s)"),
                ("later_epoch_s", "later epochs, mean (s)"),
                ("images_per_s", "images/s (later epochs)"),
            ],
        )
    )
    print(f"\ntotal {results.seconds:.0f} s")
    if args.json:
        from wttm_core.engine.state import write_json

        payload = {
            "setup": {k: v for k, v in asdict(setup).items() if k != "teacher"} | {"teacher": setup.teacher.describe()},
            "device": results.runs[0].config.get("environment", {}),
            "rows": results.rows,
            "timing": timing_rows(results),
            "teacher_epoch_seconds": teacher_epochs,
            "teacher_test_acc": context.teacher_accuracy,
            "epochs": {
                r.name: [
                    {k: m.get(k) for k in ("epoch", "train_seconds", "images_per_s", "test_acc")} for m in r.metrics
                ]
                for r in results.runs
            },
        }
        write_json(Path(args.json), json.loads(json.dumps(payload, default=str)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
