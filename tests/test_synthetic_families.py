"""Graded similarity in the synthetic stand-in: superclasses of one family share a pattern component, so their
patterns are alike and a classifier's superclass mistakes fall inside the family; the default is unchanged."""

from __future__ import annotations

import pytest
import torch

from wttm_core.data import ImageDataset, load_dataset
from wttm_core.data.synthetic import SUPERCLASS_FAMILIES, make_synthetic, superclass_family, synthetic_prototypes


def test_default_images_are_unchanged_and_families_cover_every_superclass() -> None:
    assert torch.equal(make_synthetic("train", size=200).images, make_synthetic("train", size=200, similarity=0).images)
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


def _family_share_of_errors(similarity: float) -> float:
    """A nearest-centroid superclass classifier (4 x 4 average-pooled pixels): the share of its mistakes that
    stay inside the true superclass's family."""
    train = load_dataset("synthetic", "train", size=2000, similarity=similarity)
    test = load_dataset("synthetic", "test", size=1000, similarity=similarity)

    def features(d: ImageDataset) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(d.images.float() / 255, 4).flatten(1)

    centroids = torch.stack([features(train)[train.coarse_labels == s].mean(0) for s in range(20)])
    predicted = torch.cdist(features(test), centroids).argmin(1)
    wrong = predicted != test.coarse_labels
    family = superclass_family()
    return float((family[predicted[wrong]] == family[test.coarse_labels[wrong]]).float().mean())


def test_superclass_mistakes_concentrate_inside_the_family() -> None:
    # without shared components the mistakes spread like chance (about 0.2 of them inside the family);
    # with similarity 0.6 most of them stay inside it - measurable graded similarity
    assert _family_share_of_errors(0.0) < 0.35
    assert _family_share_of_errors(0.6) > 0.6
