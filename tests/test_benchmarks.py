"""The benchmark scripts run end to end on tiny settings, print their tables and check what they time."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_loss_benchmark_prints_every_shape_and_loss(capsys):
    losses = _load("losses")
    losses.main(["--repeats", "1", "--min-time", "0"])  # also asserts ours == reference on every cell
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] != []]
    rows = [row for row in rows if row[0].isdigit()]  # "N x K loss ref ours ratio [vs ttm]"
    shapes = [(int(n), int(k)) for n, k in ((row[0], row[2]) for row in rows)]
    assert sorted(set(shapes)) == sorted(losses.SHAPES) and len(rows) == 3 * len(losses.SHAPES)
    assert [row[3] for row in rows] == ["kd", "ttm", "wttm"] * len(losses.SHAPES)
    assert all(float(row[4]) > 0 and float(row[5]) > 0 and row[6].endswith("x") for row in rows)
    assert [len(row) for row in rows] == [7, 7, 8] * len(losses.SHAPES)  # WTTM / TTM on the wttm rows


@pytest.mark.slow
def test_train_step_benchmark_times_three_pipelines(tmp_path, capsys):
    train_step = _load("train_step")
    out = tmp_path / "steps.json"
    argv = ["--device", "cpu", "--steps", "1", "--warmup", "0", "--train-size", "128", "--test-size", "64"]
    assert train_step.main([*argv, "--pairs", "resnet56->resnet20", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["pipeline"] for r in results] == ["reference", "optimised", "ceiling"]
    assert all(r["pair"] == "resnet56 -> resnet20" and r["images_per_s"] > 0 for r in results)
    assert results[0]["amp"] == "off" and results[0]["loader"] == "DataLoader+PIL"
    assert "of ceiling" in capsys.readouterr().out


@pytest.mark.slow
def test_train_step_benchmark_epoch_mode(tmp_path):
    train_step = _load("train_step")
    out = tmp_path / "epochs.json"
    argv = ["--device", "cpu", "--epoch-mode", "--epochs", "1", "--steps", "1", "--train-size", "128"]
    assert train_step.main([*argv, "--test-size", "64", "--pairs", "resnet56->resnet20", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [row["pipeline"].split()[0] for row in rows] == ["reference", "optimised", "ceiling"]
    assert all(row["train_seconds"] > 0 and row["images"] == 128 for row in rows)


@pytest.mark.slow
def test_cohort_benchmark_times_both_variants(tmp_path, capsys):
    cohort = _load("cohort")
    out = tmp_path / "cohort.json"
    argv = ["--settings", "20", "--steps", "1", "--warmup", "0", "--rounds", "1", "--batch-size", "16", "--stacked"]
    assert cohort.main([*argv, "--train-size", "64", "--amp", "off", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    [result] = payload["results"]
    assert result["students"] == 9 and result["teacher"] == "resnet20" and len(result["rounds"]) == 1
    assert result["sequential_images_per_s"] > 0 and result["cohort_images_per_s"] > 0
    assert payload["machine"]["threads"] >= 1 and "torch" in payload["machine"]
    assert "resnet20 -> 9 x resnet8" in capsys.readouterr().out
    assert result["goal"] == 1.4 and set(payload["load_average"]) == {"start", "end"} and payload["seconds"] > 0
    assert result["stacked_images_per_s"] > 0 and len(result["rounds"][0]) == 3


def test_the_stacked_prototype_equals_the_looped_cohort_step(teacher_file):
    """Weights, BatchNorm statistics and momentum after two steps of students of one architecture (three methods,
    three learning rates): the stacked prototype (vmap) against the engine's looped cohort step, float32."""
    import torch

    from wttm_core.data import load_dataset
    from wttm_core.engine import TrainConfig, prepare_cohort, speed

    cohort = _load("cohort")
    data = load_dataset("synthetic", "train", size=64), load_dataset("synthetic", "test", size=32)
    students = (("kd", 0.01), ("ttm", 0.005), ("wttm", 0.02))

    def configs():
        common = dict(teacher_checkpoint=str(teacher_file), teacher_arch="resnet8", batch_size=16, device="cpu")
        return [
            TrainConfig(arch="resnet8", method=m, lr=lr, amp="off", quiet=True, gamma=0.25, beta=2.0, **common)
            for m, lr in students
        ]

    looped, other = prepare_cohort(configs(), data=data), prepare_cohort(configs(), data=data)
    stacked = cohort.StackedStep(other.members)
    for member in looped.members:
        member.student.train()
    for images, labels in list(looped.members[0].train_loader)[:2]:
        images, labels = speed.to_device(images, labels, looped.shared.cfg)
        looped.train_step(images, labels)
        stacked(images, labels, other.shared.teacher_logits(images))
    for index, member in enumerate(looped.members):
        for name, param in member.student.named_parameters():
            assert torch.allclose(param, stacked.params[name][index], rtol=1e-4, atol=1e-6), name
            momentum = member.optimizer.state[param]["momentum_buffer"]
            assert torch.allclose(momentum, stacked.momentum_buffers[name][index], rtol=1e-4, atol=1e-6), name
        for name, buffer in member.student.named_buffers():
            assert torch.allclose(buffer.double(), stacked.buffers[name][index].double(), rtol=1e-4, atol=1e-6), name


@pytest.mark.slow
def test_parity_benchmark_pairs_bf16_and_float32_by_seed(tmp_path, monkeypatch):
    from wttm_core.lab.experiments.orchestrate import WORK_DIR_ENV

    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path))  # the shipped teacher is installed under tmp_path/build
    parity = _load("parity")
    result = parity.run_parity([0, 1], method="wttm", train_size=64, test_size=64, epochs=1, root=tmp_path / "p")
    assert result["seeds"] == [0, 1] and set(result["accuracy"]) == {"bf16", "fp32"}
    runs = sorted((tmp_path / "p").glob("*/*/config.json"))
    configs = [json.loads(path.read_text()) for path in runs]
    assert {(c["amp"], c["eval_precision"]) for c in configs} == {("bf16", "fp32"), ("off", "fp32")}
    differences = [b - a for a, b in zip(result["accuracy"]["fp32"], result["accuracy"]["bf16"], strict=True)]
    assert result["difference"] == pytest.approx(sum(differences) / 2)
