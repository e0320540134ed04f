"""The example runs that notebook 06 reads (``data/example_runs/``): the paper's Figs. 1-3 on the synthetic set.

``python -m wttm_core.lab.experiments.examples --out data/example_runs`` takes a resnet20 teacher trained on 5,000
synthetic images (6 epochs: the one shipped in ``data/teachers/``, trained when it does not fit) and trains (on
the CPU, in minutes on a quiet 2-core machine) resnet8 students (6 epochs on the first 2,000 images, 3 seeds) for
the three figures:

* Fig. 1 - KD (T = 4, lambda = 0.9), TTM (gamma = 1/4, beta = 36, the beta of Eq. 19 for that KD) and WTTM
  (beta = 36 / mean U, mean U of Eq. 22 measured on the training set under the teacher);
* Fig. 2 - TTM and WTTM *without* cross-entropy, the same average strength (beta = 9 and 9 / mean U);
* Fig. 3 - CE, CE with label smoothing 0.5, KD with T = 1 (and the KD T = 4 run of Fig. 1);
* ``step`` - where TTM's gain over KD comes from (Eq. 19: TTM with beta 36 is ten times KD + 10.8 Renyi):
  KD at the recipe's rate, KD at ten times that rate (TTM's step), KD + 10.8 Renyi at ten times the rate, and
  TTM (the Fig. 1 runs of KD and TTM).

All students log their metrics at T = 4 (``metric_temperature``), so D(p^t_T || q) and the Renyi entropy mean the
same thing in every run. Each run directory keeps ``config.json``, ``metrics.jsonl``, ``summary.json`` and
``diagnostics.jsonl`` (no checkpoint); ``manifest.json`` says which runs belong to which figure, the mean U used
and the teacher's accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wttm_core._checks import check_number
from wttm_core.engine import TrainConfig
from wttm_core.engine.state import write_json
from wttm_core.lab.experiments.orchestrate import ensure_teacher, load_data, resolve_path, run_variants, teacher_logits
from wttm_core.lab.experiments.variants import Variant, eq19_renyi_weight, kd_renyi_variant, weight_means
from wttm_core.presets import RECIPE, learning_rate
from wttm_core.resources import shipped
from wttm_core.runs import Run, group_runs, read_runs

__all__ = [
    "FIGURE_TEMPERATURE",
    "FIG1_BETA",
    "NOCE_BETA",
    "FALLBACK_DIR",
    "example_variants",
    "make_examples",
    "load_examples",
    "main",
]

FIGURE_TEMPERATURE = 4.0
FIG1_BETA = 36.0  # Eq. 19 with T = 4, lambda = 0.9 (the paper's Fig. 1 setting)
NOCE_BETA = 9.0  # without CE only the product beta * lr matters; 9 keeps the step size of a KD run's order
SHIPPED_DIR = "data/example_runs"  # shipped with the package (wttm_core.resources)
FALLBACK_DIR = "build/example_runs"  # where a small set is made when the shipped one is missing (e.g. on Colab)


def example_variants(mean_u: float, lr: float = 0.05) -> dict[str, list[Variant]]:
    """The variants of each figure (``fig1``, ``fig2``, ``fig3``, ``step``); Fig. 3 and ``step`` reuse Fig. 1's
    KD run (and ``step`` its TTM run). ``lr`` is the recipe's learning rate for the student."""
    check_number("mean_u", mean_u, low=0, low_open=True)
    gamma = 1.0 / FIGURE_TEMPERATURE
    kd = Variant("KD (T=4)", "kd", {"temperature": FIGURE_TEMPERATURE})
    ttm = Variant("TTM (beta=36)", "ttm", {"gamma": gamma, "beta": FIG1_BETA})
    fast = round(lr / (1.0 - RECIPE.kd_weight), 12)  # TTM's step (Eq. 19: 1 / (1 - lambda)), 0.5 not 0.5000000000000001
    return {
        "fig1": [
            kd,
            ttm,
            Variant("WTTM (beta=36/mean U)", "wttm", {"gamma": gamma, "beta": FIG1_BETA / mean_u}),
        ],
        "fig2": [
            Variant("TTM without CE", "ttm", {"gamma": gamma, "beta": NOCE_BETA, "ce_weight": 0.0}),
            Variant("WTTM without CE", "wttm-noce", {"gamma": gamma, "beta": NOCE_BETA / mean_u}),
        ],
        "fig3": [
            Variant("CE", "ce"),
            Variant("label smoothing 0.5", "ce", {"label_smoothing": 0.5}),
            kd,  # first: it keeps KD's colour, as in Fig. 1
            Variant("KD (T=1)", "kd", {"temperature": 1.0}),
        ],
        "step": [
            kd,
            Variant(f"KD (T=4) at lr {fast:g}", "kd", {"temperature": FIGURE_TEMPERATURE, "lr": fast}),
            kd_renyi_variant(eq19_renyi_weight(), gamma, label=f"KD + 10.8 Renyi at lr {fast:g}").with_lr(fast),
            ttm,
        ],
    }


def make_examples(
    out: str | Path = "data/example_runs",
    *,
    teacher_arch: str = "resnet20",
    student: str = "resnet8",
    teacher_train_size: int = 5000,
    train_size: int = 2000,
    test_size: int = 1000,
    teacher_epochs: int = 6,
    epochs: int = 6,
    seeds: Sequence[int] = (0, 1, 2),
    device: str = "cpu",
) -> dict[str, Any]:
    """Train the example runs into ``out`` and write ``manifest.json``; returns the manifest."""
    start = time.perf_counter()
    if train_size > teacher_train_size:
        raise ValueError(f"train_size ({train_size}) must not exceed teacher_train_size ({teacher_train_size})")
    train, test = load_data("synthetic", teacher_train_size, test_size)
    teacher_dir = ensure_teacher(
        teacher_arch, dataset="synthetic", epochs=teacher_epochs, data=(train, test), device=device, quiet=True
    )
    # the students see the first train_size images (the synthetic set's first n do not depend on its size)
    data = (train.subset(range(train_size)), test)
    checkpoint = teacher_dir / "checkpoint.pth"
    mean_u = weight_means(teacher_logits(checkpoint, data[0], device=device), 1.0 / FIGURE_TEMPERATURE, ["power-sum"])[
        "power-sum"
    ]
    figures = example_variants(mean_u, learning_rate(student))
    base = TrainConfig(
        arch=student,
        teacher_checkpoint=str(checkpoint),
        dataset="synthetic",
        epochs=epochs,
        device=device,
        quiet=True,
        metric_temperature=FIGURE_TEMPERATURE,
    )
    runs = run_variants(_unique_variants(figures), list(seeds), base=base, root=out, data=data)
    flags = {
        "out": out,
        "teacher": teacher_arch,
        "student": student,
        "teacher-train-size": teacher_train_size,
        "train-size": train_size,
        "test-size": test_size,
        "teacher-epochs": teacher_epochs,
        "epochs": epochs,
        "seeds": list(seeds),
        "device": device,
    }
    manifest = _manifest(flags, figures, mean_u, teacher_dir, runs, time.perf_counter() - start)
    write_json(resolve_path(out) / "manifest.json", manifest)
    return manifest


def _unique_variants(figures: dict[str, list[Variant]]) -> list[Variant]:
    """The variants of all figures, each label once (figures share runs, e.g. Fig. 1's KD in Fig. 3)."""
    unique: dict[str, Variant] = {}
    for variants in figures.values():
        for variant in variants:
            unique.setdefault(variant.label, variant)
    return list(unique.values())


def _flag(name: str, value: Any) -> str:
    """``--name value`` on a command line (a list as its items separated by spaces)."""
    return f"--{name} {' '.join(map(str, value)) if isinstance(value, list) else value}"


def _manifest(
    flags: dict[str, Any],
    figures: dict[str, list[Variant]],
    mean_u: float,
    teacher_dir: Path,
    runs: Sequence[Run],
    seconds: float,
) -> dict[str, Any]:
    """``manifest.json``: the command that made the runs (``flags``: its command-line flags), which runs belong to
    which figure, the mean U and the teacher's accuracy."""
    teacher_summary = json.loads((teacher_dir / "summary.json").read_text())
    return {
        "description": "Example runs for notebooks/06_training_dynamics.ipynb (synthetic data, CPU)",
        "command": "python -m wttm_core.lab.experiments.examples " + " ".join(_flag(k, v) for k, v in flags.items()),
        "figures": {name: [v.label for v in variants] for name, variants in figures.items()},
        "mean_u": mean_u,
        "gamma": 1.0 / FIGURE_TEMPERATURE,
        "teacher": {
            "arch": flags["teacher"],
            "epochs": flags["teacher-epochs"],
            "test_acc": teacher_summary.get("last_test_acc"),
        },
        "student": flags["student"],
        "teacher_train_size": flags["teacher-train-size"],
        "train_size": flags["train-size"],
        "test_size": flags["test-size"],
        "epochs": flags["epochs"],
        "seeds": flags["seeds"],
        "runs": [run.name for run in runs],
        "seconds": round(seconds, 1),
        "made": provenance(),
    }


def provenance() -> dict[str, Any]:
    """When, where and from which commit the example runs were made (notebook 07 compares against them)."""
    import datetime
    import os
    import platform
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        model = names[0] if names else model
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": model,
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "commit": commit,
    }


def load_examples(
    runs_dir: str | Path = "data/example_runs", *, make_if_missing: bool = True, log: Callable[[str], None] = print
) -> tuple[dict[str, Any], dict[str, list[Run]]]:
    """The runs of ``runs_dir`` by figure (``fig1``, ``fig2``, ``fig3``) and the manifest.

    A folder with ``manifest.json`` (made by :func:`make_examples`) is split by figure as the manifest says; a
    folder of other runs (e.g. notebook 05's) puts every run in every figure. When ``runs_dir`` holds no run and
    ``make_if_missing``, a small set (512 images, 2 epochs; about a minute on a CPU) is made in
    :data:`FALLBACK_DIR` first, or reused from there - only for the default ``runs_dir`` (the shipped set): any
    other folder without runs is an error that says so (a mistyped path must not silently show other runs).
    """
    root = resolve_path(runs_dir)
    if not root.is_dir() and Path(runs_dir) == Path(SHIPPED_DIR):  # not in the working folder: the shipped copy
        with contextlib.suppress(FileNotFoundError):
            root = shipped(SHIPPED_DIR)
    has_runs = root.is_dir() and any(root.rglob("metrics.jsonl"))
    if not has_runs:
        if not make_if_missing or Path(runs_dir) != Path("data/example_runs"):
            what = "it does not exist" if not root.exists() else "no metrics.jsonl below it"
            raise FileNotFoundError(
                f"runs_dir: no runs under {root} ({what}); point runs_dir at a folder of run directories, or make "
                f"example runs with `python -m {__name__}`"
            )
        root = resolve_path(FALLBACK_DIR)
        if not (root / "manifest.json").is_file():
            log(f"no runs under {runs_dir}: making a small example set in {root} (about a minute on a CPU)")
            make_examples(
                root,
                teacher_arch="resnet8",
                teacher_train_size=512,
                train_size=512,
                test_size=256,
                teacher_epochs=2,
                epochs=2,
                seeds=(0, 1),
            )
    runs = read_runs(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        labels = list(group_runs(runs))
        manifest: dict[str, Any] = {"figures": {"fig1": labels, "fig2": labels, "fig3": labels}, "runs_dir": str(root)}
        return manifest, {"fig1": runs, "fig2": runs, "fig3": runs}
    manifest = json.loads(manifest_path.read_text())
    manifest["runs_dir"] = str(root)
    by_label = group_runs(runs)
    figures = {
        name: [run for label in labels for run in by_label.get(label, [])]
        for name, labels in manifest["figures"].items()
    }
    return manifest, figures


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for :func:`make_examples`."""
    parser = argparse.ArgumentParser(
        prog="python -m wttm_core.lab.experiments.examples", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default="data/example_runs")
    parser.add_argument("--teacher", default="resnet20")
    parser.add_argument("--student", default="resnet8")
    parser.add_argument("--teacher-train-size", type=int, default=5000)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    settings = vars(parser.parse_args(argv))  # the flags' names are make_examples' keywords, but for --teacher
    out = settings.pop("out")
    settings["teacher_arch"] = settings.pop("teacher")
    manifest = make_examples(out, **settings)
    print(
        f"wrote {len(manifest['runs'])} runs to {out} in {manifest['seconds']:.0f} s "
        f"(mean U = {manifest['mean_u']:.3f}, teacher {manifest['teacher']['test_acc']:.2f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
