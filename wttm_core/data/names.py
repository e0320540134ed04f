"""CIFAR-100 class names and the fine -> coarse (class -> superclass) mapping.

CIFAR-100 has 100 fine classes grouped into 20 superclasses of 5. Both the real data set and the synthetic
stand-in use these names and this mapping, so every code path (confusion matrices grouped by superclass,
"errors inside the true superclass", per-superclass soft-label plots) works unchanged on either.

Label indices follow CIFAR-100's ``meta`` file: fine and coarse names are each numbered in alphabetical order.
"""

from __future__ import annotations

import torch

#: Superclass -> its five fine classes, as in the CIFAR-100 release.
SUPERCLASS_MEMBERS: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

#: The 20 coarse label names in CIFAR-100 index order.
CIFAR100_SUPERCLASS_NAMES: tuple[str, ...] = tuple(sorted(SUPERCLASS_MEMBERS))

#: The 100 fine label names in CIFAR-100 index order.
CIFAR100_CLASS_NAMES: tuple[str, ...] = tuple(
    sorted(name for members in SUPERCLASS_MEMBERS.values() for name in members)
)

_COARSE_OF_NAME = {
    name: CIFAR100_SUPERCLASS_NAMES.index(coarse) for coarse, members in SUPERCLASS_MEMBERS.items() for name in members
}


def cifar100_fine_to_coarse() -> torch.Tensor:
    """Return a fresh int64 tensor [100]: entry ``k`` is the superclass index of fine class ``k``."""
    return torch.tensor([_COARSE_OF_NAME[name] for name in CIFAR100_CLASS_NAMES], dtype=torch.int64)
