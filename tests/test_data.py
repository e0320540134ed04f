"""Tests for wttm_core.data: names, ImageDataset, CIFAR-100 files, synthetic set, transforms, loaders."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import pickle
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms as T

from wttm_core.data import (
    CIFAR100_CLASS_NAMES,
    CIFAR100_MEAN,
    CIFAR100_STD,
    CIFAR100_SUPERCLASS_NAMES,
    SUPERCLASS_MEMBERS,
    DatasetNotFoundError,
    DeviceLoader,
    ImageDataset,
    cifar100_fine_to_coarse,
    crop_flip,
    download_cifar100,
    load_dataset,
    make_synthetic,
    make_synthetic_with_latents,
    normalize,
    reference_loader,
    sample_crop_flip,
    stratified_subsample_indices,
    synthetic_prototypes,
)

# ----------------------------------------------------------------------------------------------------
# names


def test_cifar100_names_and_hierarchy() -> None:
    assert len(CIFAR100_CLASS_NAMES) == len(set(CIFAR100_CLASS_NAMES)) == 100
    assert len(CIFAR100_SUPERCLASS_NAMES) == 20
    assert list(CIFAR100_CLASS_NAMES) == sorted(CIFAR100_CLASS_NAMES)
    f2c = cifar100_fine_to_coarse()
    assert f2c.dtype == torch.int64 and torch.equal(torch.bincount(f2c), torch.full((20,), 5))
    # first ten entries of the published mapping: apple, aquarium_fish, baby, bear, beaver, bed, bee, beetle,
    # bicycle, bottle
    assert f2c[:10].tolist() == [4, 1, 14, 8, 0, 6, 7, 7, 18, 3]
    for coarse, members in SUPERCLASS_MEMBERS.items():
        for name in members:
            assert CIFAR100_SUPERCLASS_NAMES[f2c[CIFAR100_CLASS_NAMES.index(name)]] == coarse


# ----------------------------------------------------------------------------------------------------
# ImageDataset and load_dataset argument checking


def _tiny_dataset(n: int = 6) -> ImageDataset:
    return ImageDataset(
        images=torch.zeros(n, 3, 32, 32, dtype=torch.uint8),
        labels=torch.arange(n, dtype=torch.int64) % 100,
        class_names=list(CIFAR100_CLASS_NAMES),
        superclass_names=list(CIFAR100_SUPERCLASS_NAMES),
        fine_to_coarse=cifar100_fine_to_coarse(),
    )


def test_image_dataset_validates_its_fields() -> None:
    good = _tiny_dataset()
    assert len(good) == 6 and good.num_classes == 100
    assert torch.equal(good.coarse_labels, cifar100_fine_to_coarse()[:6])
    fields = dict(
        images=good.images,
        labels=good.labels,
        class_names=good.class_names,
        superclass_names=good.superclass_names,
        fine_to_coarse=good.fine_to_coarse,
    )
    with pytest.raises(TypeError, match="images"):
        ImageDataset(**{**fields, "images": good.images.float()})
    with pytest.raises(TypeError, match="labels"):
        ImageDataset(**{**fields, "labels": good.labels.int()})
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(**{**fields, "labels": good.labels[:5]})
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(**{**fields, "labels": good.labels + 99})
    with pytest.raises(TypeError, match="fine_to_coarse"):
        ImageDataset(**{**fields, "fine_to_coarse": good.fine_to_coarse[:50]})
    assert repr(good) == "ImageDataset(images=uint8[6, 3, 32, 32], classes=100, superclasses=20)"
    sub = good.subset([4, 1])
    assert sub.labels.tolist() == [4, 1] and sub.class_names is good.class_names


def test_load_dataset_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"name.*synthetic.*cifar100.*'imagenet'"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="split"):
        load_dataset("synthetic", "validation")
    with pytest.raises(ValueError, match="size"):
        load_dataset("synthetic", "train", size=0)
    with pytest.raises(ValueError, match="seed"):
        load_dataset("synthetic", "train", seed=-1)
    with pytest.raises(ValueError, match="difficulty"):
        load_dataset("synthetic", "train", size=10, difficulty=-0.5)
    with pytest.raises(TypeError, match="colour"):
        load_dataset("synthetic", "train", size=10, colour=True)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=30), min_size=2, max_size=8),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_stratified_subsample_is_balanced_and_deterministic(counts: list[int], fraction: float, seed: int) -> None:
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    size = max(1, int(fraction * len(labels)))
    chosen = stratified_subsample_indices(labels, size, seed)
    assert torch.equal(chosen, stratified_subsample_indices(labels, size, seed))
    assert len(chosen) == size and len(set(chosen.tolist())) == size
    assert torch.equal(chosen, torch.sort(chosen).values)
    taken = torch.bincount(labels[chosen], minlength=len(counts))
    # round-robin over classes: a class is short of the largest count only when it ran out of samples
    available = torch.tensor(counts)
    assert bool(((taken >= taken.max() - 1) | (taken == available)).all())


def test_stratified_subsample_rejects_oversize() -> None:
    with pytest.raises(ValueError, match="size"):
        stratified_subsample_indices(torch.zeros(5, dtype=torch.int64), 6, 0)


# ----------------------------------------------------------------------------------------------------
# CIFAR-100 in its exact on-disk format


def _write_pickle(path: Path, content: dict) -> None:
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)


def write_cifar100_folder(root: Path, per_class: dict[str, int], seed: int = 0) -> dict[str, dict]:
    """Write ``root/cifar-100-python/{train,test,meta}`` like the official release; return the contents."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    f2c = cifar100_fine_to_coarse().numpy()
    contents: dict[str, dict] = {}
    for split, k in per_class.items():
        fine = rng.permutation(np.repeat(np.arange(100), k))
        contents[split] = {
            "filenames": [f"img_{i:05d}.png" for i in range(len(fine))],
            "batch_label": f"{split}ing batch 1 of 1",
            "fine_labels": fine.tolist(),
            "coarse_labels": f2c[fine].tolist(),
            "data": rng.integers(0, 256, size=(len(fine), 3072), dtype=np.uint8),
        }
        _write_pickle(folder / split, contents[split])
    _write_pickle(
        folder / "meta",
        {
            "fine_label_names": list(CIFAR100_CLASS_NAMES),
            "coarse_label_names": list(CIFAR100_SUPERCLASS_NAMES),
        },
    )
    return contents


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    root = tmp_path_factory.mktemp("cifar")
    return root, write_cifar100_folder(root, {"train": 3, "test": 1})


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar100_loads_the_on_disk_format(cifar_dir: tuple[Path, dict[str, dict]], split: str) -> None:
    root, contents = cifar_dir
    data = load_dataset("cifar100", split, data_dir=root)
    raw = contents[split]
    assert data.images.dtype == torch.uint8 and data.images.shape == (len(raw["data"]), 3, 32, 32)
    assert data.labels.tolist() == raw["fine_labels"]
    assert data.class_names == list(CIFAR100_CLASS_NAMES)
    assert data.superclass_names == list(CIFAR100_SUPERCLASS_NAMES)
    assert torch.equal(data.fine_to_coarse, cifar100_fine_to_coarse())
    assert data.coarse_labels.tolist() == raw["coarse_labels"]
    # pixel layout: 1024 red, then green, then blue values, each a row-major 32 x 32 plane
    i = 7
    assert data.images[i, 0, 0, 1] == raw["data"][i, 1]
    assert data.images[i, 1, 2, 0] == raw["data"][i, 1024 + 64]
    assert data.images[i, 2, 31, 31] == raw["data"][i, 3071]
    # the PIL image torchvision's CIFAR100 would build for sample i
    hwc = raw["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)[i]
    assert np.array_equal(np.asarray(Image.fromarray(hwc)), data.images[i].permute(1, 2, 0).numpy())


def test_cifar100_subsample_is_stratified(cifar_dir: tuple[Path, dict[str, dict]]) -> None:
    root, _ = cifar_dir
    sub = load_dataset("cifar100", "train", data_dir=root, size=200, seed=3)
    assert torch.equal(torch.bincount(sub.labels, minlength=100), torch.full((100,), 2))
    again = load_dataset("cifar100", "train", data_dir=root, size=200, seed=3)
    assert torch.equal(sub.images, again.images)
    other = load_dataset("cifar100", "train", data_dir=root, size=200, seed=4)
    assert not torch.equal(sub.images, other.images)
    with pytest.raises(ValueError, match="size"):
        load_dataset("cifar100", "train", data_dir=root, size=301)


def test_cifar100_missing_folder_names_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar100", "train", data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert isinstance(info.value, DatasetNotFoundError)
    assert str(tmp_path / "nowhere" / "cifar-100-python") in message
    assert "cifar-100-python.tar.gz" in message and "download=True" in message


def test_cifar100_refuses_files_that_are_not_the_published_ones(
    cifar_dir: tuple[Path, dict[str, dict]],
) -> None:
    root, _ = cifar_dir
    with pytest.raises(ValueError, match="MD5"):
        load_dataset("cifar100", "test", data_dir=root, check_md5=True)


def test_cifar100_rejects_malformed_data(tmp_path: Path) -> None:
    write_cifar100_folder(tmp_path, {"train": 3, "test": 1})
    path = tmp_path / "cifar-100-python" / "test"
    raw = pickle.load(open(path, "rb"))
    _write_pickle(path, {**raw, "data": raw["data"][:, :3000]})
    with pytest.raises(ValueError, match="data"):
        load_dataset("cifar100", "test", data_dir=tmp_path)
    _write_pickle(path, {**raw, "fine_labels": [100] * len(raw["fine_labels"])})
    with pytest.raises(ValueError, match="fine_labels"):
        load_dataset("cifar100", "test", data_dir=tmp_path)
    path = tmp_path / "cifar-100-python" / "train"
    raw = pickle.load(open(path, "rb"))
    # three samples per class: a fine class filed under two superclasses is a corrupted file
    _write_pickle(path, {**raw, "coarse_labels": [i % 20 for i in range(len(raw["fine_labels"]))]})
    with pytest.raises(ValueError, match="coarse"):
        load_dataset("cifar100", "train", data_dir=tmp_path)


class _Payload:
    """Unpickling this would create the marker file (if the loader ran pickled code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_cifar100_never_runs_code_from_a_pickle(tmp_path: Path) -> None:
    write_cifar100_folder(tmp_path, {"train": 1, "test": 1})
    marker = tmp_path / "pwned"
    meta = tmp_path / "cifar-100-python" / "meta"
    _write_pickle(meta, {"fine_label_names": _Payload(marker), "coarse_label_names": []})
    with pytest.raises(ValueError, match="refusing"):
        load_dataset("cifar100", "test", data_dir=tmp_path)
    assert not marker.exists()


def _tar_folder(root: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "cifar-100-python", arcname="cifar-100-python")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture()
def served_archive(tmp_path: Path):
    """A CIFAR-100-format archive served over HTTP on 127.0.0.1; yields (url, archive md5, file md5s)."""
    source = tmp_path / "source"
    write_cifar100_folder(source, {"train": 1, "test": 1}, seed=5)
    site = tmp_path / "site"
    site.mkdir()
    archive = site / "cifar-100-python.tar.gz"
    _tar_folder(source, archive)
    digests = {name: _md5(source / "cifar-100-python" / name) for name in ("train", "test", "meta")}
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{archive.name}", _md5(archive), digests
    finally:
        server.shutdown()
        server.server_close()


def test_cifar100_download_verifies_and_places_the_folder_atomically(tmp_path: Path, served_archive) -> None:
    url, archive_md5, digests = served_archive
    dest = tmp_path / "data"
    bad = {**digests, "train": "0" * 32}
    with pytest.raises(ValueError, match="MD5"):
        download_cifar100(dest, url=url, archive_md5=archive_md5, file_md5=bad)
    assert os.listdir(dest) == []  # nothing half-written: no folder, no staging leftovers
    folder = download_cifar100(dest, url=url, archive_md5=archive_md5, file_md5=digests)
    assert folder == dest / "cifar-100-python" and os.listdir(dest) == ["cifar-100-python"]
    assert len(load_dataset("cifar100", "test", data_dir=dest)) == 100


def test_cifar100_download_offline_says_where_to_put_the_files(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the download fails at once, like offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python") as info:
        download_cifar100(tmp_path, url=f"http://127.0.0.1:{port}/cifar-100-python.tar.gz")
    assert str(tmp_path) in str(info.value) and "failed" in str(info.value)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------------
# synthetic data set


def test_synthetic_split_format_and_hierarchy() -> None:
    data = make_synthetic("train", size=1000)
    assert data.images.dtype == torch.uint8 and data.images.shape == (1000, 3, 32, 32)
    assert data.labels.dtype == torch.int64
    assert torch.equal(torch.bincount(data.labels, minlength=100), torch.full((100,), 10))  # balanced chunks
    assert data.class_names == list(CIFAR100_CLASS_NAMES)
    assert data.superclass_names == list(CIFAR100_SUPERCLASS_NAMES)
    assert torch.equal(data.fine_to_coarse, cifar100_fine_to_coarse())
    assert 20 < data.images.float().std() < 120  # neither blank nor saturated


def test_synthetic_is_deterministic_and_prefix_stable() -> None:
    a = load_dataset("synthetic", "train", size=1300, seed=4)
    b = load_dataset("synthetic", "train", size=1300, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    head = load_dataset("synthetic", "train", size=1050, seed=4)  # spans a chunk boundary too
    assert torch.equal(head.images, a.images[:1050]) and torch.equal(head.labels, a.labels[:1050])
    other = load_dataset("synthetic", "train", size=1300, seed=5)
    assert not torch.equal(a.images, other.images)


def test_synthetic_train_and_test_share_prototypes_not_noise() -> None:
    train = make_synthetic("train", size=1000, seed=2)
    test = make_synthetic("test", size=1000, seed=2)
    assert not torch.equal(train.images, test.images)
    flat_train = train.images.reshape(1000, -1)
    flat_test = test.images.reshape(1000, -1)
    assert not {bytes(row.numpy()) for row in flat_train} & {bytes(row.numpy()) for row in flat_test}
    # shared prototypes: a class's mean training image is nearest to a test class-mean of its own superclass
    # (the class textures average out over random shifts and flips; the smooth superclass pattern does not)
    mean_train = torch.stack([flat_train[train.labels == k].float().mean(0) for k in range(100)])
    mean_test = torch.stack([flat_test[test.labels == k].float().mean(0) for k in range(100)])
    nearest = torch.cdist(mean_train, mean_test).argmin(1)
    assert (train.fine_to_coarse[nearest] == train.fine_to_coarse).float().mean() > 0.9  # chance: 0.05


def test_synthetic_siblings_share_structure() -> None:
    """Class means of one superclass are much closer to each other than to other superclasses' classes."""
    data = make_synthetic("train", size=2000, difficulty=0.0)
    flat = data.images.reshape(len(data), -1).float()
    means = torch.stack([flat[data.labels == k].mean(0) for k in range(100)])
    distance = torch.cdist(means, means)
    coarse = data.fine_to_coarse
    same = (coarse[:, None] == coarse[None, :]) & ~torch.eye(100, dtype=torch.bool)
    different = coarse[:, None] != coarse[None, :]
    assert distance[same].mean() < 0.5 * distance[different].mean()


def test_synthetic_difficulty_scales_the_nuisance() -> None:
    spread = []
    for difficulty in (0.0, 1.0, 2.0):
        data = make_synthetic("test", size=1000, seed=1, difficulty=difficulty)
        # high-pass residual: clutter and sensor noise dominate the difference between neighbouring pixels
        image = data.images.float()
        spread.append((image[..., 1:] - image[..., :-1]).std().item())
    assert spread[0] < spread[1] < spread[2]


def test_synthetic_latents_describe_the_blends() -> None:
    data, latents = make_synthetic_with_latents("train", size=2000, seed=3)
    assert torch.equal(data.images, make_synthetic("train", size=2000, seed=3).images)
    blended = latents["sibling_weight"] > 0
    # a quarter of the images at difficulty 1 (binomial sd 0.0097)
    assert abs(blended.double().mean().item() - 0.25) < 0.04
    weight = latents["sibling_weight"][blended]
    assert weight.min() >= 0.3 and weight.max() <= 0.7
    sibling, labels = latents["sibling"], data.labels
    assert bool((sibling[blended] != labels[blended]).all()) and torch.equal(sibling[~blended], labels[~blended])
    assert torch.equal(data.fine_to_coarse[sibling], data.coarse_labels)  # blends stay inside the superclass
    assert latents["offsets"].min() >= 0 and latents["offsets"].max() <= 8
    assert set(latents) == {"sibling", "sibling_weight", "strength", "offsets", "flips"}
    _, easy = make_synthetic_with_latents("train", size=500, seed=3, difficulty=0.0)
    assert not bool((easy["sibling_weight"] > 0).any())


def test_synthetic_with_latents_takes_the_options_of_make_synthetic() -> None:
    options = {"size": 120, "seed": 2, "difficulty": 0.5, "similarity": 0.2}
    data, _ = make_synthetic_with_latents("test", **options)
    plain = make_synthetic("test", **options)
    assert torch.equal(data.images, plain.images) and torch.equal(data.labels, plain.labels)
    with pytest.raises(TypeError, match="make_synthetic_with_latents.*'colour'"):
        make_synthetic_with_latents("test", colour=True)
    with pytest.raises(ValueError, match="size"):
        make_synthetic_with_latents("test", size=0)


def test_synthetic_prototypes_are_shared_by_seed() -> None:
    a, b, c = synthetic_prototypes(0), synthetic_prototypes(0), synthetic_prototypes(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fine"], c["fine"])
    assert a["superclass"].shape == (20, 3, 40, 40) and a["fine"].shape == (100, 3, 40, 40)


# ----------------------------------------------------------------------------------------------------
# transforms: parity with torchvision


def _pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def test_normalize_is_bitwise_torchvision() -> None:
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    reference = T.Compose([T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)])
    expected = torch.stack([reference(_pil(img)) for img in images])
    assert torch.equal(normalize(images), expected)
    with pytest.raises(TypeError, match="uint8"):
        normalize(images.float())


def test_crop_flip_equals_torchvision_for_every_offset() -> None:
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    grid = torch.cartesian_prod(torch.arange(9), torch.arange(9), torch.arange(2))
    offsets, flips = grid[:, :2], grid[:, 2].bool()
    ours = crop_flip(image.expand(len(grid), -1, -1, -1), offsets, flips)
    for k, ((top, left), flip) in enumerate(zip(offsets.tolist(), flips.tolist(), strict=True)):
        reference = TF.crop(TF.pad(_pil(image), 4), top, left, 32, 32)
        if flip:
            reference = TF.hflip(reference)
        assert np.array_equal(np.asarray(reference), ours[k].permute(1, 2, 0).numpy()), (top, left, flip)


def test_crop_replays_torchvision_random_crop() -> None:
    """torchvision's RandomCrop draws (top, left) by get_params; replaying the draw gives our crop exactly."""
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    crop = T.RandomCrop(32, padding=4)
    for seed in range(20):
        torch.manual_seed(seed)
        reference = np.asarray(crop(_pil(image)))
        torch.manual_seed(seed)
        top, left, _, _ = T.RandomCrop.get_params(TF.pad(_pil(image), 4), (32, 32))
        ours = crop_flip(image[None], torch.tensor([[top, left]]), torch.tensor([False]))[0]
        assert np.array_equal(reference, ours.permute(1, 2, 0).numpy())


def test_crop_flip_rejects_bad_shapes() -> None:
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError, match="offsets"):
        crop_flip(images, torch.zeros(3, 2, dtype=torch.int64), torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="flips"):
        crop_flip(images, torch.zeros(4, 2, dtype=torch.int64), torch.zeros(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="offsets"):
        crop_flip(images, torch.full((4, 2), 9), torch.zeros(4, dtype=torch.bool))


# ----------------------------------------------------------------------------------------------------
# loaders


def _coordinate_dataset(n: int) -> ImageDataset:
    """Images whose pixels encode their own position: red = 100 + row, green = 100 + column, blue = 7."""
    span = torch.arange(32, dtype=torch.uint8) + 100
    image = torch.stack([span[:, None].expand(32, 32), span[None, :].expand(32, 32), torch.full((32, 32), 7)])
    return ImageDataset(
        images=image.to(torch.uint8).expand(n, -1, -1, -1).contiguous(),
        labels=torch.arange(n, dtype=torch.int64) % 100,
        class_names=list(CIFAR100_CLASS_NAMES),
        superclass_names=list(CIFAR100_SUPERCLASS_NAMES),
        fine_to_coarse=cifar100_fine_to_coarse(),
    )


def _decode_augmentation(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recover (offsets [B, 2], flips [B]) from normalised coordinate images (the centre is never padding)."""
    mean = torch.tensor(CIFAR100_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR100_STD).view(1, 3, 1, 1)
    pixels = ((batch * std + mean) * 255).round().long()
    flips = pixels[:, 1, 16, 17] < pixels[:, 1, 16, 16]
    top = pixels[:, 0, 16, 16] - 100 - 12
    left = pixels[:, 1, 16, 16] - 100 - 12 + flips.long()
    return torch.stack([top, left], 1), flips


def _chi_square(observed: torch.Tensor, expected: torch.Tensor) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


def test_device_loader_augmentation_distribution_matches_torchvision() -> None:
    n = 8100  # 100 expected per (top, left) cell
    loader = DeviceLoader(_coordinate_dataset(n), 900, train=True, seed=11)
    decoded = [_decode_augmentation(images) for images, _ in loader]
    offsets = torch.cat([d[0] for d in decoded])
    flips = torch.cat([d[1] for d in decoded])
    assert offsets.min() >= 0 and offsets.max() <= 8
    # joint (top, left) histogram is uniform over the 81 cells: chi-square with 80 degrees of freedom
    # (mean 80, sd 12.6; 150 is exceeded with probability ~1e-6 by a correct implementation)
    joint = torch.bincount(offsets[:, 0] * 9 + offsets[:, 1], minlength=81).double()
    assert _chi_square(joint, torch.full((81,), n / 81)) < 150
    assert abs(flips.double().mean().item() - 0.5) < 0.025  # 4.5 standard deviations
    # flips independent of offsets: flip rate in each half of the offset range
    left_half = offsets[:, 1] < 4
    assert abs(flips[left_half].double().mean().item() - flips[~left_half].double().mean().item()) < 0.05

    # the torchvision reference path (RandomCrop + RandomHorizontalFlip on PIL) decodes to the same law:
    # chi-square test of homogeneity between the two 81-cell histograms
    m = 2000
    reference = reference_loader(_coordinate_dataset(m), 500, train=True, seed=3)
    ref_decoded = [_decode_augmentation(images) for images, _ in reference]
    ref_offsets = torch.cat([d[0] for d in ref_decoded])
    ref_flips = torch.cat([d[1] for d in ref_decoded])
    ref_joint = torch.bincount(ref_offsets[:, 0] * 9 + ref_offsets[:, 1], minlength=81).double()
    pooled = (joint + ref_joint) / (n + m)
    statistic = _chi_square(joint, pooled * n) + _chi_square(ref_joint, pooled * m)
    assert statistic < 150
    assert abs(ref_flips.double().mean().item() - flips.double().mean().item()) < 0.06  # 4.8 sd


def test_device_loader_test_mode_is_ordered_and_plain() -> None:
    data = make_synthetic("test", size=300)
    loader = DeviceLoader(data, 128, train=False)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(y) for _, y in batches] == [128, 128, 44]
    assert torch.equal(torch.cat([x for x, _ in batches]), normalize(data.images))
    assert torch.equal(torch.cat([y for _, y in batches]), data.labels)
    assert len(DeviceLoader(data, 128, train=False, drop_last=True)) == 2
    assert [len(y) for _, y in DeviceLoader(data, 128, train=False, drop_last=True)] == [128, 128]


def test_reference_loader_test_mode_equals_device_loader() -> None:
    data = make_synthetic("test", size=200)
    ours = list(DeviceLoader(data, 64, train=False))
    reference = list(reference_loader(data, 64, train=False))
    assert len(ours) == len(reference) == 4
    for (x, y), (rx, ry) in zip(ours, reference, strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)


def _epoch(loader: DeviceLoader) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(loader)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_device_loader_shuffles_reproducibly_and_resumes() -> None:
    data = _tiny_dataset(250)
    data = ImageDataset(
        images=torch.randint(0, 256, (250, 3, 32, 32), dtype=torch.uint8),
        labels=data.labels,
        class_names=data.class_names,
        superclass_names=data.superclass_names,
        fine_to_coarse=data.fine_to_coarse,
    )
    run = DeviceLoader(data, 32, train=True, seed=7)
    epochs = [_epoch(run) for _ in range(3)]
    assert run.epoch == 3
    assert torch.equal(torch.sort(epochs[0][1]).values, torch.sort(data.labels).values)  # a permutation
    assert not torch.equal(epochs[0][1], epochs[1][1])  # reshuffled every epoch
    assert not torch.equal(epochs[0][1], data.labels)
    resumed = DeviceLoader(data, 32, train=True, seed=7)
    resumed.set_epoch(2)
    x, y = _epoch(resumed)
    assert torch.equal(x, epochs[2][0]) and torch.equal(y, epochs[2][1])
    other = DeviceLoader(data, 32, train=True, seed=8)
    assert not torch.equal(_epoch(other)[1], epochs[0][1])
    dropped = DeviceLoader(data, 32, train=True, seed=7, drop_last=True)
    assert len(dropped) == 7 and sum(len(y) for _, y in dropped) == 224


def test_device_loader_can_shuffle_without_augmenting() -> None:
    data = make_synthetic("train", size=300)
    images = data.images.clone()
    images[:, 0, 0, 0], images[:, 0, 0, 1] = torch.arange(300) // 256, torch.arange(300) % 256  # index tag
    data = ImageDataset(images, data.labels, data.class_names, data.superclass_names, data.fine_to_coarse)
    x, y = _epoch(DeviceLoader(data, 100, train=True, augment=False, seed=2))
    tag = normalize(images[:, :, :1, :2])
    index = torch.cat([((x[i, :, :1, :2] == tag).flatten(1).all(1)).nonzero()[0] for i in range(300)])
    assert not torch.equal(index, torch.arange(300))  # shuffled ...
    assert torch.equal(torch.sort(index).values, torch.arange(300))  # ... a permutation ...
    assert torch.equal(x, normalize(images[index])) and torch.equal(y, data.labels[index])  # ... unaugmented
    augmented = _epoch(DeviceLoader(data, 100, train=True, seed=2))
    assert torch.equal(augmented[1], y)  # same order as the augmented loader with the same seed
    assert not torch.equal(augmented[0], x)


def test_device_loader_memory_format_and_arguments() -> None:
    data = _tiny_dataset(8)
    x, _ = next(iter(DeviceLoader(data, 4, train=True, memory_format=torch.channels_last)))
    assert x.is_contiguous(memory_format=torch.channels_last) and x.dtype == torch.float32
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(data, 0, train=True)
    with pytest.raises(TypeError, match="dataset"):
        DeviceLoader(data.images, 2, train=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epoch"):
        DeviceLoader(data, 2, train=True).set_epoch(-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_loader_on_cuda_matches_cpu() -> None:
    data = make_synthetic("train", size=500)
    cpu = _epoch(DeviceLoader(data, 128, train=True, seed=5))
    gpu = DeviceLoader(data, 128, train=True, seed=5, device="cuda")
    x, y = _epoch(gpu)
    assert x.device.type == "cuda"
    # same samples, offsets and flips; CUDA divides by a scalar via its reciprocal: floats may differ by 1 ulp
    assert torch.equal(y.cpu(), cpu[1])
    torch.testing.assert_close(x.cpu(), cpu[0], rtol=0, atol=1e-6)
    offsets, flips = sample_crop_flip(len(data), generator=torch.Generator().manual_seed(0))
    on_gpu = crop_flip(data.images.cuda(), offsets.cuda(), flips.cuda())
    assert torch.equal(on_gpu.cpu(), crop_flip(data.images, offsets, flips))


def test_reference_loader_is_seeded_and_leaves_global_rng_alone() -> None:
    data = make_synthetic("train", size=64)
    state = torch.get_rng_state()
    first = next(iter(reference_loader(data, 16, train=True, seed=9)))
    assert torch.equal(torch.get_rng_state(), state)
    again = next(iter(reference_loader(data, 16, train=True, seed=9)))
    other = next(iter(reference_loader(data, 16, train=True, seed=10)))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (16, 3, 32, 32) and first[0].dtype == torch.float32
    with pytest.raises(ValueError, match="num_workers"):
        reference_loader(data, 16, train=True, num_workers=-1)
