"""Data for the lab: real CIFAR-100, its offline synthetic stand-in, and two loaders.

``load_dataset(name, split, ...)`` returns an :class:`ImageDataset` (uint8 images, labels, class hierarchy)
for either source; :class:`DeviceLoader` trains from it with on-device augmentation, and
:func:`reference_loader` with the classic per-image torchvision pipeline.
"""

from .cifar100 import DatasetNotFoundError, download_cifar100, load_cifar100
from .dataset import (
    DATASET_NAMES,
    SPLITS,
    ImageDataset,
    load_dataset,
    stratified_subsample_indices,
    validation_split,
    with_label_noise,
)
from .loader import DeviceLoader, reference_loader, reference_transform
from .names import (
    CIFAR100_CLASS_NAMES,
    CIFAR100_SUPERCLASS_NAMES,
    SUPERCLASS_MEMBERS,
    cifar100_fine_to_coarse,
)
from .synthetic import (
    DEFAULT_DIFFICULTY,
    DEFAULT_SIMILARITY,
    SUPERCLASS_FAMILIES,
    family_statistics,
    make_synthetic,
    make_synthetic_with_latents,
    superclass_family,
    synthetic_prototypes,
)
from .transforms import CIFAR100_MEAN, CIFAR100_STD, crop_flip, crop_windows, normalize, sample_crop_flip

__all__ = [
    "CIFAR100_CLASS_NAMES",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CIFAR100_SUPERCLASS_NAMES",
    "DATASET_NAMES",
    "DEFAULT_DIFFICULTY",
    "DEFAULT_SIMILARITY",
    "SUPERCLASS_FAMILIES",
    "SPLITS",
    "SUPERCLASS_MEMBERS",
    "DatasetNotFoundError",
    "DeviceLoader",
    "ImageDataset",
    "cifar100_fine_to_coarse",
    "crop_flip",
    "crop_windows",
    "download_cifar100",
    "family_statistics",
    "load_cifar100",
    "load_dataset",
    "make_synthetic",
    "make_synthetic_with_latents",
    "normalize",
    "reference_loader",
    "reference_transform",
    "sample_crop_flip",
    "stratified_subsample_indices",
    "superclass_family",
    "validation_split",
    "with_label_noise",
    "synthetic_prototypes",
]
