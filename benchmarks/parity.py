"""Accuracy parity of the fast path's bf16 training against float32 training, paired by seed (issue 16).

Both arms train the same students through the engine, seed by seed (the same initialisation and data order per
seed), differing only in the training precision: ``amp="bf16"`` with channels_last (the CPU fast path's default
where the processor has bf16 instructions) against ``amp="off"`` (float32, NCHW). The teacher is the shipped
resnet20 (``data/teachers/``; its logits are computed in each arm's precision) and every test evaluation is
float32 (``eval_precision="fp32"``), so the difference is the training precision's alone. Each arm trains its seeds
as one cohort. The paired differences (bf16 - float32, last-epoch test accuracy) give a mean and a paired-t 95 %
interval (:func:`wttm_core.lab.experiments.stats.compare`).

    OMP_NUM_THREADS=1 python benchmarks/parity.py --seeds 0 1 2 3 4 5 6 7 --json build/parity.json

Measured numbers: ``benchmarks/RESULTS.md`` (section "Accuracy parity: bf16 against float32 training, paired").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from wttm_core.engine import TrainConfig
from wttm_core.engine.runtime import default_amp
from wttm_core.lab.experiments.orchestrate import ensure_teacher, load_data, run_variants
from wttm_core.lab.experiments.stats import compare
from wttm_core.lab.experiments.variants import Variant
from wttm_core.lab.shipped_teacher import SHIPPED_TEACHERS
from wttm_core.paper import method_hyperparameters

ARMS = {"bf16": {"amp": "bf16", "channels_last": True}, "fp32": {"amp": "off", "channels_last": False}}


def run_parity(
    seeds: list[int], *, method: str, train_size: int, test_size: int, epochs: int, root: Path
) -> dict[str, Any]:
    """Train both arms for every seed and return the per-seed accuracies and the paired comparison."""
    teacher = SHIPPED_TEACHERS["synthetic-resnet20-n5000-e6-s0"]
    train, test = load_data("synthetic", teacher.train_size, max(test_size, teacher.test_size))
    teacher_dir = ensure_teacher(
        teacher.arch,
        dataset="synthetic",
        epochs=teacher.epochs,
        data=(train, test.subset(range(teacher.test_size))),
        device="cpu",
        quiet=True,
    )
    data = (train.subset(range(train_size)), test.subset(range(test_size)))
    # resnet20 -> resnet8 has no Table 8 row: the presets of resnet56 -> resnet20, as notebook 05 uses
    preset = method_hyperparameters(method, "resnet56", "resnet20")
    variant = Variant(method.upper(), method, {k: preset[k] for k in ("gamma", "beta") if preset[k] is not None})
    accuracy: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for arm, options in ARMS.items():
        base = TrainConfig(
            arch="resnet8",
            teacher_checkpoint=str(teacher_dir / "checkpoint.pth"),
            dataset="synthetic",
            epochs=epochs,
            device="cpu",
            quiet=True,
            eval_precision="fp32",
            **options,
        )
        start = time.perf_counter()
        runs = run_variants([variant], seeds, base=base, root=root / arm, data=data)
        seconds[arm] = round(time.perf_counter() - start, 1)
        accuracy[arm] = [float(run.summary["last_test_acc"]) for run in runs]
    result = compare(
        accuracy["bf16"], accuracy["fp32"], label_a="bf16", label_b="float32", paired=True, test_size=test_size
    )
    return {
        "method": method,
        "student": "resnet8",
        "teacher": teacher.path,
        "train_size": train_size,
        "test_size": test_size,
        "epochs": epochs,
        "seeds": seeds,
        "gamma_beta": variant.options,
        "accuracy": accuracy,
        "seconds": seconds,
        "difference": result.difference,
        "diff_std": result.diff_std,
        "ci95": list(result.ci) if result.ci is not None else None,
        "sentence": result.sentence(),
        "threads": torch.get_num_threads(),
        "cpu_bf16_default": default_amp("cpu"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--method", default="wttm")
    parser.add_argument("--train-size", type=int, default=1500)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path("build/parity"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run_parity(
        args.seeds,
        method=args.method,
        train_size=args.train_size,
        test_size=args.test_size,
        epochs=args.epochs,
        root=args.root,
    )
    print("| seed | float32 | bf16 | difference |\n|---:|---:|---:|---:|")
    for seed, a, b in zip(result["seeds"], result["accuracy"]["fp32"], result["accuracy"]["bf16"], strict=True):
        print(f"| {seed} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    print(result["sentence"], f"(seconds per arm: {result['seconds']})")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
