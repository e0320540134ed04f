"""A fair step size: the validation split never touches the test set, label noise flips exactly the asked share,
and the learning-rate pilot trains every method at every rate of one grid, picks by validation loss (accuracy
breaks ties) and is cached under its scoring rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wttm_core.data import load_dataset, validation_split, with_label_noise
from wttm_core.engine import TrainConfig, read_jsonl
from wttm_core.lab.experiments import tuning
from wttm_core.lab.experiments.tuning import _best, tune_learning_rates, with_learning_rates
from wttm_core.lab.experiments.variants import Variant


def test_validation_split_is_carved_from_training_images_only() -> None:
    train = load_dataset("synthetic", "train", size=500)
    rest, validation = validation_split(train, 100, seed=3)
    assert len(rest) == 400 and len(validation) == 100
    # disjoint, and together exactly the training set (images compared as whole rows)
    rows = {bytes(img.numpy()) for img in train.images}
    assert {bytes(img.numpy()) for img in rest.images} | {bytes(img.numpy()) for img in validation.images} == rows
    assert not {bytes(img.numpy()) for img in rest.images} & {bytes(img.numpy()) for img in validation.images}
    assert torch.bincount(validation.labels, minlength=100).max() <= 1 + torch.bincount(validation.labels).min()
    again = validation_split(train, 100, seed=3)[1]
    assert torch.equal(again.labels, validation.labels) and torch.equal(again.images, validation.images)
    with pytest.raises(ValueError, match="size"):
        validation_split(train, 500)


def test_symmetric_label_noise_flips_exactly_the_share_to_other_classes() -> None:
    train = load_dataset("synthetic", "train", size=1000)
    noisy = with_label_noise(train, 0.3, seed=1)
    changed = noisy.labels != train.labels
    assert int(changed.sum()) == 300  # every flipped label lands on another class
    assert torch.equal(noisy.images, train.images) and noisy.labels.max() < 100
    assert torch.equal(with_label_noise(train, 0.3, seed=1).labels, noisy.labels)
    assert torch.equal(with_label_noise(train, 0.0).labels, train.labels)
    with pytest.raises(ValueError, match="fraction"):
        with_label_noise(train, 1.5)


def test_best_rate_ignores_diverged_runs_and_prefers_the_smaller_rate_on_ties() -> None:
    assert _best({0.05: 10.0, 0.5: 12.0, 1.0: None}) == 0.5
    assert _best({0.05: 12.0, 0.5: 12.0}) == 0.05
    with pytest.raises(ValueError, match="diverged"):
        _best({0.5: None})


def test_best_rate_is_the_lowest_validation_loss_and_accuracy_breaks_ties() -> None:
    accuracies = {0.05: 3.0, 0.1: 2.0, 0.5: 5.0}
    assert _best(accuracies, {0.05: 4.50, 0.1: 4.40, 0.5: 4.45}) == 0.1  # lowest loss, though not the best accuracy
    assert _best(accuracies, {0.05: 4.400001, 0.1: 4.400003, 0.5: 4.9}) == 0.05  # a tie in loss: better accuracy
    assert _best({0.05: 3.0, 0.1: 3.0}, {0.05: 4.4, 0.1: 4.4}) == 0.05  # a full tie: the smaller rate
    assert _best(accuracies, {0.05: 4.5, 0.1: None, 0.5: 4.6}) == 0.05  # a diverged run is never chosen
    with pytest.raises(ValueError, match="diverged"):
        _best({0.5: 5.0}, {0.5: None})


def test_a_pilot_cached_under_another_scoring_rule_is_not_reused(tmp_path: Path, monkeypatch) -> None:
    pilot = tuning.Pilot([0.05, 0.5], {"KD": {0.05: 3.0, 0.5: 4.0}}, {"KD": 0.05}, 1, 100, 60, 0)
    pilot.losses = {"KD": {0.05: 4.4, 0.5: 4.5}}
    base = TrainConfig(arch="resnet8", device="cpu")
    key = tuning._key([Variant("KD", "kd")], base, [0.05, 0.5], (100, 60))
    tuning._write_pilot(tmp_path / "pilot.json", key, pilot)
    cached = tuning._read_pilot(tmp_path / "pilot.json", key)
    assert cached is not None and cached.reused and cached.losses == pilot.losses and cached.chosen == pilot.chosen
    assert cached.rows()[0] == {"label": "KD", "chosen lr": 0.05, "lr 0.05": "4.400 (3.0 %)", "lr 0.5": "4.500 (4.0 %)"}
    monkeypatch.setattr(tuning, "CRITERION", "validation accuracy")  # the rule of the pilots cached before
    assert tuning._key([Variant("KD", "kd")], base, [0.05, 0.5], (100, 60)) != key
    assert tuning._read_pilot(tmp_path / "pilot.json", key) is None


@pytest.mark.slow
def test_pilot_trains_the_grid_on_validation_data_and_is_cached(tmp_path: Path, teacher_file: Path) -> None:
    train = load_dataset("synthetic", "train", size=160)
    split = validation_split(train, 60)
    base = TrainConfig(arch="resnet8", teacher_checkpoint=str(teacher_file), device="cpu", quiet=True)
    variants = [Variant("CE", "ce"), Variant("KD", "kd")]
    messages: list[str] = []
    pilot = tune_learning_rates(
        variants, base=base, data=split, root=tmp_path / "pilot", grid=(0.5, 0.05), epochs=1, log=messages.append
    )
    assert pilot.grid == [0.05, 0.5] and set(pilot.scores) == {"CE", "KD"} and not pilot.reused
    assert all(set(by_lr) == {0.05, 0.5} for by_lr in pilot.scores.values())
    assert (pilot.train_images, pilot.validation_images) == (100, 60)
    assert set(pilot.losses) == {"CE", "KD"} and all(set(by_lr) == {0.05, 0.5} for by_lr in pilot.losses.values())
    for label, by_lr in pilot.losses.items():  # the lowest validation loss (cross-entropy, a few nats on 100 classes)
        assert by_lr[pilot.chosen[label]] == min(s for s in by_lr.values() if s is not None)
        assert all(s is None or 0 < s < 50 for s in by_lr.values())
    assert (tmp_path / "pilot" / "pilot.json").is_file() and "validation loss" in pilot.describe()
    for trial in tmp_path.glob("pilot/*-s0"):  # the four trials trained as one cohort (one teacher pass per batch)
        assert {row["cohort_students"] for row in read_jsonl(trial / "metrics.jsonl")} == {4}
    again = tune_learning_rates(
        variants, base=base, data=split, root=tmp_path / "pilot", grid=(0.05, 0.5), epochs=1, log=messages.append
    )
    assert again.reused and again.chosen == pilot.chosen and again.scores == pilot.scores
    assert again.losses == pilot.losses
    tuned = with_learning_rates(variants, pilot.chosen)
    assert [v.options["lr"] for v in tuned] == [pilot.chosen["CE"], pilot.chosen["KD"]]
    with pytest.raises(ValueError, match="no learning rate"):
        with_learning_rates([Variant("TTM", "ttm")], pilot.chosen)


@pytest.mark.slow
def test_a_diverging_trial_scores_none_and_the_cohort_goes_on(tmp_path: Path, teacher_file: Path) -> None:
    split = validation_split(load_dataset("synthetic", "train", size=160), 60)
    base = TrainConfig(arch="resnet8", teacher_checkpoint=str(teacher_file), device="cpu", quiet=True)
    messages: list[str] = []
    pilot = tune_learning_rates(
        [Variant("KD", "kd")], base=base, data=split, root=tmp_path, grid=(0.05, 1e9), epochs=1, log=messages.append
    )
    assert pilot.scores["KD"][1e9] is None and pilot.losses["KD"][1e9] is None
    assert pilot.scores["KD"][0.05] is not None and pilot.chosen == {"KD": 0.05}
    assert any("lr 1e+09: diverged" in message for message in messages)
