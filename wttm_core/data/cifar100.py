"""Real CIFAR-100 (50,000 train / 10,000 test images, 32 x 32 RGB, 100 classes in 20 superclasses).

Design, decided once:

* Downloading and verifying use torchvision: the release URL and MD5 digests it records
  (``torchvision.datasets.CIFAR100``) and its ``download_and_extract_archive`` / ``check_integrity``
  helpers. The archive is fetched and unpacked into a temporary folder inside ``data_dir``, every file's
  digest is checked, and only then is the finished ``cifar-100-python`` folder moved into place with one
  ``os.replace``: an interrupted download never leaves a half-written data set behind.
* Loading reads the three standard pickles (``train``, ``test``, ``meta``) directly with a restricted
  unpickler that accepts only the few globals those files need (numpy's array reconstruction and
  ``_codecs.encode``), so a tampered file cannot run code. Reading them ourselves, rather than through
  ``torchvision.datasets.CIFAR100``, also keeps the coarse labels, which torchvision drops, and lets a folder
  in the exact on-disk format but with other contents (the tests' small generated archive, a user's own
  subset) load without MD5 failures; pass ``check_md5=True`` to insist on the published files.
* The arrays are converted once into a uint8 :class:`~wttm_core.data.dataset.ImageDataset`; nothing is
  cached on disk.
"""

from __future__ import annotations

import codecs
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.datasets import CIFAR100
from torchvision.datasets.utils import check_integrity, download_and_extract_archive

from .dataset import ImageDataset

FOLDER = CIFAR100.base_folder  # "cifar-100-python"
SPLIT_FILES: dict[str, str] = {"train": "train", "test": "test"}
META_FILE = "meta"

#: file name -> published MD5 digest, as torchvision records them
PUBLISHED_MD5: dict[str, str] = {
    **{name: md5 for name, md5 in CIFAR100.train_list + CIFAR100.test_list},
    CIFAR100.meta["filename"]: CIFAR100.meta["md5"],
}

# numpy's array-rebuilding function (numpy.core.multiarray._reconstruct, moved to numpy._core in numpy 2)
_RECONSTRUCT = np.empty(0).__reduce__()[0]
# the only globals the CIFAR-100 pickles reference; Python 3 writes bytes in protocol 2 via _codecs.encode
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("_codecs", "encode"): codecs.encode,
}


class DatasetNotFoundError(FileNotFoundError):
    """The data set is not on disk (and could not be downloaded); the message says where to put it."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: not part of the CIFAR-100 file format"
            ) from None


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            content = _RestrictedUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path} is not a valid CIFAR-100 pickle ({error}); delete the folder and download again"
        ) from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a valid CIFAR-100 pickle (expected a dict, got {type(content).__name__})")
    return content


def _not_found_message(root: Path, missing: list[str]) -> str:
    root = root.resolve()
    folder = root / FOLDER
    return (
        f"CIFAR-100 not found: {folder} is missing {', '.join(missing)}. Place the folder '{FOLDER}' in "
        f"{root}: download {CIFAR100.url} and extract it there (so that {folder / 'train'} exists), or pass "
        f"download=True on a machine with internet access. Offline, the synthetic data set "
        f"(name='synthetic') needs no files."
    )


def _missing_files(folder: Path) -> list[str]:
    return [name for name in (*SPLIT_FILES.values(), META_FILE) if not (folder / name).is_file()]


def download_cifar100(
    data_dir: str | Path = "data",
    *,
    url: str = CIFAR100.url,
    archive_md5: str | None = CIFAR100.tgz_md5,
    file_md5: dict[str, str] | None = None,
) -> Path:
    """Download, verify and unpack CIFAR-100 into ``data_dir / "cifar-100-python"`` atomically.

    ``url`` and the digests default to torchvision's record of the official release (``file_md5`` defaults to
    :data:`PUBLISHED_MD5`; pass other values only to mirror or test). Returns the folder. Raises
    :class:`DatasetNotFoundError` with placement instructions when the download fails (for example offline).
    """
    root = Path(data_dir)
    folder = root / FOLDER
    if not _missing_files(folder):
        return folder
    digests = PUBLISHED_MD5 if file_md5 is None else file_md5
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cifar100-download-", dir=root))
    try:
        try:
            download_and_extract_archive(url, str(staging), filename=Path(url).name, md5=archive_md5)
        except Exception as error:  # network errors come in many types (URLError, OSError, RuntimeError, ...)
            raise DatasetNotFoundError(
                f"{_not_found_message(root, _missing_files(folder))} (download from {url} failed: {error})"
            ) from error
        unpacked = staging / FOLDER
        for name, md5 in digests.items():
            if not check_integrity(str(unpacked / name), md5):
                raise ValueError(f"downloaded file {name} failed its MD5 check (expected {md5}); try again")
        if folder.exists():  # an incomplete earlier copy: replace it as a whole
            shutil.rmtree(folder)
        os.replace(unpacked, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _labels(raw: dict[str, Any], key: str, count: int, upper: int, path: Path) -> torch.Tensor:
    values = raw.get(key)
    if values is None or len(values) != count:
        raise ValueError(f"{path}: '{key}' must list {count} labels")
    labels = torch.as_tensor(np.asarray(values, dtype=np.int64))
    if count and (int(labels.min()) < 0 or int(labels.max()) >= upper):
        raise ValueError(f"{path}: '{key}' must lie in [0, {upper - 1}]")
    return labels


def load_cifar100(
    split: str, *, data_dir: str | Path = "data", download: bool = False, check_md5: bool = False
) -> ImageDataset:
    """Load a CIFAR-100 split from ``data_dir / "cifar-100-python"`` as a uint8 :class:`ImageDataset`.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: the folder that holds ``cifar-100-python``.
        download: fetch the data set first when it is missing (needs internet access).
        check_md5: verify the files against the published digests before loading.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {list(SPLIT_FILES)}, got {split!r}")
    root = Path(data_dir)
    folder = root / FOLDER
    if download:
        download_cifar100(root)
    missing = _missing_files(folder)
    if missing:
        raise DatasetNotFoundError(_not_found_message(root, missing))
    if check_md5:
        for name in (SPLIT_FILES[split], META_FILE):
            if not check_integrity(str(folder / name), PUBLISHED_MD5[name]):
                raise ValueError(f"{folder / name} does not match the published MD5 {PUBLISHED_MD5[name]}")

    meta_path = folder / META_FILE
    meta = _read_pickle(meta_path)
    class_names = [str(n) for n in meta.get("fine_label_names", [])]
    superclass_names = [str(n) for n in meta.get("coarse_label_names", [])]
    if not class_names or not superclass_names:
        raise ValueError(f"{meta_path} must hold 'fine_label_names' and 'coarse_label_names'")

    path = folder / SPLIT_FILES[split]
    raw = _read_pickle(path)
    data = raw.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be a uint8 array [N, 3072]")
    count = data.shape[0]
    labels = _labels(raw, "fine_labels", count, len(class_names), path)
    coarse = _labels(raw, "coarse_labels", count, len(superclass_names), path)

    fine_to_coarse = torch.full((len(class_names),), -1, dtype=torch.int64)
    fine_to_coarse[labels] = coarse
    if not torch.equal(fine_to_coarse[labels], coarse):
        raise ValueError(f"{path}: a fine class appears under two different coarse labels")
    absent = (fine_to_coarse < 0).nonzero().flatten().tolist()
    if absent:
        raise ValueError(f"{path}: classes {absent[:5]} never occur, so their superclass is unknown")

    # each row is 1024 red, 1024 green, 1024 blue values, each plane row-major 32 x 32
    images = torch.from_numpy(np.ascontiguousarray(data.reshape(count, 3, 32, 32))).clone()
    return ImageDataset(
        images=images,
        labels=labels,
        class_names=class_names,
        superclass_names=superclass_names,
        fine_to_coarse=fine_to_coarse,
    )
