"""The training engine: methods (Eqs. 1, 2, 23, 24), configuration, metrics, run files, a few tiny runs."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import wttm_core as W
from wttm_core.data import load_dataset
from wttm_core.engine import TrainConfig, build_method, parse_method, read_jsonl, resolve_config, train
from wttm_core.engine.distributed import DistContext, GlobalBatchNorm2d, convert_sync_batchnorm, loss_scale, shard
from wttm_core.engine.methods import sample_weights
from wttm_core.engine.metrics import TrainMeter, evaluation_sums, finish_evaluation
from wttm_core.engine.state import (
    RunDirectoryError,
    capture_rng,
    check_run_directory,
    restore_rng,
)
from wttm_core.models import build_model, load_checkpoint, read_checkpoint

REQUIRED_KEYS = {
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_acc",
    "test_loss",
    "best_test_acc",
    "student_entropy",
    "renyi_entropy",
    "kl_transformed_teacher",
    "kd_divergence",
    "weight_mean",
    "weight_std",
    "teacher_test_acc",
    "images_per_s",
    "seconds",
}


def logits_pair(n=16, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    student, teacher = torch.randn(n, k, generator=g) * 3, torch.randn(n, k, generator=g) * 5
    return student, teacher, torch.randint(0, k, (n,), generator=g)


# ------------------------------------------------------------------------------------------------ methods
def test_parse_method():
    assert parse_method("wttm").base == "wttm" and parse_method("wttm").extras == ()
    spec = parse_method("wttm + 0.8*kd")
    assert spec.base == "wttm" and spec.extras == ((0.8, "kd"),)
    assert parse_method("kd+2*renyi").extras == ((2.0, "renyi"),)
    assert parse_method("ce+1e-1*wttm-noce").extras == ((0.1, "wttm"),)
    for bad in ("xkd", "0.5*wttm", "wttm+ce", "wttm+wttm", "kd+xyz", "", "wttm+", "wttm-noce+wttm"):
        with pytest.raises(ValueError, match="method"):
            parse_method(bad)
    with pytest.raises(TypeError, match="method"):
        parse_method(3)  # type: ignore[arg-type]


def test_kd_is_eq1():
    z, v, y = logits_pair()
    out = build_method("kd")(z, v, y)
    expected = 0.1 * F.cross_entropy(z, y) + 0.9 * 16 * F.kl_div(
        F.log_softmax(z / 4, -1), F.log_softmax(v / 4, -1), reduction="batchmean", log_target=True
    )
    assert torch.allclose(out.total, expected, atol=1e-5)
    assert set(out.parts) == {"ce", "kd"}


def test_ttm_wttm_and_noce_are_eqs_2_and_23():
    z, v, y = logits_pair(seed=1)
    gamma, beta = 0.3, 7.0
    log_pt = F.log_softmax(gamma * v, -1)
    kl = (log_pt.exp() * (log_pt - F.log_softmax(z, -1))).sum(-1)
    u = torch.softmax(v, -1).pow(gamma).sum(-1)
    ttm = build_method("ttm", gamma=gamma, beta=beta)(z, v, y)
    assert torch.allclose(ttm.total, F.cross_entropy(z, y) + beta * kl.mean(), atol=1e-5)
    wttm = build_method("wttm", gamma=gamma, beta=beta)(z, v, y)
    assert torch.allclose(wttm.parts["wttm"], beta * (u * kl).mean(), atol=1e-5)
    noce = build_method("wttm-noce", gamma=gamma, beta=beta)(z, v, y)
    assert set(noce.parts) == {"wttm"} and torch.allclose(noce.total, wttm.parts["wttm"])


def test_sum_of_methods_is_eq24():
    z, v, y = logits_pair(seed=2)
    method = build_method("wttm+0.8*kd", gamma=0.2, beta=3.0)
    out = method(z, v, y)
    assert method.terms == {"ce": 1.0, "wttm": 3.0, "kd": 0.8}
    assert torch.allclose(out.parts["kd"], 0.8 * W.kd_loss(z, v, 4.0))
    assert torch.allclose(out.total, sum(out.parts.values()))
    assert method.describe() == "1*ce + 3*wttm + 0.8*kd"


def test_renyi_term_and_label_smoothing():
    z, v, y = logits_pair(seed=3)
    out = build_method("kd+2*renyi", temperature=2.0)(z, v, y)
    assert torch.allclose(out.parts["renyi"], -2 * W.renyi_entropy(torch.softmax(z, -1), 0.5).mean())
    smooth = build_method("ce", label_smoothing=0.5)(z, None, y)
    assert torch.allclose(smooth.total, F.cross_entropy(z, y, label_smoothing=0.5))


def test_weightings():
    z, v, y = logits_pair(seed=4)
    ttm = build_method("ttm", gamma=0.25, beta=2.0)(z, v, y)
    none = build_method("wttm", gamma=0.25, beta=2.0, weighting="none")(z, v, y)
    assert torch.allclose(ttm.total, none.total, atol=1e-6)
    assert torch.allclose(sample_weights(v, 0.25, "power-sum-normalised").mean(), torch.tensor(1.0))
    entropy = sample_weights(v, 0.25, "teacher-entropy")
    assert torch.allclose(entropy, W.shannon_entropy(torch.softmax(0.25 * v, -1)))
    one_minus_max = sample_weights(v, 0.25, "one-minus-max")
    assert bool(((one_minus_max >= 0) & (one_minus_max < 1)).all())
    with pytest.raises(ValueError, match="weighting"):
        build_method("wttm", gamma=0.1, beta=1.0, weighting="softmax")


def test_method_validation():
    z, v, y = logits_pair()
    with pytest.raises(ValueError, match="gamma"):
        build_method("wttm")
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="gamma"):
            build_method("wttm", gamma=bad, beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        build_method("ttm", gamma=0.1, beta=0.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        build_method("kd")(z, None, y)
    assert not build_method("ce").needs_teacher and build_method("ce+kd").needs_teacher


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 0.95), st.floats(0.1, 100.0), st.integers(0, 1000))
def test_parts_always_sum_to_total(gamma, beta, seed):
    z, v, y = logits_pair(seed=seed)
    out = build_method("wttm+0.5*ttm+0.3*kd", gamma=gamma, beta=beta)(z, v, y)
    assert torch.allclose(out.total, sum(out.parts.values()), rtol=1e-6)
    assert out.total.dtype == torch.float32


def test_half_precision_logits_give_float32_losses():
    z, v, y = logits_pair()
    out = build_method("wttm", gamma=0.3, beta=1.5)(z.bfloat16(), v.bfloat16(), y)
    assert all(p.dtype == torch.float32 for p in out.parts.values())


# ------------------------------------------------------------------------------------------------ config
@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in a temporary directory holding a (content-free) checkpoint file ``t.pth``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.pth").write_bytes(b"")


def test_resolve_presets_and_recipe(in_tmp):
    cfg = resolve_config(
        TrainConfig(
            arch="resnet20", teacher_arch="resnet56", teacher_checkpoint="t.pth", method="wttm", epochs=24, device="cpu"
        )
    )
    assert (cfg.gamma, cfg.beta, cfg.preset_source) == (0.3, 1.5, "Table 8 (reconstructed)")  # issue 16: marked
    assert cfg.milestones == (15, 18, 21) and cfg.lr == 0.05 and cfg.metric_temperature == pytest.approx(1 / 0.3)
    given_values = resolve_config(
        TrainConfig(
            arch="resnet20", teacher_arch="resnet56", teacher_checkpoint="t.pth", method="ttm", gamma=0.5, device="cpu"
        )
    )
    assert (given_values.gamma, given_values.beta) == (0.5, 7)
    mobile = resolve_config(TrainConfig(arch="MobileNetV2", device="cpu"))
    assert mobile.lr == 0.01 and mobile.milestones == (150, 180, 210)
    kd = resolve_config(
        TrainConfig(arch="resnet8", teacher_arch="resnet20", teacher_checkpoint="t.pth", method="kd", device="cpu")
    )
    assert kd.gamma is None and kd.metric_temperature == 4.0
    assert resolve_config(TrainConfig(device="cpu", amp="off")).channels_last is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"arch": "resnet9"}, "arch"),
        ({"method": "dkd"}, "method"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"gamma": -0.1, "teacher_checkpoint": "t.pth", "teacher_arch": "resnet8", "method": "wttm"}, "gamma"),
        ({"dataset": "imagenet"}, "dataset"),
        ({"loader": "fast"}, "loader"),
        ({"amp": "fp8"}, "amp"),
        ({"amp": "fp16", "device": "cpu"}, "amp"),
        ({"device": "tpu"}, "device"),
        ({"milestones": (5, 2)}, "milestones"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"method": "kd"}, "teacher"),
        ({"method": "wttm", "teacher_checkpoint": "t.pth", "teacher_arch": "resnet20"}, "gamma"),
        ({"teacher": "resnet1000"}, "teacher"),
        ({"batch_size": 63}, "batch_size"),
        ({"method": "kd", "teacher_checkpoint": "missing.pth"}, "teacher_checkpoint"),
    ],
)
def test_resolve_rejects_bad_values(changes, field, in_tmp):
    world = 2 if changes.get("batch_size") == 63 else 1
    with pytest.raises(ValueError, match=field):
        resolve_config(TrainConfig(**{"device": "cpu", **changes}), world_size=world)


# ------------------------------------------------------------------------------------------------ state
def test_rng_round_trip(tmp_path):
    import random

    import numpy as np

    g = torch.Generator().manual_seed(5)
    state = capture_rng({"g": g})
    torch.save(state, tmp_path / "rng.pth")
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=g)))
    restore_rng(torch.load(tmp_path / "rng.pth", weights_only=True), {"g": g})
    again = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=g)))
    assert first == again


def test_check_run_directory(tmp_path):
    config = {"arch": "resnet8", "seed": 1, "out": "a", "quiet": False}
    assert check_run_directory(tmp_path / "new", config, resume=False, force=False) == "fresh"
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(RunDirectoryError, match="no run to resume"):  # issue 13: --resume never starts afresh
        check_run_directory(run, config, resume=True, force=False)  # empty
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirectoryError, match="--resume"):
        check_run_directory(run, config, resume=False, force=False)
    moved = dict(config, out="b", quiet=True)  # not part of the run's identity
    with pytest.raises(RunDirectoryError, match="no state.pth.*--force"):  # no state yet: refused, way out named
        check_run_directory(run, moved, resume=True, force=False)
    (run / "state.pth").write_bytes(b"x")
    assert check_run_directory(run, moved, resume=True, force=False) == "resume"
    with pytest.raises(RunDirectoryError, match="different run.*seed"):
        check_run_directory(run, dict(config, seed=2), resume=True, force=False)
    assert check_run_directory(run, dict(config, seed=2), resume=False, force=True) == "overwrite"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="no wttm run"):
        check_run_directory(foreign, config, resume=False, force=False)


# ------------------------------------------------------------------------------------------------ metrics
def test_train_meter():
    method = build_method("wttm", gamma=0.5, beta=2.0)
    meter = TrainMeter(method.terms, "cpu")
    totals, correct, weights = [], 0, []
    for seed, n in ((0, 8), (1, 4)):
        z, v, y = logits_pair(n=n, seed=seed)
        parts = method(z, v, y)
        w = W.wttm_weights(v, 0.5)
        meter.update(parts, z, y, w)
        totals.append(parts.total * n)
        correct += int((z.argmax(-1) == y).sum())
        weights.append(w)
    result = meter.result(DistContext())
    assert result["train_loss"] == pytest.approx(float(sum(totals)) / 12, rel=1e-6)
    assert result["train_acc"] == pytest.approx(100 * correct / 12)
    all_w = torch.cat(weights).double()
    assert result["weight_mean"] == pytest.approx(float(all_w.mean()))
    assert result["weight_std"] == pytest.approx(float(all_w.std(unbiased=False)), rel=1e-5)
    assert result["train_ce"] + result["train_wttm"] == pytest.approx(result["train_loss"])


def test_test_metrics_use_the_paper_quantities():
    z, v, y = logits_pair(n=32, k=10, seed=6)
    got = finish_evaluation(evaluation_sums(z, y, v, 4.0), DistContext())
    q = torch.softmax(z, -1)
    assert got["student_entropy"] == pytest.approx(float(W.shannon_entropy(q).mean()), rel=1e-5)
    assert got["renyi_entropy"] == pytest.approx(float(W.renyi_entropy(q, 0.25).mean()), rel=1e-5)
    assert got["kl_transformed_teacher"] == pytest.approx(float(W.ttm_loss(z, v, 0.25)), rel=1e-5)
    assert got["kd_divergence"] == pytest.approx(float(W.kd_loss(z, v, 4.0)) / 16, rel=1e-5)
    assert got["test_loss"] == pytest.approx(float(F.cross_entropy(z, y)), rel=1e-5)
    assert got["test_acc"] == pytest.approx(100 * float((z.argmax(-1) == y).float().mean()))
    assert got["test_acc"] <= got["test_top5"] <= 100
    no_teacher = finish_evaluation(evaluation_sums(z, y, None, 4.0), DistContext())
    assert "kl_transformed_teacher" not in no_teacher
    assert no_teacher["renyi_entropy"] == pytest.approx(got["renyi_entropy"])


# ------------------------------------------------------------------------------------------------ distributed helpers
def test_shard_and_loss_scale_cover_the_batch():
    images, labels = torch.randn(10, 3, 4, 4), torch.arange(10)
    ctxs = [DistContext(r, 3, r) for r in range(3)]
    parts = [shard(images, labels, c) for c in ctxs]
    assert torch.equal(torch.cat([p[1] for p in parts]), labels)
    # rank means scaled and averaged over ranks == global mean
    values = torch.randn(10)
    scaled = [loss_scale(len(p[1]), 10, c) * values[p[1]].mean() for p, c in zip(parts, ctxs, strict=True)]
    assert torch.allclose(sum(scaled) / 3, values.mean())
    assert shard(images, labels, DistContext())[0] is images


def test_global_batchnorm_is_batchnorm_in_one_process():
    model = build_model("resnet8")
    converted = convert_sync_batchnorm(build_model("resnet8"), "cpu")
    converted.load_state_dict(model.state_dict())
    assert any(isinstance(m, GlobalBatchNorm2d) for m in converted.modules())
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(model.train()(x), converted.train()(x), atol=1e-5)


# ------------------------------------------------------------------------------------------------ tiny runs
@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset("synthetic", "train", size=128), load_dataset("synthetic", "test", size=64)


def tiny(out, **changes):
    base = dict(
        arch="resnet8",
        train_size=128,
        test_size=64,
        batch_size=32,
        epochs=1,
        device="cpu",
        out=str(out) if out is not None else None,
        quiet=True,
    )
    return TrainConfig(**{**base, **changes})


def strip_timing(rows):
    return [{k: v for k, v in r.items() if "seconds" not in k and k != "images_per_s"} for r in rows]


def test_teacher_training_writes_the_run_files(tmp_path, tiny_data):
    seen = []
    summary = train(tiny(tmp_path / "t", epochs=3), data=tiny_data, callbacks=[seen.append])
    out = tmp_path / "t"
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and seen == rows
    assert REQUIRED_KEYS <= set(rows[0]) and "train_ce" in rows[0]
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.05, 0.0005])  # milestones (2, 2, 3)
    assert rows[0]["kl_transformed_teacher"] is None and rows[0]["teacher_test_acc"] is None
    config = json.loads((out / "config.json").read_text())
    assert config["amp"] in ("off", "bf16") and config["milestones"] == [2, 2, 3]
    assert config["environment"]["torch"] == torch.__version__ and config["data"]["train_images"] == 128
    saved = json.loads((out / "summary.json").read_text())
    assert saved["best_test_acc"] == max(r["test_acc"] for r in rows) and saved["complete"]
    assert saved["last_test_acc"] == rows[-1]["test_acc"] == summary["last_test_acc"]
    ckpt = read_checkpoint(out / "checkpoint.pth")
    assert ckpt["arch"] == "resnet8" and ckpt["epoch"] == 3 and ckpt["optimizer"] is not None
    model = load_checkpoint(out / "checkpoint.pth")
    assert sum(p.numel() for p in model.parameters()) == 83_892
    assert read_checkpoint(out / "best.pth")["accuracy"] == saved["best_test_acc"]


def test_distillation_records_teacher_metrics(tmp_path, tiny_data, teacher_file):
    summary = train(
        tiny(tmp_path / "s", method="wttm", teacher_checkpoint=str(teacher_file), gamma=0.25, beta=2.0), data=tiny_data
    )
    row = summary["history"][0]
    assert REQUIRED_KEYS <= set(row)
    assert row["kl_transformed_teacher"] > 0 and row["kd_divergence"] > 0
    assert 1.0 <= row["weight_mean"] <= 100**0.75 + 1e-6  # U in [1, K^(1-gamma)] (Eq. 22)
    assert row["teacher_test_acc"] == summary["teacher_test_acc"] is not None
    assert row["train_loss"] == pytest.approx(row["train_ce"] + row["train_wttm"])


def test_deterministic_runs_repeat_exactly(tiny_data, teacher_file):
    config = tiny(None, method="kd", teacher_checkpoint=str(teacher_file), deterministic=True, seed=3)
    first = train(config, data=tiny_data)["history"]
    second = train(config, data=tiny_data)["history"]
    assert strip_timing(first) == strip_timing(second)


def test_reference_loader_path_runs(tiny_data):
    summary = train(tiny(None, loader="reference", amp="off"), data=tiny_data)
    assert summary["complete"] and 0 <= summary["last_test_acc"] <= 100


def test_output_directory_rules(tmp_path, tiny_data):
    out = tmp_path / "run"
    train(tiny(out), data=tiny_data)
    with pytest.raises(RunDirectoryError, match="already holds this run"):
        train(tiny(out), data=tiny_data)
    with pytest.raises(RunDirectoryError, match="different run"):
        train(tiny(out, seed=9), data=tiny_data)
    finished = train(tiny(out), data=tiny_data, resume=True)  # nothing left to do
    assert finished["epochs_completed"] == 1
    replaced = train(tiny(out, seed=9), data=tiny_data, force=True)
    assert json.loads((out / "config.json").read_text())["seed"] == 9 and replaced["epochs_completed"] == 1


def test_bad_teacher_checkpoint_writes_nothing(tmp_path, tiny_data, teacher_file):
    out = tmp_path / "never"
    from wttm_core.models import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError):
        train(tiny(out, method="kd", teacher="resnet20", teacher_checkpoint=str(teacher_file)), data=tiny_data)
    assert not out.exists()


def test_without_out_nothing_is_written(tmp_path, tiny_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = train(tiny(None), data=tiny_data)
    assert summary["complete"] and list(tmp_path.iterdir()) == []
