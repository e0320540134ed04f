"""Distillation methods as weighted sums of the loss terms in :mod:`wttm_core.loss_terms` (mdistiller-like).

A :class:`Method` maps ``(student_logits, teacher_logits, labels)`` to a :class:`LossParts`: the total loss and
each weighted term by name, so the training loop can log every part. A method string names a base method and
optional added terms: ``"wttm"``, ``"wttm+0.8*kd"``, ``"kd+2*renyi"``. The first name contributes its full
objective (its cross-entropy and its own term, Eq. 24: ``L = H(y, q) + beta U D(p^t_T || q) + mu L_other``),
every further ``[w*]name`` its term without a second cross-entropy, times ``w`` (default 1). A term's
hyper-parameters that have no configuration field are set in the string itself: ``"wttm+0.5*dkd(beta=6)"``.

The base methods, the addable terms, their hyper-parameters and defaults are the rows of
:data:`wttm_core.loss_terms.TERMS` (``wttm methods`` in the README lists them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wttm_core.engine.step import LossParts, Method  # the sum of terms runs in the step; here it is built
from wttm_core.loss_terms import BASE_METHODS, TERMS, WEIGHTINGS, LossTerm, sample_weights

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

_NUMBER = r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_TERM_RE = re.compile(
    rf"^\s*(?:(?P<weight>{_NUMBER})\s*\*\s*)?(?P<name>[a-z][a-z-]*)\s*(?:\((?P<options>[^()]*)\))?\s*$"
)
_OPTION_RE = re.compile(rf"^\s*(?P<key>[a-z_]+)\s*=\s*(?P<value>{_NUMBER}|[a-z-]+)\s*$")
_TOP_LEVEL_PLUS = re.compile(r"\+(?![^()]*\))")


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method string: the base method, the extra ``(weight, term)`` pairs after it and any
    ``term(key=value)`` options (``(term, ((key, value), ...))`` pairs)."""

    base: str
    extras: tuple[tuple[float, str], ...] = ()
    options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.base, *(name for _, name in self.extras))


def _parse_options(spec: str, name: str, text: str | None) -> tuple[tuple[str, Any], ...]:
    if not text or not text.strip():
        return ()
    found = []
    for item in text.split(","):
        match = _OPTION_RE.match(item)
        if match is None:
            raise ValueError(f"method {spec!r}: cannot parse option {item.strip()!r} of {name} (expected KEY=VALUE)")
        value: Any = match["value"]
        found.append((match["key"], value if value[0].isalpha() else float(value)))
    return tuple(found)


def parse_method(spec: str) -> MethodSpec:
    """Parse ``"wttm"``, ``"wttm+kd"``, ``"wttm+0.8*kd"``, ``"kd+2*renyi"``, ``"dkd(beta=6)"`` into a spec."""
    if not isinstance(spec, str):
        raise TypeError(f"method must be a string, got {type(spec).__name__}")
    base, extras, options = "", [], []
    for index, piece in enumerate(_TOP_LEVEL_PLUS.split(spec)):
        match = _TERM_RE.match(piece)
        if match is None or (match["weight"] or "").startswith(("-", "+")):
            raise ValueError(f"method {spec!r}: cannot parse {piece!r} (expected NAME or WEIGHT*NAME)")
        name, weight = match["name"], match["weight"]
        if index == 0:
            if weight is not None or name not in TERMS or not TERMS[name].base:
                bases = tuple(n for n, term in TERMS.items() if term.base)
                raise ValueError(f"method must start with one of {bases}, got {spec!r}")
            base = name
        elif name not in TERMS or not TERMS[name].addable:
            addable = ", ".join(n for n, term in TERMS.items() if term.addable)
            raise ValueError(f"method {spec!r}: an added term must be one of {addable}, got {name!r}")
        else:
            name = TERMS[name].part_name
            value = float(weight) if weight is not None else 1.0
            if not math.isfinite(value):  # e.g. 1e999 (infinite): refused before anything is written (issue 13)
                raise ValueError(f"method {spec!r}: the weight of {name!r} must be a finite number, got {weight}")
            extras.append((value, name))
        if match["options"] is not None:
            options.append((name, _parse_options(spec, name, match["options"])))
    parts = [*_base_parts(TERMS[base]), *(term for _, term in extras)]
    duplicated = {n for n in parts if parts.count(n) > 1}
    if duplicated:
        raise ValueError(f"method {spec!r} uses the term(s) {sorted(duplicated)} twice")
    return MethodSpec(base, tuple(extras), tuple(options))


def _base_parts(term: LossTerm) -> tuple[str, ...]:
    """The parts a base method contributes: its CE (when it has a CE weight) and its own term."""
    has_ce = any(p.name == "ce_weight" for p in term.params)
    return tuple(dict.fromkeys((*(("ce",) if has_ce else ()), term.part_name)))


def _resolve(term: LossTerm, given: Mapping[str, Any], local: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The term's hyper-parameters: ``term(key=value)`` in the string, else the keyword, else the default."""
    unknown = set(local) - {p.name for p in term.params}
    if unknown:
        known = ", ".join(p.name for p in term.params) or "none"
        raise ValueError(f"method {method!r}: {term.name} has no option {sorted(unknown)[0]!r} (options: {known})")
    values: dict[str, Any] = {}
    for p in term.params:
        label = p.field or f"{term.name}({p.name}=...)"
        value = local.get(p.name, given.get(p.field) if p.field is not None else None)
        value = p.default if value is None else value
        if value is None and p.required:
            missing = " and ".join(q.field or q.name for q in term.params if q.required)
            raise ValueError(f"method {method!r} needs {missing} (no Table 8/9 preset for this pair: pass them)")
        values[p.name] = p.check(label, value) if value is not None else None
    return values


def build_method(spec: str | MethodSpec, **hyperparameters: Any) -> Method:
    """Build a :class:`Method` from a spec and its hyper-parameters (keywords = configuration fields).

    The keywords are the ``field`` names of :data:`wttm_core.loss_terms.TERMS`' hyper-parameters: ``gamma``
    (= 1/T, Eqs. 8-9) and ``beta`` (required by ``ttm``/``wttm``), ``temperature`` (KD's T), ``ce_weight``
    (default per base method: 0.1 for ``kd``, 1 otherwise, none for ``wttm-noce``), ``kd_weight`` (KD's
    lambda), ``label_smoothing``, ``weighting`` and ``renyi_order`` (default ``1 / temperature``, Eq. 15).
    ``None`` means the table's default.
    """
    fields = {p.field for term in TERMS.values() for p in term.params if p.field is not None}
    unknown = set(hyperparameters) - fields
    if unknown:
        raise TypeError(f"build_method() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    parsed = parse_method(spec) if isinstance(spec, str) else spec
    text = spec if isinstance(spec, str) else parsed.base
    local = {name: dict(options) for name, options in parsed.options}
    base = TERMS[parsed.base]
    base_hp = _resolve(base, hyperparameters, local.get(parsed.base, {}), text)
    ce = TERMS["ce"]
    parts: list[tuple[str, float, LossTerm, dict[str, Any]]] = []
    if "ce_weight" in base_hp:
        ce_hp = _resolve(ce, hyperparameters, local.get("ce", {}), text)
        parts.append(("ce", base_hp["ce_weight"], ce, ce_hp))
    if base.name != "ce":
        weight = base_hp[base.weight] if isinstance(base.weight, str) else float(base.weight)
        parts.append((base.part_name, weight, base, base_hp))
    for weight, name in parsed.extras:
        term = TERMS[name]
        parts.append((name, weight, term, _resolve(term, hyperparameters, local.get(name, {}), text)))
    return Method(parsed, parts)
