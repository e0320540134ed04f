"""An alias kept for existing imports: the recipe, Tables 8-9 and the profiles live in :mod:`wttm_core.paper`."""

from wttm_core.paper import (
    PAIR_PRESETS,
    PROFILES,
    RECIPE,
    PairPreset,
    Profile,
    Recipe,
    get_profile,
    learning_rate,
    method_hyperparameters,
    pair_preset,
    scaled_milestones,
)

__all__ = [
    "Recipe",
    "RECIPE",
    "PairPreset",
    "PAIR_PRESETS",
    "Profile",
    "PROFILES",
    "pair_preset",
    "learning_rate",
    "scaled_milestones",
    "method_hyperparameters",
    "get_profile",
]
