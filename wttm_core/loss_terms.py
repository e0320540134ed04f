"""The table of loss terms: every distillation method of the lab, as data.

A training objective is a weighted sum of terms (:mod:`wttm_core.engine.methods` parses ``"wttm+0.5*kd"``).
Each :class:`LossTerm` below says what its term computes, the paper or equation it comes from, the
hyper-parameters it takes (with their defaults and where each default comes from), whether the paper's Tables 8-9
presets apply, how it acts as a method on its own (its cross-entropy weight and its own weight) and whether its
weight follows a schedule over the epochs. The engine, the configuration's validation, the command line
(``wttm distill --method``, ``wttm presets``), the experiments and the README's method list all read this table.

Term functions take ``(student_logits, teacher_logits, labels, hp)`` and return the batch mean; they call the
unchecked kernels of :mod:`wttm_core._kernels` (the public functions of :mod:`wttm_core.functional` check their
input and call the same kernels), so a training step reads nothing back from the device.

Adding a method: its kernel in :mod:`wttm_core._kernels`, one entry in :data:`TERMS`, one test (plus, for users
who call it outside training, a checked public function in :mod:`wttm_core.functional`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wttm_core import _kernels as K
from wttm_core._checks import check_number

__all__ = [
    "HyperParameter",
    "LossTerm",
    "TERMS",
    "BASE_METHODS",
    "ADDABLE_TERMS",
    "PRESET_METHODS",
    "WEIGHTINGS",
    "KD_TEMPERATURE",
    "KD_CE_WEIGHT",
    "KD_WEIGHT",
    "TTM_CE_WEIGHT",
    "linear_warmup",
    "sample_weights",
    "methods_markdown",
]

WEIGHTINGS = ("power-sum", "power-sum-normalised", "teacher-entropy", "one-minus-max", "none")

# The paper's KD baseline convention (Eq. 1 and its Section 5 setting): T = 4, CE 0.1, KD 0.9; TTM / WTTM CE 1.
KD_TEMPERATURE, KD_CE_WEIGHT, KD_WEIGHT, TTM_CE_WEIGHT = 4.0, 0.1, 0.9, 1.0
_KD_SOURCE = "KD baseline of the paper, Eq. 1"
_TTM_SOURCE = "the paper's TTM / WTTM runs"


def _positive(name: str, value: object) -> float:
    return check_number(name, value, low=0, low_open=True)


def _non_negative(name: str, value: object) -> float:
    return check_number(name, value, low=0)


def _fraction(name: str, value: object) -> float:
    return check_number(name, value, low=0, high=1, high_open=True)


def _weighting(name: str, value: object) -> str:
    if value not in WEIGHTINGS:
        raise ValueError(f"{name} must be one of {WEIGHTINGS}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class HyperParameter:
    """One hyper-parameter of a term: its default, where that default comes from, and how it is set.

    ``field`` names the :class:`~wttm_core.engine.TrainConfig` field / ``build_method`` keyword that sets it
    (``None``: only the method string sets it, e.g. ``dkd(beta=6)``). ``default=None`` with ``required`` means
    "no default: give it or take a Table 8/9 preset".
    """

    name: str
    default: float | str | None
    source: str
    help: str
    field: str | None = None
    check: Callable[[str, Any], Any] = _positive
    required: bool = False


TermFunction = Callable[[Tensor, Tensor | None, Tensor, Mapping[str, Any]], Tensor]
Schedule = Callable[[int, Mapping[str, Any]], float]


@dataclass(frozen=True)
class LossTerm:
    """One loss term and, when ``base``, the method of the same name (its CE weight and its own weight).

    ``weight`` is the term's weight when it is the base method: a number or the name of one of its
    hyper-parameters. A base method's cross-entropy weight is its ``ce_weight`` hyper-parameter (none: no CE).
    ``part`` is the name under which the term is logged (``wttm-noce`` is the ``wttm`` term without CE).
    ``schedule(epoch, hp)`` scales the term's weight at a 0-based epoch (``None``: constant).
    """

    name: str
    function: TermFunction
    objective: str
    reference: str
    params: tuple[HyperParameter, ...] = ()
    needs_teacher: bool = True
    presets: bool = False
    base: bool = True
    addable: bool = True
    weight: float | str = 1.0
    part: str | None = None
    schedule: Schedule | None = None

    @property
    def part_name(self) -> str:
        return self.part or self.name

    def param(self, name: str) -> HyperParameter:
        return next(p for p in self.params if p.name == name)


def linear_warmup(epoch: int, hp: Mapping[str, Any]) -> float:
    """``min((epoch + 1) / warmup, 1)``: the weight grows linearly over the first ``warmup`` epochs (DKD's)."""
    return min((epoch + 1) / float(hp["warmup"]), 1.0)


def sample_weights(teacher_logits: Tensor, gamma: float, weighting: str) -> Tensor:
    """Per-sample weights of the weighted TTM term, ``[N]``, no gradient, no host read-back.

    ``power-sum`` is WTTM's ``U_gamma(p^t)`` (Eqs. 22-23); the others are alternatives for experiments.
    """
    if weighting == "power-sum":
        return K._wttm_weights(teacher_logits, gamma)
    if weighting == "power-sum-normalised":
        weights = K._wttm_weights(teacher_logits, gamma)
        return weights / weights.mean()
    teacher = teacher_logits.detach().float()
    if weighting == "teacher-entropy":
        p = torch.softmax(gamma * teacher, dim=-1)
        return -torch.special.xlogy(p, p).sum(dim=-1)
    if weighting == "one-minus-max":
        return 1.0 - torch.softmax(teacher, dim=-1).amax(dim=-1)
    if weighting == "none":
        return torch.ones(teacher.shape[0], device=teacher.device)
    raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


# ------------------------------------------------------------------------------------------------ term functions
def _ce(z: Tensor, v: Tensor | None, y: Tensor, hp: Mapping[str, Any]) -> Tensor:
    return F.cross_entropy(z.float(), y, label_smoothing=hp["label_smoothing"])


def _kd(z: Tensor, v: Tensor | None, y: Tensor, hp: Mapping[str, Any]) -> Tensor:
    return K._kd(z, v, hp["temperature"]).mean()  # type: ignore[arg-type]


def _ttm(z: Tensor, v: Tensor | None, y: Tensor, hp: Mapping[str, Any]) -> Tensor:
    return K._ttm(z, v, hp["gamma"]).mean()  # type: ignore[arg-type]


def _wttm(z: Tensor, v: Tensor | None, y: Tensor, hp: Mapping[str, Any]) -> Tensor:
    if hp["weighting"] == "power-sum":
        return K._wttm(z, v, hp["gamma"]).mean()  # type: ignore[arg-type]
    per_sample = K._ttm(z, v, hp["gamma"])  # type: ignore[arg-type]
    return (sample_weights(v, hp["gamma"], hp["weighting"]) * per_sample).mean()  # type: ignore[arg-type]


def _renyi(z: Tensor, v: Tensor | None, y: Tensor, hp: Mapping[str, Any]) -> Tensor:
    order = hp["order"] if hp["order"] is not None else 1.0 / hp["temperature"]
    return -K._renyi_from_log(torch.log_softmax(z.float(), dim=-1), order).mean()


# ------------------------------------------------------------------------------------------------ the table
def _ce_weight(default: float, source: str) -> HyperParameter:
    return HyperParameter("ce_weight", default, source, "cross-entropy weight", "ce_weight", _non_negative)


_LABEL_SMOOTHING = HyperParameter(
    "label_smoothing", 0.0, "plain CE", "label smoothing of the CE term", "label_smoothing", _fraction
)
_TEMPERATURE = HyperParameter("temperature", KD_TEMPERATURE, _KD_SOURCE, "KD temperature T", "temperature")
_GAMMA = HyperParameter("gamma", None, "Tables 8-9", "power gamma = 1/T", "gamma", required=True)
_BETA = HyperParameter("beta", None, "Tables 8-9", "weight of the term", "beta", required=True)
_WEIGHTING = HyperParameter(
    "weighting", "power-sum", "Eq. 22", "WTTM's sample weight (experiments: alternatives)", "weighting", _weighting
)
_TTM_CE = _ce_weight(TTM_CE_WEIGHT, _TTM_SOURCE)
_DKD_SOURCE = "Zhao et al. (mdistiller CIFAR-100 setting)"
_LSKD_SOURCE = "Sun et al. (their CIFAR-100 runs: --base-temp 2 --kd-weight 9)"
_WTTM_OBJECTIVE = "U_gamma(p^t) D(p^t_T || q)"

TERMS: dict[str, LossTerm] = {
    term.name: term
    for term in (
        LossTerm(
            "ce", _ce, "H(y, q)", "vanilla training", (_ce_weight(1.0, "vanilla training"), _LABEL_SMOOTHING),
            needs_teacher=False, addable=False,
        ),
        LossTerm(
            "kd", _kd, "T^2 D(p^t_T || q_T)", "Eq. 1",
            (
                _ce_weight(KD_CE_WEIGHT, _KD_SOURCE), _TEMPERATURE,
                HyperParameter("kd_weight", KD_WEIGHT, _KD_SOURCE, "KD weight lambda", "kd_weight", _non_negative),
            ),
            weight="kd_weight",
        ),
        LossTerm(
            "ttm", _ttm, "D(p^t_T || q)", "Eq. 2", (_TTM_CE, _GAMMA, _BETA), presets=True, weight="beta"
        ),
        LossTerm(
            "wttm", _wttm, _WTTM_OBJECTIVE, "Eq. 23", (_TTM_CE, _GAMMA, _BETA, _WEIGHTING), presets=True,
            weight="beta",
        ),
        LossTerm(
            "wttm-noce", _wttm, _WTTM_OBJECTIVE + " without CE", "Table 6", (_GAMMA, _BETA, _WEIGHTING),
            presets=True, weight="beta", part="wttm",
        ),
        LossTerm(
            "renyi", _renyi, "-H_alpha(q)", "Eq. 15",
            (
                HyperParameter("order", None, "1/T as in Eq. 15", "order alpha", "renyi_order"),
                _TEMPERATURE,
            ),
            needs_teacher=False, base=False,
        ),
        LossTerm(
            "dkd", lambda z, v, y, hp: K._dkd(z, v, y, hp["alpha"], hp["beta"], hp["temperature"]).mean(),
            "T^2 (alpha TCKD + beta NCKD)", "Zhao et al., CVPR 2022",
            (
                _ce_weight(1.0, _DKD_SOURCE),
                HyperParameter("alpha", K.DKD_ALPHA, _DKD_SOURCE, "TCKD weight", check=_non_negative),
                HyperParameter("beta", K.DKD_BETA, _DKD_SOURCE, "NCKD weight", check=_non_negative),
                HyperParameter("temperature", K.DKD_TEMPERATURE, _DKD_SOURCE, "temperature T"),
                HyperParameter("warmup", 20.0, _DKD_SOURCE, "epochs of linear warm-up of the term"),
            ),
            schedule=linear_warmup,
        ),
        LossTerm(
            "lskd", lambda z, v, y, hp: K._lskd(z, v, hp["temperature"]).mean(),
            "T^2 D(softmax(Z(v)/T) || softmax(Z(z)/T)), Z = z-score", "Sun et al., CVPR 2024",
            (
                _ce_weight(0.1, _LSKD_SOURCE),
                HyperParameter("temperature", K.LSKD_TEMPERATURE, _LSKD_SOURCE, "base temperature T"),
                HyperParameter("weight", 9.0, _LSKD_SOURCE, "weight of the term", check=_non_negative),
            ),
            weight="weight",
        ),
    )
}  # fmt: skip

BASE_METHODS = tuple(name for name, term in TERMS.items() if term.base)
ADDABLE_TERMS = tuple(name for name, term in TERMS.items() if term.addable)
PRESET_METHODS = tuple(name for name, term in TERMS.items() if term.presets)


def _shown(term: LossTerm, p: HyperParameter) -> str:
    default = "preset" if p.default is None and p.required else p.default
    return f"`{p.field or f'{term.name}({p.name}=)'}` {default} ({p.source})"


def methods_markdown() -> str:
    """The README's method list, generated from :data:`TERMS` (a test keeps the README equal to it)."""
    rows = ["| method | objective (plus CE where it has `ce_weight`) | from | hyper-parameters: default (source) |"]
    rows.append("|---|---|---|---|")
    for term in TERMS.values():
        usage = "" if term.base else " (added term only)"
        weight = f"{term.weight} * " if isinstance(term.weight, str) else ""
        warm = "; weight warmed up over the first epochs" if term.schedule is not None else ""
        objective = f"{weight}{term.objective}".replace("|", "\\|")
        params = "; ".join(_shown(term, p) for p in term.params)
        rows.append(f"| `{term.name}`{usage} | `{objective}`{warm} | {term.reference} | {params} |")
    return "\n".join(rows)
