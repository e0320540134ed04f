"""Named training variants for the experiments: the paper's methods and the open questions' alternatives.

A :class:`Variant` is a label plus the :class:`~wttm_core.engine.TrainConfig` fields that make it (method spec,
gamma, beta, sample weighting, Renyi order, ...). Nothing here is a second loss implementation: every variant is
expressed through the engine's own method registry (:mod:`wttm_core.engine.methods`), which already provides

* WTTM's sample weight ``U_gamma(p^t)`` (Eq. 22-23) and its alternatives through ``weighting``:
  ``power-sum`` (U), ``power-sum-normalised`` (U / batch mean of U), ``teacher-entropy`` (H(p^t_T)),
  ``one-minus-max`` (1 - max p^t) and ``none`` (plain TTM, Eq. 2);
* the Renyi-entropy regulariser ``renyi`` (``-H_alpha(q)``, Eq. 4) with its own order ``renyi_order`` as an
  added term, so ``"kd+w*renyi"`` is the authors' "KD plus a decoupled Renyi regulariser" (future work).

Fair comparisons of weightings need the same overall distillation strength: weights of different schemes live
on different scales (U is between 1 and K^(1-gamma), H(p^t_T) between 0 and log K). :func:`weighting_variants`
therefore sets each scheme's beta to ``beta / mean(weight)`` over the training set, exactly the rescaling the
paper uses for Fig. 1 (WTTM with ``beta = 36 / mean U``), so that every scheme puts the same *average* weight on
D(p^t_T || q) and only the distribution of weight across samples differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from wttm_core._checks import check_number
from wttm_core.engine.methods import WEIGHTINGS, parse_method, sample_weights
from wttm_core.presets import RECIPE

__all__ = [
    "Variant",
    "WEIGHTING_LABELS",
    "method_variant",
    "weighting_variants",
    "kd_renyi_variant",
    "weight_means",
    "eq19_renyi_weight",
]

WEIGHTING_LABELS: dict[str, str] = {
    "power-sum": "WTTM (weight U)",
    "power-sum-normalised": "weight U / mean U",
    "teacher-entropy": "weight H(p^t_T)",
    "one-minus-max": "weight 1 - max p^t",
    "none": "TTM (no weight)",
}
_CONFIG_FIELDS = frozenset(
    {
        "gamma",
        "beta",
        "temperature",
        "ce_weight",
        "kd_weight",
        "label_smoothing",
        "weighting",
        "renyi_order",
        "metric_temperature",
        "lr",
    }
)


@dataclass(frozen=True)
class Variant:
    """A labelled training variant: ``method`` (engine spec) and the config ``options`` it sets."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")
        parse_method(self.method)  # raises ValueError naming the bad spec
        unknown = sorted(set(self.options) - _CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"options: unknown field(s) {unknown} (allowed: {sorted(_CONFIG_FIELDS)})")

    def with_lr(self, lr: float) -> Variant:
        """The same variant at learning rate ``lr`` (same label)."""
        return Variant(self.label, self.method, {**self.options, "lr": float(lr)})

    def config_fields(self) -> dict[str, Any]:
        """The :class:`~wttm_core.engine.TrainConfig` fields of this variant (``method`` and the options)."""
        return {"method": self.method, **self.options}


def method_variant(method: str, *, label: str | None = None, **options: Any) -> Variant:
    """A variant of a base method (``ce``, ``kd``, ``ttm``, ``wttm``, ``wttm-noce`` or a sum such as ``wttm+kd``).

    ``gamma``/``beta`` left out are filled by the engine from the Table 8/9 presets for known pairs.
    """
    options = {k: v for k, v in options.items() if v is not None}
    return Variant(label or method.upper(), method, options)


def weight_means(teacher_logits: Tensor, gamma: float, weightings: Sequence[str] = WEIGHTINGS) -> dict[str, float]:
    """Mean sample weight of every scheme over ``teacher_logits`` (e.g. the teacher on the training set).

    ``power-sum-normalised`` and ``none`` have mean 1 by construction (batch normalisation happens per batch
    in training, so over a whole set the mean is 1 up to batch-to-batch variation).
    """
    if not isinstance(teacher_logits, Tensor) or teacher_logits.dim() != 2:
        raise TypeError("teacher_logits must be a 2-D tensor [N, K]")
    means = {}
    with torch.no_grad():
        for weighting in weightings:
            if weighting not in WEIGHTINGS:
                raise ValueError(f"weightings: unknown scheme {weighting!r} (known: {WEIGHTINGS})")
            means[weighting] = float(sample_weights(teacher_logits.float(), gamma, weighting).mean())
    return means


def weighting_variants(
    gamma: float,
    beta: float,
    means: Mapping[str, float],
    *,
    weightings: Sequence[str] = WEIGHTINGS,
    with_ce: bool = True,
) -> list[Variant]:
    """One variant per sample-weighting scheme, each with ``beta / mean(weight)`` (same average strength).

    ``beta`` is the strength of plain TTM (``weighting = "none"``, mean weight 1); ``means`` comes from
    :func:`weight_means`. ``with_ce=False`` drops the cross-entropy term (the ``wttm-noce`` base).
    """
    gamma = check_number("gamma", gamma, low=0, low_open=True)
    beta = check_number("beta", beta, low=0, low_open=True)
    variants = []
    for weighting in weightings:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weightings: unknown scheme {weighting!r} (known: {WEIGHTINGS})")
        mean = check_number(f"means[{weighting!r}]", means.get(weighting), low=0, low_open=True)
        variants.append(
            Variant(
                WEIGHTING_LABELS[weighting],
                "wttm" if with_ce else "wttm-noce",
                {"gamma": gamma, "beta": beta / mean, "weighting": weighting},
            )
        )
    return variants


def eq19_renyi_weight(temperature: float = RECIPE.kd_temperature, kd_weight: float = RECIPE.kd_weight) -> float:
    """The Renyi weight that turns KD into (a rescaled) TTM: ``lambda T (T - 1)`` (Eqs. 15 and 19).

    With T = 4 and lambda = 0.9 this is 10.8: ``L_KD - 10.8 H_{1/4}(q) = 0.1 (H(y, q) + 36 D(p^t_T || q)) + c``.
    """
    temperature = check_number("temperature", temperature, low=0, low_open=True)
    kd_weight = check_number("kd_weight", kd_weight, low=0, high=1, high_open=True)
    return kd_weight * temperature * (temperature - 1.0)


def kd_renyi_variant(
    weight: float,
    order: float,
    *,
    temperature: float = RECIPE.kd_temperature,
    label: str | None = None,
) -> Variant:
    """KD (Eq. 1, T = ``temperature``) plus ``weight`` times the Renyi regulariser ``-H_order(q)`` (decoupled).

    ``weight = eq19_renyi_weight(T)`` and ``order = 1 / T`` reproduce TTM up to a constant factor (Eq. 19);
    other weights and orders are the decoupled regulariser the authors name as future work. ``weight = 0`` is KD.
    """
    check_number("weight", weight, low=0)
    check_number("order", order, low=0, low_open=True)
    if weight == 0:
        return Variant(label or f"KD (T={temperature:g})", "kd", {"temperature": float(temperature)})
    spec = f"kd+{float(weight)!r}*renyi"
    name = label or f"KD + {weight:g} Renyi(alpha={order:g})"
    return Variant(name, spec, {"temperature": float(temperature), "renyi_order": float(order)})
