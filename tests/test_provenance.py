"""What a run records about how it was made, and how its test accuracy is measured.

``config.json`` records the package version, the git commit (when there is one), torch, the device, the thread
count and the evaluation precision; test-set evaluation is float32 by default even when training runs under bf16
autocast, and a run directory written before the evaluation precision was recorded still resumes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch
from run_configs import tiny_run_config

from wttm_core.data import load_dataset
from wttm_core.engine import prepare, train
from wttm_core.engine.config import git_commit
from wttm_core.engine.metrics import predict_logits


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic", "train", size=64), load_dataset("synthetic", "test", size=64)


def config(out, teacher_file, **changes):
    base = dict(method="kd", epochs=1, amp="bf16", channels_last=False)
    return tiny_run_config(teacher_file, out, **{**base, **changes})


def test_config_json_records_provenance(tmp_path, tiny, teacher_file):
    train(config(tmp_path / "run", teacher_file), data=tiny)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["eval_precision"] == "fp32" and record["amp"] == "bf16"
    environment = record["environment"]
    for key in ("wttm", "git_commit", "torch", "device", "cpu_threads", "eval_precision"):
        assert key in environment, key
    assert environment["torch"] == torch.__version__ and environment["device"] == "cpu"
    assert environment["cpu_threads"] == torch.get_num_threads() and environment["eval_precision"] == "fp32"
    commit = environment["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)


def test_git_commit_is_read_without_git_and_is_none_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) is None
    here = git_commit()
    if here is not None and shutil.which("git"):
        from pathlib import Path

        root = Path(__file__).resolve().parents[1]
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert done.returncode != 0 or here == done.stdout.strip()


@pytest.mark.parametrize(("eval_precision", "amp"), [(None, "off"), ("fp32", "off"), ("amp", "bf16")])
def test_evaluation_is_float32_by_default(tiny, teacher_file, eval_precision, amp):
    trainer = prepare(config(None, teacher_file, eval_precision=eval_precision), data=tiny)
    trainer.fit(handle_sigint=False)
    logits, labels = trainer.last_test_logits()
    expected, _ = predict_logits(trainer.student, trainer.test_loader, device="cpu", amp=amp)
    assert logits.dtype == torch.float32 and torch.equal(logits, expected)
    if amp == "off":
        bf16, _ = predict_logits(trainer.student, trainer.test_loader, device="cpu", amp="bf16")
        assert not torch.equal(logits, bf16)  # bf16 evaluation would have given other numbers
    assert trainer.cfg.eval_precision == (eval_precision or "fp32")


def test_a_run_written_before_eval_precision_was_recorded_resumes_as_it_was_made(tmp_path, tiny, teacher_file):
    out = tmp_path / "old"
    train(config(out, teacher_file, epochs=2), data=tiny)
    path = out / "config.json"
    old = json.loads(path.read_text())
    del old["eval_precision"]
    for key in ("git_commit", "device", "eval_precision"):
        del old["environment"][key]
    path.write_text(json.dumps(old))  # as the code wrote it before this change, in both files
    state = torch.load(out / "state.pth", weights_only=True)
    del state["config"]["eval_precision"]
    torch.save(state, out / "state.pth")
    trainer = prepare(config(out, teacher_file, epochs=2), data=tiny)
    summary = trainer.fit(resume=True, handle_sigint=False)
    assert summary["complete"] and trainer.cfg.eval_precision == "amp"  # evaluated as the run was made
