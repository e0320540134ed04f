"""Distillation methods as weighted sums of named loss terms (a small, mdistiller-like interface).

A :class:`Method` maps ``(student_logits, teacher_logits, labels)`` to a :class:`LossParts`: the total loss and
each weighted term by name, so the training loop can log every part. The base methods are

==============  ==========================================================  ==============
name            objective                                                   paper
==============  ==========================================================  ==============
``ce``          ``H(y, q)``                                                 teacher / vanilla
``kd``          ``0.1 H(y, q) + 0.9 T^2 D(p^t_T || q_T)``, T = 4            Eq. 1
``ttm``         ``H(y, q) + beta D(p^t_T || q)``                            Eq. 2
``wttm``        ``H(y, q) + beta U_gamma(p^t) D(p^t_T || q)``               Eq. 23
``wttm-noce``   ``beta U_gamma(p^t) D(p^t_T || q)``                         Table 6
==============  ==========================================================  ==============

and a spec such as ``"wttm+0.8*kd"`` adds further terms with their own weights (Eq. 24:
``L = H(y, q) + beta U D(p^t_T || q) + mu L_other``): the first name contributes its full objective, every
further ``[w*]name`` its distillation term (without a second cross-entropy) times ``w`` (default 1). Besides
the base names, ``renyi`` (``-H_alpha(q)``, the Renyi-entropy regulariser that Eq. 15 finds inside TTM) can be
added, e.g. ``"kd+2*renyi"``.

The distillation terms are the functional core's (``kd_loss``, ``ttm_loss``, ``wttm_loss``), which compute in
float32 also for bf16/fp16 logits. ``weighting`` replaces WTTM's sample weight ``U_gamma(p^t)`` (Eq. 22) by an
alternative (the authors' future work): ``power-sum`` (Eq. 22, default), ``power-sum-normalised`` (U divided by
its batch mean), ``teacher-entropy`` (``H(p^t_T)``), ``one-minus-max`` (``1 - max p^t``) or ``none`` (TTM).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from wttm_core import functional as WF
from wttm_core.presets import RECIPE

__all__ = [
    "BASE_METHODS",
    "TERMS",
    "WEIGHTINGS",
    "LossParts",
    "Method",
    "MethodSpec",
    "parse_method",
    "build_method",
    "sample_weights",
]

BASE_METHODS = ("ce", "kd", "ttm", "wttm", "wttm-noce")
TERMS = ("ce", "kd", "ttm", "wttm", "renyi")
WEIGHTINGS = ("power-sum", "power-sum-normalised", "teacher-entropy", "one-minus-max", "none")
_TEACHER_TERMS = frozenset({"kd", "ttm", "wttm"})
_NAME = r"[a-z][a-z-]*"
_TERM_RE = re.compile(rf"^\s*(?:(?P<weight>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<name>{_NAME})\s*$")


@dataclass(frozen=True)
class LossParts:
    """The total loss of one batch and its weighted terms (``sum(parts.values()) == total``)."""

    total: Tensor
    parts: dict[str, Tensor]


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method string: the base method and the extra ``(weight, term)`` pairs after it."""

    base: str
    extras: tuple[tuple[float, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.base, *(name for _, name in self.extras))


def parse_method(spec: str) -> MethodSpec:
    """Parse ``"wttm"``, ``"wttm+kd"``, ``"wttm+0.8*kd"``, ``"kd+2*renyi"`` into a :class:`MethodSpec`."""
    if not isinstance(spec, str):
        raise TypeError(f"method must be a string, got {type(spec).__name__}")
    pieces = spec.split("+")
    extras: list[tuple[float, str]] = []
    base = ""
    for index, piece in enumerate(pieces):
        match = _TERM_RE.match(piece)
        if match is None:
            raise ValueError(f"method {spec!r}: cannot parse {piece!r} (expected NAME or WEIGHT*NAME)")
        name, weight = match["name"], match["weight"]
        if index == 0:
            if weight is not None or name not in BASE_METHODS:
                raise ValueError(f"method must start with one of {BASE_METHODS}, got {spec!r}")
            base = name
            continue
        term = "wttm" if name == "wttm-noce" else name
        if term not in TERMS or term == "ce":
            raise ValueError(f"method {spec!r}: an added term must be one of kd, ttm, wttm, renyi, got {name!r}")
        value = float(weight) if weight is not None else 1.0
        if not math.isfinite(value):  # e.g. 1e999 (infinite): refused before anything is written (issue 13)
            raise ValueError(f"method {spec!r}: the weight of {name!r} must be a finite number, got {weight}")
        extras.append((value, term))
    names = [base_term for base_term in _base_terms(base)] + [term for _, term in extras]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"method {spec!r} uses the term(s) {sorted(duplicated)} twice")
    return MethodSpec(base, tuple(extras))


def _base_terms(base: str) -> tuple[str, ...]:
    return {"ce": ("ce",), "kd": ("ce", "kd"), "ttm": ("ce", "ttm"), "wttm": ("ce", "wttm"), "wttm-noce": ("wttm",)}[
        base
    ]


def sample_weights(teacher_logits: Tensor, gamma: float, weighting: str) -> Tensor:
    """Per-sample weights of the weighted TTM term, ``[N]``, no gradient.

    ``power-sum`` is WTTM's ``U_gamma(p^t)`` (Eqs. 22-23); the others are alternatives for experiments.
    """
    if weighting == "power-sum":
        return WF.wttm_weights(teacher_logits, gamma)
    if weighting == "power-sum-normalised":
        weights = WF.wttm_weights(teacher_logits, gamma)
        return weights / weights.mean()
    teacher = teacher_logits.detach().float()
    if weighting == "teacher-entropy":
        return WF.shannon_entropy(torch.softmax(gamma * teacher, dim=-1))
    if weighting == "one-minus-max":
        return 1.0 - torch.softmax(teacher, dim=-1).amax(dim=-1)
    if weighting == "none":
        return torch.ones(teacher.shape[0], device=teacher.device)
    raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


TermFn = Callable[[Tensor, Tensor | None, Tensor], Tensor]


class Method:
    """A weighted sum of loss terms; call it with ``(student_logits, teacher_logits, labels)``.

    Build one with :func:`build_method`. ``terms`` maps each term name to its weight; ``needs_teacher`` says
    whether teacher logits must be passed (``None`` is accepted for ``ce`` alone).
    """

    def __init__(self, spec: MethodSpec, weights: dict[str, float], functions: dict[str, TermFn]) -> None:
        self.spec = spec
        self.terms = dict(weights)
        self._functions = functions
        self.needs_teacher = any(name in _TEACHER_TERMS for name in weights)

    def __call__(self, student_logits: Tensor, teacher_logits: Tensor | None, labels: Tensor) -> LossParts:
        if self.needs_teacher and teacher_logits is None:
            raise ValueError(f"teacher_logits are required by method {self.describe()!r}")
        parts = {
            name: weight * self._functions[name](student_logits, teacher_logits, labels)
            for name, weight in self.terms.items()
        }
        total = torch.stack(list(parts.values())).sum()
        return LossParts(total, parts)

    def describe(self) -> str:
        """The objective as text, e.g. ``1*ce + 1.5*wttm``."""
        return " + ".join(f"{weight:g}*{name}" for name, weight in self.terms.items())

    def __repr__(self) -> str:
        return f"Method({self.describe()})"


def build_method(
    spec: str | MethodSpec,
    *,
    gamma: float | None = None,
    beta: float | None = None,
    temperature: float = RECIPE.kd_temperature,
    ce_weight: float | None = None,
    kd_weight: float = RECIPE.kd_weight,
    label_smoothing: float = 0.0,
    weighting: str = "power-sum",
    renyi_order: float | None = None,
) -> Method:
    """Build a :class:`Method` from a spec and its hyperparameters.

    ``gamma`` (= 1/T, Eqs. 8-9) and ``beta`` are required by ``ttm``/``wttm`` terms; ``temperature`` is KD's T;
    ``ce_weight`` overrides the cross-entropy weight (default 0.1 for ``kd``, 1 otherwise, none for
    ``wttm-noce``); ``kd_weight`` is KD's lambda (0.9); ``renyi_order`` is the order of the ``renyi`` term
    (default ``1 / temperature``, the order in Eq. 15).
    """
    parsed = parse_method(spec) if isinstance(spec, str) else spec
    names = set(_base_terms(parsed.base)) | {term for _, term in parsed.extras}
    if names & {"ttm", "wttm"}:
        if gamma is None or beta is None:
            raise ValueError(
                f"method {parsed.base!r} needs gamma and beta (no Table 8/9 preset for this pair: pass them)"
            )
        gamma = _positive("gamma", gamma)
        beta = _positive("beta", beta)
    temperature = _positive("temperature", temperature)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    order = _positive("renyi_order", renyi_order) if renyi_order is not None else 1.0 / temperature

    def ce(z: Tensor, v: Tensor | None, y: Tensor) -> Tensor:
        return F.cross_entropy(z.float(), y, label_smoothing=label_smoothing)

    def kd(z: Tensor, v: Tensor | None, y: Tensor) -> Tensor:
        return WF.kd_loss(z, v, temperature)

    def ttm(z: Tensor, v: Tensor | None, y: Tensor) -> Tensor:
        return WF.ttm_loss(z, v, gamma)

    def wttm(z: Tensor, v: Tensor | None, y: Tensor) -> Tensor:
        if weighting == "power-sum":
            return WF.wttm_loss(z, v, gamma)
        per_sample = WF.ttm_loss(z, v, gamma, reduction="none")
        return (sample_weights(v, gamma, weighting) * per_sample).mean()

    def renyi(z: Tensor, v: Tensor | None, y: Tensor) -> Tensor:
        return -WF.renyi_entropy(torch.softmax(z.float(), dim=-1), order).mean()

    functions: dict[str, TermFn] = {"ce": ce, "kd": kd, "ttm": ttm, "wttm": wttm, "renyi": renyi}
    base_ce = {"ce": 1.0, "kd": RECIPE.kd_ce_weight, "ttm": RECIPE.ttm_ce_weight, "wttm": RECIPE.ttm_ce_weight}
    weights: dict[str, float] = {}
    if parsed.base != "wttm-noce":
        weights["ce"] = _non_negative("ce_weight", ce_weight) if ce_weight is not None else base_ce[parsed.base]
    if parsed.base == "kd":
        weights["kd"] = _non_negative("kd_weight", kd_weight)
    elif parsed.base in ("ttm", "wttm", "wttm-noce"):
        weights["ttm" if parsed.base == "ttm" else "wttm"] = float(beta)  # type: ignore[arg-type]
    for weight, term in parsed.extras:
        weights[term] = weight
    return Method(parsed, weights, functions)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)
