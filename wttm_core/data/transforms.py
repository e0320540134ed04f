"""Batched, on-device versions of the CIFAR-100 recipe's augmentation and normalisation.

The recipe (CRD, used by the TTM paper) trains with ``RandomCrop(32, padding=4)`` and
``RandomHorizontalFlip()`` followed by ``ToTensor()`` and ``Normalize(CIFAR100_MEAN, CIFAR100_STD)``. The
functions here compute exactly that on a whole uint8 batch at once, on whatever device the batch lives on:

* crop: zero-pad every side by ``padding`` pixels and cut a window at offsets ``(top, left)``, each uniform
  in ``0 .. 2 * padding`` independently per image (torchvision draws ``torch.randint(0, h - th + 1)``);
* flip: mirror left-right with probability 1/2 per image, after the crop (torchvision's order);
* normalise: ``(x / 255 - mean) / std`` computed with the same operations, in the same order, as
  ``Normalize(ToTensor(img))``, so on the CPU the floats agree bit for bit.

Drawing the random parameters (:func:`sample_crop_flip`) is separate from applying them
(:func:`crop_flip`), so a test can replay torchvision's per-image transforms with the very same offsets.
"""

from __future__ import annotations

import torch

from wttm_core._checks import check_int

#: Per-channel mean and standard deviation of the CIFAR-100 training images (RGB, 0..1 scale).
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4867, 0.4408)
CIFAR100_STD: tuple[float, float, float] = (0.2675, 0.2565, 0.2761)


def sample_crop_flip(
    n: int, *, padding: int = 4, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw augmentation parameters for ``n`` images on the CPU.

    Returns ``(offsets, flips)``: int64 [n, 2] crop offsets (top, left), each uniform in ``0 .. 2 * padding``,
    and bool [n] flip decisions with probability 1/2.
    """
    n = check_int("n", n, low=0)
    padding = check_int("padding", padding, low=0)
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return offsets, flips


def check_offsets(offsets: torch.Tensor, padding: int) -> None:
    """Check that crop offsets lie in ``0 .. 2 * padding`` (the windows stay inside the padded image)."""
    if offsets.numel() and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding):
        raise ValueError(f"offsets must lie in [0, {2 * padding}] for padding={padding}")


def crop_windows(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Cut a ``height`` x ``width`` window per image at its (top, left) offset, mirrored where ``flips``.

    ``images`` is [B, C, H, W] (H >= height + max top offset, likewise for W); the result is [B, C, height,
    width] with the input's dtype and device. Two ``gather`` passes (rows, then columns): about 2x faster
    on the CPU than one four-way advanced index (measured 2026-12-02: 512 uint8 images, 40 -> 32 px, one thread,
    15.5 vs 32.2 ms, AMD EPYC under load; the results are equal).
    """
    b, c = images.shape[:2]
    device = images.device
    offsets = offsets.to(device=device, dtype=torch.int64)
    flips = flips.to(device=device, dtype=torch.bool)
    rows = offsets[:, 0:1] + torch.arange(height, device=device)  # [B, height]
    ahead = torch.arange(width, device=device)
    # a flip after the crop reads the window's columns right to left
    cols = offsets[:, 1:2] + torch.where(flips[:, None], (width - 1) - ahead, ahead)  # [B, width]
    picked_rows = torch.gather(images, 2, rows[:, None, :, None].expand(b, c, height, images.shape[3]))
    return torch.gather(picked_rows, 3, cols[:, None, None, :].expand(b, c, height, width))


def crop_flip(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, *, padding: int = 4, validate: bool = True
) -> torch.Tensor:
    """Zero-pad, crop at per-image ``offsets`` (top, left) and mirror the images where ``flips`` is true.

    ``images`` is [B, C, H, W] of any dtype; the result has the same shape, dtype and device. Equivalent to
    ``hflip(crop(pad(img, padding), top, left, H, W))`` applied image by image. ``validate=False`` skips the
    range check of ``offsets``, which reads values back from their device (a GPU loader checks an epoch's
    offsets once, on the CPU, instead of synchronising every batch).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    b, _, h, w = images.shape
    if tuple(offsets.shape) != (b, 2):
        raise ValueError(f"offsets must have shape ({b}, 2), got {tuple(offsets.shape)}")
    if tuple(flips.shape) != (b,):
        raise ValueError(f"flips must have shape ({b},), got {tuple(flips.shape)}")
    padding = check_int("padding", padding, low=0)
    if validate:
        check_offsets(offsets, padding)
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    return crop_windows(padded, offsets, flips, h, w)


def normalize(
    images: torch.Tensor,
    mean: tuple[float, ...] | torch.Tensor = CIFAR100_MEAN,
    std: tuple[float, ...] | torch.Tensor = CIFAR100_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float ``(x / 255 - mean) / std``, as ``Normalize(ToTensor(img))`` computes it.

    ``mean`` and ``std`` may be tensors already on the images' device in ``dtype`` (no copy per call then).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    if len(mean) != images.shape[1] or len(std) != images.shape[1]:
        raise ValueError(f"mean and std need {images.shape[1]} entries, got {len(mean)} and {len(std)}")
    m = torch.as_tensor(mean, dtype=dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=dtype, device=images.device).view(1, -1, 1, 1)
    return images.to(dtype).div(255).sub(m).div(s)
