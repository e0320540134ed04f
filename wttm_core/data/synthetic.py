"""A synthetic, offline stand-in for CIFAR-100, built as a teaching device for knowledge distillation.

Why it exists: distillation only helps when a teacher's soft labels carry "dark knowledge", i.e. when its
wrong-class probabilities say which classes resemble the true one. Random labels or trivially separable blobs
have none. This generator builds that structure in on purpose, with the real CIFAR-100 hierarchy (the same
100 fine names, 20 superclass names and fine -> coarse mapping), so a classroom or CI machine without the
real data still shows the phenomena the TTM paper is about.

Generative process (intensities on a 0..1 scale; a "canvas" is 40 x 40 pixels, the 32 x 32 image plus a
4-pixel margin on every side). ``d`` is ``difficulty``.

1. Class prototypes, drawn once from ``seed`` and shared by both splits:

   * each superclass s: a mean colour ``0.5 + U(-0.08, 0.08)`` per channel and a smooth pattern S_s, the sum
     of 3 plane waves ``cos(2 pi <f, x> + phi)`` of 0.5 .. 1.5 cycles per canvas (random orientation and
     phase, each wave tinted by its own random colour vector), scaled to unit RMS. This is the structure the
     five classes of a superclass share.
   * each fine class k: a texture F_k built the same way from 3 waves of 3 .. 6 cycles per canvas (period
     7 .. 13 pixels), also of unit RMS.

2. Each image of fine class k in superclass s (labels are balanced: every consecutive block of 100 images is
   a random permutation of the 100 classes):

   * class cue: texture T = F_k, except that a fraction ``min(1, 0.25 d)`` of the images are blends
     ``T = (1 - w) F_k + w F_j`` with a random sibling j (another class of superclass s) and sibling weight
     w ~ U(0.3, 0.7): when w > 1/2 the image honestly looks more like its sibling, so even a perfect
     classifier errs on about ``0.125 d`` of the images, always inside the superclass;
   * canvas = colour_s + 0.15 S_s + 0.075 a T with a per-image strength a ~ U(0.5, 1.5): the class cue is
     half as strong as the superclass cue;
   * position: a 32 x 32 window cut from the canvas at offsets uniform in 0 .. 8 (a shift of +-4 px), and a
     horizontal flip with probability 1/2;
   * colour: per-channel gain U(0.7, 1.3), brightness offset U(-0.1, 0.1);
   * clutter: a smooth random field (white noise on an 8 x 8 grid per channel, bilinearly upsampled to
     32 x 32) of RMS ``0.035 d``, on the same spatial scales as the class textures;
   * sensor noise: white Gaussian with standard deviation ``0.02 d``;
   * clipped to 0..1 and rounded to uint8.

What follows, by design: the superclass is the strong, easy cue and the fine class the weak one, so a
trained network's mistakes and soft labels fall on the four siblings of the true class, and on blended images
its soft label splits between the two classes that were mixed - information a one-hot label does not carry.
Position, flip and colour are nuisances, as in real photographs.

``similarity`` (float in [0, 1), default :data:`DEFAULT_SIMILARITY` = 0.5) grades how alike superclasses are: the
20 superclasses fall into five families by meaning (:data:`SUPERCLASS_FAMILIES`: mammals and people; other
animals; plants; household objects; outdoor scenes and vehicles), and each superclass pattern becomes
``sqrt(1 - s) S_s + sqrt(s) G_f`` (renormalised) with a component ``G_f`` shared by its family (drawn from its own
stream, so every other draw is the same at any ``s``). Superclasses of one family then look alike (their patterns
have a cosine similarity of about ``s``), so a classifier's superclass-level mistakes and doubts concentrate inside
the family - graded dark knowledge one level above the siblings, and an answer to "which superclasses look
alike" (:func:`family_statistics` measures it against the uniform spread over the other 19 superclasses; numbers
in ``benchmarks/RESULTS.md``). ``similarity=0`` gives the data set of earlier versions bit for bit (no shared
component). The default was 0 until the graded version became the default: a run's ``config.json`` records the
value (``synthetic_similarity``), and a run or cached teacher written before the field existed counts as made
with 0 (:data:`wttm_core.engine.config.LEGACY_VALUES`), so it is retrained rather than silently reused with the
new data; the shipped teachers carry a digest of their training data and are only used when it matches.

``difficulty`` (float >= 0, default 1.0) scales the blended fraction, the clutter and the sensor noise
together. 0: no blends, no clutter, no noise (only position and colour vary); 1: the default, where about
12.5% of the test images are beyond any classifier (it tops out near 87.5%) and short training leaves
networks clearly imperfect; 2: a quarter of the images are lost causes and the noise doubles. Measured
numbers: ``benchmarks/synthetic_acceptance.py`` and ``tests/test_synthetic_acceptance.py``.

Determinism: the prototypes come from the stream ``(seed, 0)`` and the images from streams
``(seed, split, chunk)`` of 1,000 images each, so train and test share prototypes but never noise, and the
first ``size`` images of a split do not depend on how many are generated. Everything is vectorised torch on
the CPU (50,000 images take a few seconds).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch

from wttm_core._checks import check_int, check_number

from .dataset import ImageDataset
from .names import CIFAR100_CLASS_NAMES, CIFAR100_SUPERCLASS_NAMES, cifar100_fine_to_coarse
from .transforms import crop_windows

DEFAULT_SIZES: dict[str, int] = {"train": 50_000, "test": 10_000}
DEFAULT_DIFFICULTY: float = 1.0
DEFAULT_SIMILARITY: float = 0.5

IMAGE_SIZE = 32
SHIFT = 4
CANVAS = IMAGE_SIZE + 2 * SHIFT
CHUNK = 1_000  # images per random stream; a multiple of 100 keeps every chunk class-balanced

COLOUR_SPREAD = 0.08
SUPER_AMPLITUDE = 0.15
FINE_AMPLITUDE = 0.075
FINE_JITTER = (0.5, 1.5)
SUPER_FREQUENCY = (0.5, 1.5)  # cycles per canvas
FINE_FREQUENCY = (3.0, 6.0)
WAVES = 3
GAIN = (0.7, 1.3)
BRIGHTNESS = 0.1
CLUTTER_GRID = 8
CLUTTER_RMS = 0.035
NOISE_STD = 0.02
BLEND_FRACTION = 0.25  # times difficulty (capped at 1): share of images blending in a sibling's texture
BLEND_SHARE = (0.3, 0.7)  # the sibling's weight in a blended image

_SPLIT_STREAM = {"train": 1, "test": 2}
_PROTOTYPE_STREAM = 0
_FAMILY_STREAM = 3  # its own stream: similarity = 0 leaves every other draw unchanged

#: the five families of superclasses that share a pattern component when ``similarity > 0``
SUPERCLASS_FAMILIES: dict[str, tuple[str, ...]] = {
    "mammals and people": (
        "aquatic_mammals", "large_carnivores", "large_omnivores_and_herbivores", "medium_mammals", "small_mammals",
        "people",
    ),
    "other animals": ("fish", "insects", "non-insect_invertebrates", "reptiles"),
    "plants": ("flowers", "fruit_and_vegetables", "trees"),
    "household objects": ("food_containers", "household_electrical_devices", "household_furniture"),
    "outdoor scenes and vehicles": (
        "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "vehicles_1", "vehicles_2",
    ),
}  # fmt: skip


def superclass_family() -> torch.Tensor:
    """int64 [20]: the family index (order of :data:`SUPERCLASS_FAMILIES`) of every superclass."""
    family_of = {name: f for f, members in enumerate(SUPERCLASS_FAMILIES.values()) for name in members}
    return torch.tensor([family_of[name] for name in CIFAR100_SUPERCLASS_NAMES], dtype=torch.int64)


def family_statistics(probs: torch.Tensor, labels: torch.Tensor, fine_to_coarse: torch.Tensor) -> dict[str, float]:
    """How a classifier's superclass-level mistakes and doubts fall on the true superclass's family.

    ``probs`` [N, 100] are predicted class probabilities (one-hot rows for hard predictions), ``labels`` [N] the
    fine labels. Returns the share of images whose top class lies in a wrong superclass
    (``superclass_error_rate``); the share of those mistakes that land in the true superclass's family
    (``superclass_errors_in_family``) next to the share a uniform spread over the other 19 superclasses gives
    (``superclass_errors_in_family_chance``: ``(m - 1) / 19`` for a family of ``m`` superclasses, averaged over
    the mistakes); the same for the probability mass on the other superclasses (``other_superclass_mass_in_family``
    and ``..._chance``, averaged over the images). NaN where there is no mistake.
    """
    family = superclass_family()
    coarse = fine_to_coarse.to(probs.device)
    true_super = coarse[labels]
    chance = (torch.bincount(family, minlength=int(family.max()) + 1)[family] - 1).double() / 19.0
    super_probs = torch.zeros(len(labels), 20, dtype=torch.float64).index_add_(1, coarse, probs.double())
    wrong = super_probs.argmax(dim=1) != true_super
    in_family = family[None, :] == family[true_super][:, None]
    other = torch.ones_like(in_family)
    other[torch.arange(len(labels)), true_super] = False
    mass_other = (super_probs * other).sum(dim=1)
    mass_family = (super_probs * (other & in_family)).sum(dim=1)
    predicted = super_probs.argmax(dim=1)[wrong]
    return {
        "superclass_error_rate": wrong.double().mean().item(),
        "superclass_errors_in_family": (family[predicted] == family[true_super[wrong]]).double().mean().item(),
        "superclass_errors_in_family_chance": chance[true_super[wrong]].mean().item(),
        "other_superclass_mass_in_family": (mass_family.sum() / mass_other.sum()).item(),
        "other_superclass_mass_in_family_chance": chance[true_super].mean().item(),
    }


def _generator(*keys: int) -> torch.Generator:
    """A CPU generator whose seed is a well-mixed function of ``keys`` (no collisions between streams)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _wave_patterns(count: int, frequency: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """``count`` colour patterns [count, 3, CANVAS, CANVAS], each a sum of tinted plane waves, unit RMS."""
    lo, hi = frequency
    magnitude = lo + (hi - lo) * torch.rand(count, WAVES, generator=generator)
    angle = math.pi * torch.rand(count, WAVES, generator=generator)
    phase = 2 * math.pi * torch.rand(count, WAVES, generator=generator)
    tint = torch.randn(count, WAVES, 3, generator=generator)
    coord = torch.arange(CANVAS, dtype=torch.float32) / CANVAS
    fy = (magnitude * torch.sin(angle))[..., None, None]
    fx = (magnitude * torch.cos(angle))[..., None, None]
    waves = torch.cos(2 * math.pi * (fy * coord[:, None] + fx * coord[None, :]) + phase[..., None, None])
    patterns = torch.einsum("kwc,kwyx->kcyx", tint, waves)
    return patterns / patterns.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()


def synthetic_prototypes(seed: int = 0, similarity: float = DEFAULT_SIMILARITY) -> dict[str, torch.Tensor]:
    """The class-level ingredients drawn from ``seed``: superclass colours and patterns, fine patterns.

    Returns ``{"colour": [20, 3], "superclass": [20, 3, 40, 40], "fine": [100, 3, 40, 40]}`` (float32). With
    ``similarity > 0`` each superclass pattern mixes in its family's shared component (module docstring).
    """
    generator = _generator(seed, _PROTOTYPE_STREAM)
    colour = 0.5 + COLOUR_SPREAD * (2 * torch.rand(20, 3, generator=generator) - 1)
    superclass = _wave_patterns(20, SUPER_FREQUENCY, generator)
    fine = _wave_patterns(100, FINE_FREQUENCY, generator)
    if similarity > 0:
        shared = _wave_patterns(len(SUPERCLASS_FAMILIES), SUPER_FREQUENCY, _generator(seed, _FAMILY_STREAM))
        mixed = math.sqrt(1.0 - similarity) * superclass + math.sqrt(similarity) * shared[superclass_family()]
        superclass = mixed / mixed.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return {"colour": colour, "superclass": superclass, "fine": fine}


def _class_parts(
    prototypes: dict[str, torch.Tensor], fine_to_coarse: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per fine class: its superclass part (colour + A_S * S), its own texture A_F * F, and its 4 siblings."""
    shared = (
        prototypes["colour"][fine_to_coarse][:, :, None, None]
        + SUPER_AMPLITUDE * prototypes["superclass"][fine_to_coarse]
    )
    same = fine_to_coarse[:, None] == fine_to_coarse[None, :]
    same.fill_diagonal_(False)
    siblings = same.nonzero()[:, 1].view(len(fine_to_coarse), -1)
    return shared, FINE_AMPLITUDE * prototypes["fine"], siblings


def _uniform(bounds: tuple[float, float], shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(shape, generator=generator)


def _generate_chunk(
    parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    count: int,
    difficulty: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``count`` images, their labels and the latent variables that made them (see the module docstring)."""
    shared, own, siblings = parts
    labels = torch.argsort(torch.rand(count // 100, 100, generator=generator), dim=1).reshape(-1)
    sibling = siblings[labels, torch.randint(0, siblings.shape[1], (count,), generator=generator)]
    blended = torch.rand(count, generator=generator) < BLEND_FRACTION * difficulty
    share = torch.where(blended, _uniform(BLEND_SHARE, (count,), generator), 0.0)
    strength = _uniform(FINE_JITTER, (count,), generator)
    offsets = torch.randint(0, 2 * SHIFT + 1, (count, 2), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5
    gain = _uniform(GAIN, (count, 3, 1, 1), generator)
    brightness = _uniform((-BRIGHTNESS, BRIGHTNESS), (count, 1, 1, 1), generator)
    clutter = torch.randn(count, 3, CLUTTER_GRID, CLUTTER_GRID, generator=generator)
    noise = torch.randn(count, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)

    # class cue: own texture, blended with the sibling's where chosen, at the per-image strength
    texture = own[labels]
    chosen = blended.nonzero().squeeze(1)
    texture[chosen] = torch.lerp(texture[chosen], own[sibling[chosen]], share[chosen].view(-1, 1, 1, 1))
    canvas = shared[labels].add_(texture.mul_(strength.view(-1, 1, 1, 1)))
    signal = crop_windows(canvas, offsets, flips, IMAGE_SIZE, IMAGE_SIZE)
    smooth = torch.nn.functional.interpolate(clutter, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear")
    smooth.mul_(difficulty * CLUTTER_RMS / smooth.square().mean().sqrt())
    pixels = signal.mul_(gain).add_(brightness).add_(smooth).add_(noise.mul_(difficulty * NOISE_STD))
    images = pixels.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    latents = {
        "sibling": torch.where(blended, sibling, labels),
        "sibling_weight": share,
        "strength": strength,
        "offsets": offsets,
        "flips": flips,
    }
    return images, labels, latents


def make_synthetic(
    split: str,
    *,
    size: int | None = None,
    seed: int = 0,
    difficulty: float = DEFAULT_DIFFICULTY,
    similarity: float = DEFAULT_SIMILARITY,
) -> ImageDataset:
    """Generate the synthetic data set's ``split`` (see the module docstring for the generative process).

    Args:
        split: ``"train"`` or ``"test"`` (same prototypes, independent images).
        size: number of images (default 50,000 train / 10,000 test); the first ``size`` images of the default
            set when smaller (any size may be generated).
        seed: selects the prototypes and the image streams.
        difficulty: scale of the sibling blends, clutter and sensor noise, >= 0 (default 1.0).
        similarity: how much superclasses of one family share their pattern, in [0, 1) (default
            :data:`DEFAULT_SIMILARITY`, 0.5; 0 gives the data made before graded similarity).
    """
    return _generate(split, size, seed, difficulty, similarity)[0]


def make_synthetic_with_latents(split: str, **options: Any) -> tuple[ImageDataset, dict[str, torch.Tensor]]:
    """Generate a split together with the hidden variables behind every image (``options`` as for
    :func:`make_synthetic`: ``size``, ``seed``, ``difficulty``, ``similarity``).

    The latents (one entry per image) let a notebook compare what a teacher's soft labels say with what is
    actually in the picture: ``sibling`` (int64, the class whose texture was blended in, or the image's own
    label when it was not blended), ``sibling_weight`` (float, w of the blend, 0 when not blended),
    ``strength`` (the class texture's per-image strength a), ``offsets`` (int64 [N, 2], canvas window
    top/left) and ``flips`` (bool).
    """
    try:
        arguments = inspect.signature(make_synthetic).bind(split, **options)
    except TypeError as error:  # an unknown option, named as Python names it
        raise TypeError(f"make_synthetic_with_latents() {error}") from None
    arguments.apply_defaults()
    return _generate(**arguments.arguments)


def _generate(
    split: str, size: int | None, seed: int, difficulty: float, similarity: float
) -> tuple[ImageDataset, dict[str, torch.Tensor]]:
    """The checked arguments of :func:`make_synthetic` turned into the data set and its latents."""
    if split not in _SPLIT_STREAM:
        raise ValueError(f"split must be one of {list(_SPLIT_STREAM)}, got {split!r}")
    size = DEFAULT_SIZES[split] if size is None else check_int("size", size, low=1)
    difficulty = check_number("difficulty", difficulty, low=0)
    seed = check_int("seed", seed, low=0)
    similarity = check_number("similarity", similarity, low=0, high=1, high_open=True)
    fine_to_coarse = cifar100_fine_to_coarse()
    parts = _class_parts(synthetic_prototypes(seed, similarity), fine_to_coarse)
    pieces = []
    for chunk in range(-(-size // CHUNK)):
        # always draw a whole chunk so the first images never depend on how many are kept
        pieces.append(_generate_chunk(parts, CHUNK, difficulty, _generator(seed, _SPLIT_STREAM[split], chunk)))
    dataset = ImageDataset(
        images=torch.cat([images for images, _, _ in pieces])[:size],
        labels=torch.cat([labels for _, labels, _ in pieces])[:size],
        class_names=list(CIFAR100_CLASS_NAMES),
        superclass_names=list(CIFAR100_SUPERCLASS_NAMES),
        fine_to_coarse=fine_to_coarse,
    )
    latents = {key: torch.cat([latent[key] for _, _, latent in pieces])[:size] for key in pieces[0][2]}
    return dataset, latents
