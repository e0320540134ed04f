"""The in-memory image data set shared by every data source, and the single entry point ``load_dataset``.

Every source (real CIFAR-100, the synthetic stand-in) produces the same :class:`ImageDataset`: uint8 images in
NCHW layout, int64 fine labels and the class hierarchy (100 fine classes in 20 superclasses). Training code,
loaders and notebooks only ever see this type, so switching data sets is a change of name, not of code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wttm_core._checks import check_int, check_number

DATASET_NAMES: tuple[str, ...] = ("synthetic", "cifar100")
SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images with fine labels and the fine -> coarse class hierarchy.

    Attributes:
        images: uint8 tensor [N, 3, H, W] (CPU), pixel values 0..255, RGB.
        labels: int64 tensor [N] of fine-class indices in ``0 .. len(class_names) - 1``.
        class_names: the fine class names (100 for CIFAR-100 and the synthetic set).
        superclass_names: the coarse class names (20).
        fine_to_coarse: int64 tensor [len(class_names)]; entry k is the superclass index of fine class k.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    superclass_names: list[str]
    fine_to_coarse: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise TypeError(f"images must be a uint8 tensor [N, C, H, W], got {_describe(self.images)}")
        if self.images.shape[1] != 3:
            raise ValueError(f"images must have 3 channels (NCHW), got shape {tuple(self.images.shape)}")
        if not isinstance(self.labels, torch.Tensor) or self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise TypeError(f"labels must be an int64 tensor [N], got {_describe(self.labels)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"labels has {self.labels.shape[0]} entries but images has {self.images.shape[0]}")
        num_classes = len(self.class_names)
        if self.labels.numel() and (int(self.labels.min()) < 0 or int(self.labels.max()) >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes - 1}] (len(class_names) = {num_classes})")
        f2c = self.fine_to_coarse
        if not isinstance(f2c, torch.Tensor) or f2c.dtype != torch.int64 or tuple(f2c.shape) != (num_classes,):
            raise TypeError(f"fine_to_coarse must be an int64 tensor [{num_classes}], got {_describe(f2c)}")
        if num_classes and (int(f2c.min()) < 0 or int(f2c.max()) >= len(self.superclass_names)):
            raise ValueError(f"fine_to_coarse entries must lie in [0, {len(self.superclass_names) - 1}]")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(images=uint8{list(self.images.shape)}, classes={len(self.class_names)}, "
            f"superclasses={len(self.superclass_names)})"
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def coarse_labels(self) -> torch.Tensor:
        """Superclass index of every sample, int64 [N]."""
        return self.fine_to_coarse[self.labels]

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageDataset:
        """A new data set of the samples at ``indices`` (in that order), sharing names and hierarchy."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(
            images=self.images[index],
            labels=self.labels[index],
            class_names=self.class_names,
            superclass_names=self.superclass_names,
            fine_to_coarse=self.fine_to_coarse,
        )


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    return type(value).__name__


def stratified_subsample_indices(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Deterministic, class-balanced choice of ``size`` sample indices (returned in ascending order).

    The samples are visited in the order of a permutation drawn from ``seed``; each sample's rank among the
    visited samples of its own class decides the round in which it is taken, so the first ``size`` samples in
    (round, permutation position) order have class counts differing by at most one wherever the classes allow.
    """
    n = int(labels.shape[0])
    size = check_int("size", size, low=1)
    if size > n:
        raise ValueError(f"size={size} exceeds the {n} samples available")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    visited = labels[order]
    # rank of each visited sample within its class: position after a stable sort by class, minus class start
    by_class = torch.sort(visited, stable=True).indices
    counts = torch.bincount(visited)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.int64)
    rank[by_class] = torch.arange(n) - starts[visited[by_class]]
    chosen = order[torch.sort(rank * n + torch.arange(n)).indices[:size]]
    return torch.sort(chosen).values


def validation_split(dataset: ImageDataset, size: int, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """``(train_part, validation)``: a class-balanced ``size``-image validation set carved out of ``dataset``.

    Hyperparameters (e.g. each method's learning rate) are chosen on the validation part, never on the test
    set; the chosen values are then used to train on the whole training set. The choice of images is
    deterministic given ``seed`` (:func:`stratified_subsample_indices`); both parts keep ascending order.
    """
    check_int("size", size, low=1, high=len(dataset) - 1)  # images of the training set, one at least left
    chosen = stratified_subsample_indices(dataset.labels, size, seed)
    keep = torch.ones(len(dataset), dtype=torch.bool)
    keep[chosen] = False
    return dataset.subset(keep.nonzero().squeeze(1)), dataset.subset(chosen)


def with_label_noise(dataset: ImageDataset, fraction: float, seed: int = 0) -> ImageDataset:
    """A copy of ``dataset`` in which a ``fraction`` of the labels is replaced by a uniformly drawn *other* class.

    Symmetric label noise (e.g. ``fraction = 0.3``: 30 % of the training labels are wrong, every wrong class
    equally likely): the images stay, only the one-hot targets lie. Exactly ``round(fraction * N)`` samples are
    flipped, chosen from ``seed``; the test set should stay clean.
    """
    fraction = check_number("fraction", fraction, low=0, high=1)
    generator = torch.Generator().manual_seed(seed)
    n, k = len(dataset), dataset.num_classes
    flipped = torch.randperm(n, generator=generator)[: round(fraction * n)]
    labels = dataset.labels.clone()
    # an offset in 1 .. K-1 never maps a label onto itself
    offsets = torch.randint(1, k, (len(flipped),), generator=generator)
    labels[flipped] = (labels[flipped] + offsets) % k
    return ImageDataset(dataset.images, labels, dataset.class_names, dataset.superclass_names, dataset.fine_to_coarse)


def load_dataset(
    name: str,
    split: str,
    *,
    data_dir: str | Path = "data",
    size: int | None = None,
    seed: int = 0,
    download: bool = False,
    **options: Any,
) -> ImageDataset:
    """Load a data set split as an :class:`ImageDataset`.

    Args:
        name: ``"synthetic"`` (generated offline, see :mod:`wttm_core.data.synthetic`) or ``"cifar100"``.
        split: ``"train"`` or ``"test"``.
        data_dir: folder holding (or receiving) ``cifar-100-python``; unused by the synthetic set.
        size: number of samples to keep. CIFAR-100: a class-balanced subsample chosen deterministically from
            ``seed``. Synthetic: the number generated (default 50,000 train / 10,000 test); a smaller size
            gives exactly the first ``size`` samples of the default set.
        seed: synthetic generator seed; CIFAR-100 subsample seed.
        download: CIFAR-100 only: fetch the archive when it is missing.
        **options: source-specific options: ``difficulty`` and ``similarity`` for the synthetic set, ``check_md5``
            for CIFAR-100.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"name must be one of {list(DATASET_NAMES)}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    size = None if size is None else check_int("size", size, low=1)
    seed = check_int("seed", seed, low=0)
    if name == "synthetic":
        from .synthetic import make_synthetic

        return make_synthetic(split, size=size, seed=seed, **options)
    from .cifar100 import load_cifar100

    dataset = load_cifar100(split, data_dir=data_dir, download=download, **options)
    if size is not None:
        dataset = dataset.subset(stratified_subsample_indices(dataset.labels, size, seed))
    return dataset
