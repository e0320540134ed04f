"""Cohorts: students trained together on one teacher pass compute exactly what they compute alone.

On the CPU in float32 with ``deterministic=True`` every metric and every weight of a student trained in a cohort
equals the same student trained alone with the same seed (to 1e-6), whether it shares its batches with other
students (same seed) or only the teacher's forward pass (another seed). Interrupting and resuming the cohort
gives the same numbers; a diverging student stops alone; a cohort too large for the machine is refused.
"""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from run_configs import tiny_run_config

from wttm_core.data import load_dataset
from wttm_core.engine import (
    CohortTooLarge,
    TrainingInterrupted,
    read_jsonl,
    resolve_config,
    train,
    train_cohort,
)
from wttm_core.engine.distributed import DistContext
from wttm_core.engine.shared import Shared
from wttm_core.models import read_checkpoint

TIMING = ("seconds", "train_seconds", "eval_seconds", "images_per_s", "cohort_students")  # who shared the time


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic", "train", size=96), load_dataset("synthetic", "test", size=64)


def student(teacher_file, out, **changes):
    base = dict(method="wttm", gamma=0.3, beta=1.5, epochs=2, amp="off", deterministic=True, seed=3)
    return tiny_run_config(teacher_file, out, **{**base, **changes})


def close_rows(a, b, tolerance=1e-6):
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            if key in TIMING or row_a[key] is None:
                assert key in TIMING or row_b[key] is None, key
                continue
            assert math.isclose(row_a[key], row_b[key], rel_tol=tolerance, abs_tol=tolerance), key


def close_weights(a, b, tolerance=1e-6):
    first, second = read_checkpoint(a)["model"], read_checkpoint(b)["model"]
    assert first.keys() == second.keys()
    for key in first:
        assert torch.allclose(first[key].double(), second[key].double(), rtol=tolerance, atol=tolerance), key


CHANGES = (
    {"method": "kd"},  # same seed as the next two: the same batches
    {"method": "wttm", "lr": 0.1},
    {"method": "ce", "arch": "resnet14"},  # another architecture
    {"method": "ttm", "seed": 4},  # another seed: its own batches, the teacher's pass shared
)


def test_a_student_in_a_cohort_equals_the_student_alone(tmp_path, tiny, teacher_file):
    configs = [student(teacher_file, tmp_path / f"c{i}", **c) for i, c in enumerate(CHANGES)]
    seen = []
    summaries = train_cohort(
        configs, data=tiny, callbacks=[lambda i, r: seen.append((i, r["epoch"]))], manifest=tmp_path / "cohort.json"
    )
    assert sorted(seen) == [(i, e) for i in range(4) for e in (1, 2)]
    manifest = json.loads((tmp_path / "cohort.json").read_text())
    assert [s["out"] for s in manifest["students"]] == ["c0", "c1", "c2", "c3"]
    for i, changes in enumerate(CHANGES):
        alone = train(student(teacher_file, tmp_path / f"a{i}", **changes), data=tiny)
        close_rows(summaries[i]["history"], alone["history"])
        close_rows(read_jsonl(tmp_path / f"c{i}" / "metrics.jsonl"), alone["history"])
        close_weights(tmp_path / f"c{i}" / "checkpoint.pth", tmp_path / f"a{i}" / "checkpoint.pth")
        config = json.loads((tmp_path / f"c{i}" / "config.json").read_text())
        assert config["method"] == changes["method"] and summaries[i]["complete"]


@pytest.mark.slow
def test_a_cohort_resumes_after_ctrl_c(tmp_path, tiny, teacher_file):
    def configs(prefix):
        return [student(teacher_file, tmp_path / f"{prefix}{i}", **c) for i, c in enumerate(CHANGES[:2] + CHANGES[3:])]

    reference = train_cohort(configs("r"), data=tiny)

    def press_ctrl_c(index, record):  # after the last student's first epoch: stop in the first step of epoch 2
        if index == 2 and record["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="epoch 2, batch 1"):
        train_cohort(configs("i"), data=tiny, callbacks=[press_ctrl_c])
    resumed = train_cohort(configs("i"), data=tiny, resume=True)
    for i in range(3):
        close_rows(resumed[i]["history"], reference[i]["history"], tolerance=0.0)
        close_weights(tmp_path / f"i{i}" / "checkpoint.pth", tmp_path / f"r{i}" / "checkpoint.pth", tolerance=0.0)


def test_a_diverging_student_stops_alone(tmp_path, tiny, teacher_file):
    configs = [student(teacher_file, tmp_path / "ok", method="kd"), student(teacher_file, tmp_path / "bad", lr=1e30)]
    summaries = train_cohort(configs, data=tiny)
    assert summaries[0]["complete"] and "diverged" not in summaries[0]
    assert not summaries[1]["complete"] and "not finite" in summaries[1]["diverged"]
    saved = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert saved["diverged"] == summaries[1]["diverged"]


def test_a_cohort_too_large_is_refused_before_it_starts(tmp_path, tiny, teacher_file, monkeypatch):
    import wttm_core.engine.cohort as cohort

    monkeypatch.setattr(cohort, "available_memory", lambda device: 2**20)
    configs = [student(teacher_file, tmp_path / f"s{i}", seed=i) for i in range(3)]
    with pytest.raises(
        CohortTooLarge, match=r"cohort: 3 students need about [0-9.]+ GiB .* 0\.00 GiB of available RAM"
    ):
        train_cohort(configs, data=tiny)
    assert not any(tmp_path.iterdir())
    resolved = [resolve_config(c) for c in configs]
    shared = Shared(resolved[0], DistContext(), tiny)
    assert cohort.estimate_memory(resolved, shared) > 3 * 3 * 4 * 83_892  # weights, gradients, momentum at least


def test_cohort_configs_must_share_the_teacher_and_data(tmp_path, tiny, teacher_file):
    with pytest.raises(ValueError, match="batch_size: the students of a cohort share it"):
        train_cohort([student(teacher_file, None), student(teacher_file, None, batch_size=16)], data=tiny)
    with pytest.raises(ValueError, match="loader: a cohort of several students needs the device loader"):
        reference = [student(teacher_file, None, loader="reference"), student(teacher_file, None, loader="reference")]
        train_cohort(reference, data=tiny)
    with pytest.raises(ValueError, match="distinct output directories"):
        train_cohort([student(teacher_file, tmp_path / "x"), student(teacher_file, tmp_path / "x")], data=tiny)


def test_the_command_line_trains_the_product_of_its_lists_as_one_cohort(tmp_path, capsys, teacher_file):
    from wttm_core.cli import main

    out = tmp_path / "cohort"
    argv = ["distill", "--student", "resnet8", "--teacher-checkpoint", str(teacher_file), "--gamma", "0.3"]
    argv += ["--beta", "1.5", "--dataset", "synthetic", "--train-size", "64", "--test-size", "32"]
    argv += ["--batch-size", "32", "--device", "cpu", "--epochs", "1", "--quiet"]
    assert main([*argv, "--method", "kd,wttm", "--seed", "0,1", "--lr", "0.05", "--out", str(out)]) == 0
    names = ["kd-s0", "kd-s1", "wttm-s0", "wttm-s1"]
    manifest = json.loads((out / "cohort.json").read_text())
    assert [s["out"] for s in manifest["students"]] == names
    assert sorted(p.name for p in out.iterdir()) == ["cohort.json", *names]
    for name in names:
        config = json.loads((out / name / "config.json").read_text())
        assert (config["method"], config["seed"], config["lr"]) == (name[:-3], int(name[-1]), 0.05)
        assert json.loads((out / name / "summary.json").read_text())["complete"]
    assert main([*argv, "--method", "kd,wttm", "--seed", "0,1", "--lr", "0.05", "--out", str(out), "--resume"]) == 0
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--seed", "0,x", "--out", str(tmp_path / "never")])
    assert exit_.value.code == 2 and "--seed" in capsys.readouterr().err and not (tmp_path / "never").exists()
