"""The recipe, the Table 8/9 presets and the paper's reported numbers, checked against the facts sheet."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wttm_core.paper import load_paper_results, paper_results_for
from wttm_core.presets import (
    PAIR_PRESETS,
    PROFILES,
    RECIPE,
    get_profile,
    learning_rate,
    method_hyperparameters,
    pair_preset,
    scaled_milestones,
)


def test_recipe_matches_the_paper():
    assert (RECIPE.epochs, RECIPE.batch_size, RECIPE.test_batch_size) == (240, 64, 32)
    assert (RECIPE.momentum, RECIPE.weight_decay, RECIPE.lr, RECIPE.small_lr) == (0.9, 5e-4, 0.05, 0.01)
    assert RECIPE.milestones == (150, 180, 210) and RECIPE.lr_decay == 0.1
    assert (RECIPE.kd_temperature, RECIPE.kd_ce_weight, RECIPE.kd_weight) == (4.0, 0.1, 0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPE.lr = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("student", "lr"),
    [
        ("MobileNetV2", 0.01),
        ("ShuffleV1", 0.01),
        ("ShuffleV2", 0.01),
        ("resnet8x4", 0.05),
        ("vgg8", 0.05),
        ("wrn_16_2", 0.05),
    ],
)
def test_learning_rate_per_student(student, lr):
    assert learning_rate(student) == lr


def test_milestones_scale_with_epochs():
    assert scaled_milestones(240) == (150, 180, 210)
    assert scaled_milestones(24) == (15, 18, 21)
    assert scaled_milestones(480) == (300, 360, 420)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="epochs"):
            scaled_milestones(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=2000))
def test_milestones_are_proportional_and_ordered(epochs):
    ms = scaled_milestones(epochs)
    assert list(ms) == sorted(ms)
    for m, paper in zip(ms, RECIPE.milestones, strict=True):
        assert abs(m - paper * epochs / 240) <= 0.5


def test_table_8_and_9_rows():
    assert len(PAIR_PRESETS) == 13
    assert sum(p.table == 8 for p in PAIR_PRESETS) == 7
    row = pair_preset("resnet32x4", "resnet8x4")
    assert (row.ttm_gamma, row.ttm_beta, row.wttm_gamma, row.wttm_beta, row.wttm_noce_gamma) == (0.1, 100, 0.1, 3, 0.5)
    row = pair_preset("resnet32x4", "ShuffleV2")
    assert (row.table, row.ttm_gamma, row.ttm_beta, row.wttm_beta, row.wttm_noce_gamma) == (9, 0.4, 40, 16, None)
    assert pair_preset("resnet8x4", "resnet32x4") is None
    # every gamma is a power in (0, 1): T = 1 / gamma > 1
    assert all(0 < p.ttm_gamma < 1 and 0 < p.wttm_gamma < 1 for p in PAIR_PRESETS)


def test_method_hyperparameters():
    assert method_hyperparameters("wttm", "resnet56", "resnet20") == {
        "gamma": 0.3,
        "beta": 1.5,
        "source": "Table 8 (reconstructed)",  # issue 16: Table 8's rows are marked wherever shown or recorded
    }
    assert method_hyperparameters("ttm", "vgg13", "MobileNetV2")["source"] == "Table 9"
    assert method_hyperparameters("dkd", "resnet56", "resnet20")["gamma"] is None  # no Table 8/9 preset applies
    assert method_hyperparameters("ttm", "vgg13", "MobileNetV2")["beta"] == 16
    noce = method_hyperparameters("wttm-noce", "resnet110", "resnet32")
    assert noce["gamma"] == 0.4 and noce["beta"] == 1.5 and "not published" in noce["source"]
    assert method_hyperparameters("wttm-noce", "vgg13", "MobileNetV2")["gamma"] is None  # Table 9: no row
    assert method_hyperparameters("kd", "resnet56", "resnet20")["gamma"] is None
    assert method_hyperparameters("wttm", "resnet20", "resnet8")["gamma"] is None
    with pytest.raises(ValueError, match="method"):
        method_hyperparameters("xkd", "resnet56", "resnet20")


def test_profiles():
    assert set(PROFILES) == {"smoke", "cpu-quick", "gpu-paper"}
    assert get_profile("gpu-paper").epochs == 240 and get_profile("gpu-paper").dataset == "cifar100"
    with pytest.raises(ValueError, match="profile"):
        get_profile("fast")


def test_paper_results_csv():
    rows = load_paper_results()
    tables = {r.table for r in rows}
    assert tables == {1, 3, 6}
    by_pair = paper_results_for("resnet32x4", "resnet8x4", table=1)
    assert by_pair["wttm"].accuracy == 76.06 and by_pair["wttm"].std == 0.27 and by_pair["wttm"].runs == 5
    assert by_pair["teacher"].accuracy == 79.42 and by_pair["kd"].accuracy == 73.33
    assert paper_results_for("resnet32x4", "resnet8x4", table=6)["wttm-noce"].accuracy == 72.94
    three = paper_results_for("vgg13", "MobileNetV2")
    assert three["ttm"].runs == 3 and three["ttm"].std == 0.85
    assert "dkd" not in paper_results_for("resnet110", "resnet20")  # n/a in Table 1
    assert paper_results_for("resnet20", "resnet8") == {}
    # 13 pairs x (teacher, student, KD, TTM, WTTM) + DKD where reported + Table 6 (7 pairs x 2)
    assert len(rows) == 13 * 5 + 11 + 14
    # every preset pair has reported numbers and vice versa
    assert {(r.teacher, r.student) for r in rows} == {(p.teacher, p.student) for p in PAIR_PRESETS}


def test_paper_results_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_paper_results(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        load_paper_results(bad)


def test_reconstructed_table_8_rows_are_marked_where_shown_and_recorded(capsys, teacher_file):
    from wttm_core.cli import main
    from wttm_core.engine import TrainConfig, resolve_config
    from wttm_core.presets import PAIR_PRESETS as ALIAS

    assert ALIAS is PAIR_PRESETS  # the old import path keeps working
    assert all(p.reconstructed == (p.table == 8) for p in PAIR_PRESETS)
    assert main(["presets"]) == 0
    shown = capsys.readouterr().out
    assert "8*  resnet56 -> resnet20" in shown and "Table 8 (reconstructed)" in shown
    assert main(["presets", "--json"]) == 0
    assert all(p["reconstructed"] == (p["table"] == 8) for p in json.loads(capsys.readouterr().out)["pairs"])
    cfg = TrainConfig(arch="resnet20", method="wttm", teacher="resnet56", teacher_checkpoint=str(teacher_file))
    assert resolve_config(cfg).preset_source == "Table 8 (reconstructed)"
