"""Graded similarity in the synthetic stand-in: superclasses of one family share a pattern component, so their
patterns are alike and a classifier's superclass mistakes fall inside the family. It is the default
(``DEFAULT_SIMILARITY``); ``similarity=0`` is the earlier data set, and runs made with it are not reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wttm_core.data import ImageDataset, load_dataset
from wttm_core.data.synthetic import (
    DEFAULT_SIMILARITY,
    SUPERCLASS_FAMILIES,
    family_statistics,
    make_synthetic,
    superclass_family,
    synthetic_prototypes,
)


def test_default_is_graded_and_zero_changes_only_the_superclass_patterns() -> None:
    assert 0 < DEFAULT_SIMILARITY < 1
    default = make_synthetic("train", size=200)
    assert torch.equal(default.images, make_synthetic("train", size=200, similarity=DEFAULT_SIMILARITY).images)
    flat = make_synthetic("train", size=200, similarity=0)
    assert torch.equal(default.labels, flat.labels) and not torch.equal(default.images, flat.images)
    graded, plain = synthetic_prototypes(0), synthetic_prototypes(0, 0.0)
    assert torch.equal(graded["colour"], plain["colour"]) and torch.equal(graded["fine"], plain["fine"])
    assert not torch.equal(graded["superclass"], plain["superclass"])
    assert sorted(n for members in SUPERCLASS_FAMILIES.values() for n in members) == sorted(
        load_dataset("synthetic", "test", size=100).superclass_names
    )
    with pytest.raises(ValueError, match="similarity"):
        make_synthetic("train", size=100, similarity=1.0)


@pytest.mark.parametrize("similarity", [0.3, 0.6])
def test_patterns_of_one_family_have_the_asked_similarity(similarity: float) -> None:
    family = superclass_family()
    patterns = synthetic_prototypes(0, similarity)["superclass"].flatten(1)
    cosine = torch.nn.functional.normalize(patterns, dim=1) @ torch.nn.functional.normalize(patterns, dim=1).T
    same = (family[:, None] == family[None, :]) & ~torch.eye(20, dtype=torch.bool)
    assert float(cosine[same].mean()) == pytest.approx(similarity, abs=0.1)
    assert abs(float(cosine[family[:, None] != family[None, :]].mean())) < 0.05


def _nearest_centroid(similarity: float) -> dict[str, float]:
    """A nearest-centroid superclass classifier (4 x 4 average-pooled pixels) scored by :func:`family_statistics`
    (its prediction of superclass s counts as a one-hot vote for the first class of s)."""
    train = load_dataset("synthetic", "train", size=2000, similarity=similarity)
    test = load_dataset("synthetic", "test", size=1000, similarity=similarity)

    def features(d: ImageDataset) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(d.images.float() / 255, 4).flatten(1)

    centroids = torch.stack([features(train)[train.coarse_labels == s].mean(0) for s in range(20)])
    predicted = torch.cdist(features(test), centroids).argmin(1)
    first_class = torch.stack([(test.fine_to_coarse == s).nonzero()[0, 0] for s in range(20)])
    votes = torch.nn.functional.one_hot(first_class[predicted], 100).float()
    return family_statistics(votes, test.labels, test.fine_to_coarse)


def test_superclass_mistakes_concentrate_inside_the_family() -> None:
    # without shared components the mistakes spread like chance (about 0.18 of them inside the family: families
    # of 3 to 6 superclasses); with the default most of them stay inside it - measurable graded similarity
    flat, default, strong = _nearest_centroid(0.0), _nearest_centroid(DEFAULT_SIMILARITY), _nearest_centroid(0.6)
    assert flat["superclass_errors_in_family_chance"] == pytest.approx(0.18, abs=0.03)
    assert flat["superclass_errors_in_family"] < 0.35
    assert default["superclass_errors_in_family"] > 3 * default["superclass_errors_in_family_chance"]
    assert strong["superclass_errors_in_family"] > 0.6


def test_family_statistics_against_a_direct_count() -> None:
    family = superclass_family()
    coarse = load_dataset("synthetic", "test", size=100).fine_to_coarse
    members = [(coarse == s).nonzero()[:, 0] for s in range(20)]
    # three images of superclass 0: one mistaken for a superclass of its family, one for a superclass outside
    # it, one right
    inside = int(next(s for s in range(1, 20) if family[s] == family[0]))
    outside = int(next(s for s in range(1, 20) if family[s] != family[0]))
    labels = members[0][:3]
    votes = torch.nn.functional.one_hot(torch.stack([members[inside][0], members[outside][0], labels[2]]), 100)
    stats = family_statistics(votes.float(), labels, coarse)
    size = int((family == family[0]).sum())
    assert stats["superclass_error_rate"] == pytest.approx(2 / 3)
    assert stats["superclass_errors_in_family"] == pytest.approx(0.5)
    assert stats["superclass_errors_in_family_chance"] == pytest.approx((size - 1) / 19)
    assert stats["other_superclass_mass_in_family"] == pytest.approx(0.5)


def test_runs_made_with_the_earlier_data_are_not_reused(tmp_path: Path) -> None:
    from wttm_core.engine import TrainConfig, config_to_dict, resolve_config
    from wttm_core.engine.config import identity
    from wttm_core.lab.experiments.orchestrate import _run_state

    config = TrainConfig(arch="resnet8", dataset="synthetic", epochs=1, device="cpu", out=str(tmp_path))
    recorded = json.loads(json.dumps(config_to_dict(resolve_config(config))))
    assert recorded["synthetic_similarity"] == DEFAULT_SIMILARITY
    old = {k: v for k, v in recorded.items() if k != "synthetic_similarity"}  # written before the field existed
    (tmp_path / "summary.json").write_text(json.dumps({"complete": True}))
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    assert _run_state(tmp_path, config) == "finished"
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert _run_state(tmp_path, config) is None  # made with the similarity-0 data: trained again
    flat = TrainConfig(arch="resnet8", dataset="synthetic", epochs=1, device="cpu", synthetic_similarity=0.0)
    assert _run_state(tmp_path, flat) == "finished"  # ... unless that data is asked for
    # CIFAR-100 runs do not depend on it
    cifar = {**old, "dataset": "cifar100"}
    assert identity(cifar) == identity({**cifar, "synthetic_similarity": DEFAULT_SIMILARITY})
    with pytest.raises(ValueError, match="synthetic_similarity"):
        resolve_config(TrainConfig(device="cpu", out=str(tmp_path), synthetic_similarity=1.0))
