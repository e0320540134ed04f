"""Two ways to feed an :class:`~wttm_core.data.dataset.ImageDataset` to a network.

* :class:`DeviceLoader` (airbench style): the whole uint8 data set lives on the training device; every
  batch is gathered, cropped, flipped and normalised there with batched tensor operations. No worker
  processes, no PIL, no host-to-device copies per step. All random numbers (shuffle order, crop offsets,
  flips) are drawn on the CPU from a generator seeded by ``(seed, epoch)``, so a run is reproducible, the
  same on CPU and CUDA, and resumable at any epoch boundary with :meth:`DeviceLoader.set_epoch`.
* :func:`reference_loader`: the classic ``torch.utils.data.DataLoader`` with per-image PIL transforms from
  torchvision, as the CRD/TTM reference code trains. It is the baseline the device loader is checked and
  timed against.

Both apply the recipe's augmentation (random crop 32 with zero padding 4, horizontal flip) for training and
normalise with the CIFAR-100 mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from wttm_core._checks import check_int

from .dataset import ImageDataset
from .transforms import CIFAR100_MEAN, CIFAR100_STD, check_offsets, crop_flip, normalize, sample_crop_flip

PADDING = 4


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class DeviceLoader:
    """Batches of ``(images float [B, 3, H, W] normalised, labels int64 [B])`` computed on ``device``.

    Args:
        dataset: the data set; its uint8 images are copied to ``device`` once.
        batch_size: images per batch.
        train: shuffle every epoch and apply random crop (zero padding 4) + horizontal flip; if false, the
            samples come in data set order without augmentation.
        augment: override whether training batches are augmented (default: ``train``), e.g. to measure
            what crop + flip buy; ignored when ``train`` is false.
        device: where the data and the batches live (default CPU).
        seed: base seed; epoch ``e`` draws from a generator seeded by ``(seed, e)``.
        drop_last: drop the final incomplete batch.
        memory_format: memory format of the yielded images (``torch.channels_last`` speeds up CPU and GPU
            convolutions).

    Iterating yields one epoch; after a complete pass the epoch counter advances by one. Call
    :meth:`set_epoch` to choose the epoch explicitly (for example when resuming from a checkpoint).
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        train: bool,
        augment: bool | None = None,
        device: torch.device | str | None = None,
        seed: int = 0,
        drop_last: bool = False,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        if not isinstance(dataset, ImageDataset):
            raise TypeError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.train = bool(train)
        self.augment = self.train if augment is None else bool(augment) and self.train
        self.drop_last = bool(drop_last)
        self.memory_format = memory_format
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.images = dataset.images.to(self.device)
        self.labels = dataset.labels.to(self.device)
        self._mean = torch.tensor(CIFAR100_MEAN, device=self.device)
        self._std = torch.tensor(CIFAR100_STD, device=self.device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle order and augmentation the next iteration uses."""
        self.epoch = check_int("epoch", epoch, low=0)

    @property
    def num_samples(self) -> int:
        """Samples per epoch (before ``drop_last``)."""
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def _epoch_plan(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """This epoch's sample order and (for training) crop offsets and flips, drawn on the CPU."""
        n = int(self.labels.shape[0])
        if not self.train:
            return torch.arange(n), None, None
        generator = _epoch_generator(self.seed, self.epoch)
        order = torch.randperm(n, generator=generator)
        if not self.augment:
            return order, None, None
        offsets, flips = sample_crop_flip(order.numel(), padding=PADDING, generator=generator)
        check_offsets(offsets, PADDING)  # once per epoch, on the CPU: the batches then skip the check
        return order, offsets, flips

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self._epoch_plan()
        order = order.to(self.device)
        if offsets is not None and flips is not None:
            offsets, flips = offsets.to(self.device), flips.to(self.device)
        for b in range(len(self)):
            batch = slice(b * self.batch_size, (b + 1) * self.batch_size)
            index = order[batch]
            images = self.images[index]
            if offsets is not None and flips is not None:
                images = crop_flip(images, offsets[batch], flips[batch], padding=PADDING, validate=False)
            images = normalize(images, self._mean, self._std).contiguous(memory_format=self.memory_format)
            yield images, self.labels[index]
        self.epoch += 1


class _PILImages(Dataset):
    """Map-style dataset yielding ``(transform(PIL image), label)`` like torchvision's CIFAR100.

    torchvision's random transforms draw from torch's global generator. In worker processes the DataLoader
    seeds that generator from its own seeded ``generator``; in the main process (``num_workers=0``) each
    sample's transform runs under a forked global RNG seeded from this dataset's private generator, so the
    augmentation is reproducible without touching the caller's random state.
    """

    def __init__(self, dataset: ImageDataset, transform: T.Compose, seed: int) -> None:
        self.images = dataset.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = dataset.labels.tolist()
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index])
        if torch.utils.data.get_worker_info() is not None:
            return self.transform(image), self.labels[index]
        sample_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed)
            return self.transform(image), self.labels[index]


def reference_transform(train: bool) -> T.Compose:
    """The recipe's torchvision pipeline for PIL images (train: crop + flip; always ToTensor + Normalize)."""
    steps: list[object] = []
    if train:
        steps += [T.RandomCrop(32, padding=PADDING), T.RandomHorizontalFlip()]
    steps += [T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)]
    return T.Compose(steps)


def reference_loader(
    dataset: ImageDataset, batch_size: int, *, train: bool, num_workers: int = 0, seed: int = 0
) -> DataLoader:
    """A reference-style ``DataLoader`` with per-image PIL/torchvision transforms, shuffled when ``train``.

    Yields ``(images float [B, 3, 32, 32], labels int64 [B])`` on the CPU; deterministic given ``seed``.
    """
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
    batch_size = check_int("batch_size", batch_size, low=1)
    num_workers = check_int("num_workers", num_workers, low=0)
    seed = check_int("seed", seed, low=0)
    return DataLoader(
        _PILImages(dataset, reference_transform(train), seed + 1),
        batch_size=batch_size,
        shuffle=train,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )
