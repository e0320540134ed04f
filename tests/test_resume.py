"""Interrupted runs end with the numbers of uninterrupted ones: Ctrl-C mid-epoch, SIGKILL mid-epoch, resume.

Under ``--deterministic`` on the CPU every metric (losses, accuracies, entropies, divergences) and every weight
of the resumed run must equal the uninterrupted run exactly; only wall-clock timings may differ.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from cli_args import distill_argv

from wttm_core.data import load_dataset
from wttm_core.engine import TrainConfig, TrainingInterrupted, read_jsonl, train
from wttm_core.models import read_checkpoint

TIMING = ("seconds", "train_seconds", "eval_seconds", "images_per_s")


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def same_weights(a, b):
    first, second = read_checkpoint(a)["model"], read_checkpoint(b)["model"]
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_ctrl_c_mid_epoch_saves_state_and_resume_matches(tmp_path, teacher_file):
    data = load_dataset("synthetic", "train", size=128), load_dataset("synthetic", "test", size=64)

    def config(out):
        return TrainConfig(
            arch="resnet8",
            method="wttm",
            teacher_checkpoint=str(teacher_file),
            gamma=0.3,
            beta=1.5,
            train_size=128,
            test_size=64,
            batch_size=32,
            epochs=2,
            device="cpu",
            deterministic=True,
            seed=11,
            out=str(out),
            quiet=True,
        )

    reference = train(config(tmp_path / "reference"), data=data)

    def press_ctrl_c(record):  # at the end of epoch 1: the loop stops after the first step of epoch 2
        os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted, match="epoch 2, batch 1"):
        train(config(out), data=data, callbacks=[press_ctrl_c])
    state = torch.load(out / "state.pth", weights_only=True)
    assert (state["epoch"], state["batch"]) == (1, 1)  # mid-epoch: one of four steps of epoch 2 done
    assert len(read_jsonl(out / "metrics.jsonl")) == 1
    resumed = train(config(out), data=data, resume=True)
    assert without_timing(resumed["history"]) == without_timing(reference["history"])
    assert without_timing(read_jsonl(out / "metrics.jsonl")) == without_timing(reference["history"])
    assert same_weights(out / "checkpoint.pth", tmp_path / "reference" / "checkpoint.pth")


# ------------------------------------------------------------------------------------------------ subprocesses
def command(teacher, out):
    return [sys.executable, "-m", "wttm_core.cli", *distill_argv(teacher, out)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, teacher_file):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = subprocess.run(command(teacher_file, out), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def start_and_wait_for_epoch_2(cmd, out):
    """Start a run; return it once epoch 1 is committed (state.pth) and epoch 2 is well under way."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (out / "state.pth").is_file():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first = read_jsonl(out / "metrics.jsonl")[0]
    time.sleep(0.4 * first["train_seconds"])  # about 40% into epoch 2's training
    return process


def finish(cmd, out):
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # subprocess training: generous on a shared, busy machine
def test_sigkill_mid_epoch_then_resume_matches(tmp_path, teacher_file, uninterrupted):
    out = tmp_path / "killed"
    cmd = command(teacher_file, out)
    process = start_and_wait_for_epoch_2(cmd, out)
    process.kill()  # SIGKILL: no handler runs, nothing is flushed
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert len(read_jsonl(out / "metrics.jsonl")) == 1, "the kill should land inside epoch 2"
    assert torch.load(out / "state.pth", weights_only=True)["epoch"] == 1
    finish(cmd, out)
    expected = read_jsonl(uninterrupted / "metrics.jsonl")
    assert without_timing(read_jsonl(out / "metrics.jsonl")) == without_timing(expected)
    assert same_weights(out / "checkpoint.pth", uninterrupted / "checkpoint.pth")
    summary, reference = (json.loads((d / "summary.json").read_text()) for d in (out, uninterrupted))
    assert (summary["best_test_acc"], summary["last_test_acc"]) == (
        reference["best_test_acc"],
        reference["last_test_acc"],
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)  # subprocess training: generous on a shared, busy machine
def test_sigint_mid_epoch_exits_cleanly_then_resume_matches(tmp_path, teacher_file, uninterrupted):
    out = tmp_path / "interrupted"
    cmd = command(teacher_file, out)
    process = start_and_wait_for_epoch_2(cmd, out)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "interrupted at epoch" in stderr and "--resume" in stderr and "Traceback" not in stderr
    state = torch.load(out / "state.pth", weights_only=True)
    assert state["batch"] > 0  # the partial epoch was saved, not thrown away
    finish(cmd, out)
    expected = read_jsonl(uninterrupted / "metrics.jsonl")
    assert without_timing(read_jsonl(out / "metrics.jsonl")) == without_timing(expected)
    assert same_weights(out / "checkpoint.pth", uninterrupted / "checkpoint.pth")
