"""The ``wttm`` command line: the exact forms of the issue, one-line errors with exit code 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wttm_core.cli import main
from wttm_core.engine import read_jsonl

TINY = [
    "--dataset",
    "synthetic",
    "--train-size",
    "128",
    "--test-size",
    "64",
    "--batch-size",
    "32",
    "--device",
    "cpu",
    "--epochs",
    "1",
    "--quiet",
]


def run_main(argv, capsys):
    """Run ``wttm argv`` in-process; return (exit code, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_teacher_and_distill_in_process(tmp_path, capsys, teacher_file):
    out = tmp_path / "t"
    code, stdout, _ = run_main(["train-teacher", "--arch", "resnet8", *TINY, "--out", str(out)], capsys)
    assert code == 0 and (out / "checkpoint.pth").is_file()
    code, stdout, _ = run_main(
        [
            "distill",
            "--teacher",
            "resnet8",
            "--teacher-checkpoint",
            str(out / "checkpoint.pth"),
            "--student",
            "resnet8",
            "--method",
            "wttm+0.5*kd",
            "--gamma",
            "0.3",
            "--beta",
            "1.5",
            *TINY,
            "--out",
            str(tmp_path / "s"),
        ],
        capsys,
    )
    assert code == 0
    row = read_jsonl(tmp_path / "s" / "metrics.jsonl")[0]
    assert row["train_kd"] > 0 and row["teacher_test_acc"] is not None
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert (config["gamma"], config["beta"], config["method"]) == (0.3, 1.5, "wttm+0.5*kd")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train-teacher", "--arch", "resnet9"], "arch"),
        (["distill", "--student", "resnet8", "--teacher", "resnet8", "--method", "xkd"], "method"),
        (["distill", "--student", "resnet8", "--teacher", "resnet8", "--gamma", "0", "--beta", "1"], "gamma"),
        (["distill", "--student", "resnet8", "--teacher", "resnet8", "--gamma", "-0.3", "--beta", "1"], "gamma"),
        (["distill", "--student", "resnet8", "--teacher", "resnet8", "--gamma", "abc"], "gamma"),
        (["distill", "--student", "resnet8", "--method", "kd"], "teacher"),
        (["distill", "--student", "resnet8", "--teacher", "resnet8", "--teacher-checkpoint", "nope.pth"], "nope.pth"),
        (["train-teacher", "--arch", "resnet8", "--data-dir", "no/such/dir"], "data-dir"),
        (["train-teacher", "--arch", "resnet8", "--dataset", "cifar100", "--data-dir", "no/such/dir"], "data"),
        (["train-teacher", "--arch", "resnet8", "--epochs", "0"], "epochs"),
        (["train-teacher", "--arch", "resnet8", "--amp", "fp8"], "amp"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_no_output(tmp_path, capsys, args, message, teacher_file):
    out = tmp_path / "out"
    code, stdout, stderr = run_main([args[0], *TINY, *args[1:], "--out", str(out)], capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("wttm")
    assert not out.exists()


def test_checkpoint_of_another_architecture_is_refused(tmp_path, capsys, teacher_file):
    out = tmp_path / "out"
    code, _, stderr = run_main(
        [
            "distill",
            "--student",
            "resnet8",
            "--teacher",
            "resnet20",
            "--teacher-checkpoint",
            str(teacher_file),
            "--method",
            "kd",
            *TINY,
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "resnet20" in stderr
    assert not out.exists()


def test_out_holding_another_run(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(["train-teacher", "--arch", "resnet8", *TINY, "--out", out], capsys)[0] == 0
    code, _, stderr = run_main(["train-teacher", "--arch", "resnet8", *TINY, "--seed", "5", "--out", out], capsys)
    assert code == 2 and "different run" in stderr and "seed" in stderr
    code, _, stderr = run_main(["train-teacher", "--arch", "resnet8", *TINY, "--out", out], capsys)
    assert code == 2 and "--resume" in stderr
    assert run_main(["train-teacher", "--arch", "resnet8", *TINY, "--out", out, "--resume"], capsys)[0] == 0
    assert (
        run_main(["train-teacher", "--arch", "resnet8", *TINY, "--seed", "5", "--out", out, "--force"], capsys)[0] == 0
    )
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 5


def test_eval_prints_top1_top5_loss(capsys, teacher_file):
    code, stdout, _ = run_main(
        ["eval", "--arch", "resnet8", "--checkpoint", str(teacher_file), "--test-size", "64", "--device", "cpu"], capsys
    )
    assert code == 0 and "top-1" in stdout and "top-5" in stdout and "loss" in stdout
    code, stdout, _ = run_main(
        ["eval", "--checkpoint", str(teacher_file), "--test-size", "64", "--device", "cpu", "--json"], capsys
    )
    result = json.loads(stdout)
    assert code == 0 and result["images"] == 64 and 0 <= result["top1"] <= result["top5"] <= 100
    assert result["loss"] > 0
    code, _, stderr = run_main(["eval", "--arch", "resnet20", "--checkpoint", str(teacher_file)], capsys)
    assert code == 2 and len(stderr.strip().splitlines()) == 1


def test_presets_prints_tables_8_and_9(capsys):
    code, stdout, _ = run_main(["presets"], capsys)
    assert code == 0
    assert "resnet32x4 -> resnet8x4" in stdout and "vgg13 -> MobileNetV2" in stdout
    row = next(line for line in stdout.splitlines() if "resnet56 -> resnet20" in line)
    assert row.split()[-5:] == ["0.3", "7", "0.3", "1.5", "0.6"]
    code, stdout, _ = run_main(["presets", "--json"], capsys)
    data = json.loads(stdout)
    assert data["recipe"]["epochs"] == 240 and len(data["pairs"]) == 13


def test_teachers_lists_the_standard_teachers(tmp_path, capsys):
    pytest.importorskip("wttm_core.teachers")
    code, stdout, _ = run_main(["teachers", "--root", str(tmp_path)], capsys)
    assert code == 0
    for name in ("resnet56", "resnet110", "resnet32x4", "wrn_40_2", "vgg13", "ResNet50"):
        assert name in stdout
    assert "missing" in stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)  # subprocess training: generous on a shared, busy machine
def test_the_issue_command_forms(tmp_path):
    """The two commands of issue 4, verbatim, through the console entry point; then ``wttm eval``."""
    wttm = [sys.executable, "-m", "wttm_core.cli"]
    teacher = (
        "train-teacher --dataset synthetic --train-size 2000 --test-size 500 --arch resnet20 "
        "--epochs 2 --batch-size 64 --device cpu --out runs/t"
    ).split()
    done = subprocess.run([*wttm, *teacher], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "runs/t/checkpoint.pth").is_file()
    distill = (
        "distill --dataset synthetic --train-size 2000 --test-size 500 --batch-size 64 --device cpu "
        "--teacher resnet20 --teacher-checkpoint runs/t/checkpoint.pth --student resnet8 "
        "--method wttm --gamma 0.3 --beta 1.5 --seed 7 --deterministic --epochs 3 --out runs/s"
    ).split()
    done = subprocess.run([*wttm, *distill], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_jsonl(tmp_path / "runs/s/metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    summary = json.loads((tmp_path / "runs/s/summary.json").read_text())
    assert summary["last_test_acc"] == rows[-1]["test_acc"] and summary["complete"]
    again = subprocess.run([*wttm, *distill, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and read_jsonl(tmp_path / "runs/s/metrics.jsonl") == rows
    evaluated = subprocess.run(
        [
            *wttm,
            "eval",
            "--arch",
            "resnet20",
            "--checkpoint",
            "runs/t/checkpoint.pth",
            "--dataset",
            "synthetic",
            "--test-size",
            "500",
            "--device",
            "cpu",
            "--json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    teacher_summary = json.loads((tmp_path / "runs/t/summary.json").read_text())
    # float32 evaluation of the last checkpoint vs the bf16 evaluation logged during training
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(teacher_summary["last_test_acc"], abs=1.0)


def _distill_parser():
    from wttm_core.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return commands.choices["distill"]


def test_training_flags_are_generated_from_the_config_fields():
    """One place per setting: each described TrainConfig field is one ``wttm distill`` flag carrying its help."""
    import dataclasses

    from wttm_core.engine import TrainConfig

    actions = {a.dest: a for a in _distill_parser()._actions}
    described = [f for f in dataclasses.fields(TrainConfig) if "cli" in f.metadata]
    assert {f.name for f in described} >= {"method", "seed", "lr", "gamma", "epochs", "out", "sync_bn", "amp"}
    for item in described:
        assert actions[item.name].help == item.metadata["cli"]["help"], item.name
        assert "--" + item.name.replace("_", "-") in actions[item.name].option_strings, item.name


def test_parsed_flags_reach_the_config(tmp_path):
    """Every kind of generated flag (number, list, switch, --no- switch, choice) lands in the TrainConfig."""
    from wttm_core.cli import _config_from_args

    argv = ["--student", "resnet8", "--teacher", "resnet8", "--out", str(tmp_path), "--momentum", "0.8"]
    argv += ["--milestones", "1", "2", "--no-sync-bn", "--deterministic", "--amp", "off", "--label-smoothing", "0.1"]
    args = _distill_parser().parse_args(argv)
    args.command = "distill"
    config = _config_from_args(args, "kd", 3, 0.2, str(tmp_path))
    assert (config.method, config.seed, config.lr, config.momentum) == ("kd", 3, 0.2, 0.8)
    assert config.milestones == (1, 2) and config.sync_bn is False and config.deterministic is True
    assert (config.amp, config.label_smoothing, config.epochs, config.channels_last) == ("off", 0.1, 240, None)
