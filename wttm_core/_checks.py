"""Argument validation: the one home of the checks that the public functions run at their edge.

Every check raises where the bad value enters, with the argument's name and what was expected, so users see
one readable line instead of a deep torch traceback.

One convention for every check here: a value of the wrong kind (a string where a number goes, ``2.5`` or
``True`` where an integer goes, a list where a tensor goes) raises :class:`ArgumentTypeError`, which is both a
``TypeError`` (what Python raises for a wrong type) and a ``ValueError`` (so the command line, and any caller that
treats every bad argument as a ``ValueError``, catches it); a value of the right kind but out of range raises
``ValueError``. Numbers: :func:`check_number` (a bounded real or integer, e.g. from a configuration),
:func:`check_int` (the same for integers, typed ``int``) and :func:`check_scalar` (a positive loss
hyper-parameter that may also be a one-element tensor). Write ``None if x is None else check_int(...)`` where
``None`` means "the default".

Two kinds: argument checks (numbers, shapes, dtypes, keywords) cost nothing on the device; value checks (finite
logits and results, probabilities that sum to one) read tensor values back to the host. The public functions of
:mod:`wttm_core.functional` run both; the training engine calls the same maths through its unchecked kernels by
design, so its step never waits for the device (it checks the epoch's loss once instead). Value checks are also
skipped under ``torch.func.vmap`` and during a CUDA-graph capture, where values cannot be read.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind: a ``TypeError`` that is also a ``ValueError`` (see the module docstring)."""


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    """``value`` as a float (an int with ``integer=True``) after checking that it is a finite real number in
    ``[low, high]`` (an open end where ``low_open`` / ``high_open``). Booleans are not numbers here.

    The one number check of the package: ``check_number("lr", lr, low=0, low_open=True)`` reads "lr > 0". A value
    that is not a number (not an integer) raises :class:`ArgumentTypeError`, one out of range (or NaN / Inf) a
    ``ValueError``; both messages name the argument: "epochs must be an integer >= 1, got 'x'", "lr must be > 0,
    got -1.0".
    """
    bounds = [f"{'>' if low_open else '>='} {_shown(low)}"] if low is not None else []
    bounds += [f"{'<' if high_open else '<='} {_shown(high)}"] if high is not None else []
    rule = " and ".join(bounds)
    if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
        what = "an integer" if integer else "a number"
        raise ArgumentTypeError(f"{name} must be {what}{' ' + rule if rule else ''}, got {value!r}")
    finite = integer or math.isfinite(value)  # type: ignore[arg-type]
    ok = finite
    if ok and low is not None:
        ok = value > low if low_open else value >= low  # type: ignore[operator]
    if ok and high is not None:
        ok = value < high if high_open else value <= high  # type: ignore[operator]
    if not ok:
        rule = rule if finite else f"a finite number{' ' + rule if rule else ''}"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return int(value) if integer else float(value)  # type: ignore[arg-type]


def _shown(bound: float) -> str:
    """A bound as a message shows it: an int in full (1000000, not 1e+06), a float in short (0.5, 1e-08)."""
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int after checking that it is an integer in ``[low, high]`` (:func:`check_number`'s rules:
    ``True`` is not an integer, ``2.0`` neither; a numpy integer is)."""
    return int(check_number(name, value, low=low, high=high, integer=True))


def check_scalar(name: str, value: object, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float after checking that it is a real, positive (or non-negative) number."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_reduction(reduction: object) -> str:
    """Check the ``reduction=`` keyword (same spelling as ``torch.nn.functional``)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction  # type: ignore[return-value]


def check_float_tensor(name: str, x: object) -> Tensor:
    """Check that ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ArgumentTypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_logits(name: str, x: object) -> Tensor:
    """Check one tensor of logits: floating point, 2-D ``[N, K]`` and non-empty."""
    x = check_float_tensor(name, x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D [batch, classes], got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one class, got shape {tuple(x.shape)}")
    return x


def check_logit_pair(student_logits: object, teacher_logits: object) -> tuple[Tensor, Tensor]:
    """Check a (student, teacher) pair of logits: each valid on its own, and of the same shape."""
    check_logits("student_logits", student_logits)
    check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:  # type: ignore[union-attr]
        raise ValueError(
            "student_logits and teacher_logits must have the same shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"  # type: ignore[union-attr]
        )
    return student_logits, teacher_logits  # type: ignore[return-value]


def check_labels(labels: object, logits: Tensor) -> Tensor:
    """Check class labels for ``[N, K]`` logits: an integer tensor ``[N]`` with values in ``[0, K)`` (the range
    is a value check)."""
    if not isinstance(labels, Tensor):
        raise ArgumentTypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ArgumentTypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape {tuple(logits.shape[:1])}, got {tuple(labels.shape)}")
    if _values_inspectable(labels) and bool(((labels < 0) | (labels >= logits.shape[1])).any()):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}) (class indices)")
    return labels


def check_dim(name: str, x: Tensor, dim: int) -> int:
    """Check that ``dim`` indexes a non-empty dimension of ``x``."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ArgumentTypeError(f"dim must be an int, got {type(dim).__name__}")
    if not -x.dim() <= dim < max(x.dim(), 1):
        raise ValueError(f"dim={dim} is out of range for {name} with shape {tuple(x.shape)}")
    if x.dim() == 0 or x.shape[dim] == 0:
        raise ValueError(f"{name} must have a non-empty dimension {dim}, got shape {tuple(x.shape)}")
    return dim


def _float_along(name: str, x: object, dim: int) -> tuple[Tensor, bool]:
    """``x`` checked as a float tensor with a non-empty ``dim``, and whether its values can be read."""
    x = check_float_tensor(name, x)
    check_dim(name, x, dim)
    return x, _values_inspectable(x)


def check_probabilities(name: str, p: object, dim: int) -> Tensor:
    """Check that ``p`` holds finite, non-negative probabilities that sum to one along ``dim``."""
    p, inspectable = _float_along(name, p, dim)
    if not inspectable:
        return p
    check_finite(name, p)
    if bool((p < 0).any()):
        raise ValueError(f"{name} must be non-negative (probabilities)")
    # loose enough for probabilities rounded to bfloat16 and cast back, tight enough to catch logits or counts
    tol = 5e-2 if p.dtype in (torch.float16, torch.bfloat16) else 1e-2
    total = p.sum(dim=dim, dtype=torch.float64)
    if bool(((total - 1).abs() > tol).any()):
        worst = float((total - 1).abs().max())
        raise ValueError(f"{name} must sum to 1 along dim={dim} (largest deviation {worst:.3g})")
    return p


def check_finite(name: str, x: Tensor) -> Tensor:
    """Check that a tensor holds no NaN or Inf (a value check)."""
    if _values_inspectable(x) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return x


def check_log_weights(name: str, log_p: object, dim: int) -> Tensor:
    """Check log-probabilities (or unnormalised log-weights): no NaN, no +Inf, not all -Inf along ``dim``."""
    log_p, inspectable = _float_along(name, log_p, dim)
    if not inspectable:
        return log_p
    if bool(torch.isnan(log_p).any()) or bool((log_p == math.inf).any()):
        raise ValueError(f"{name} contains NaN or +Inf")
    if bool((log_p == -math.inf).all(dim=dim).any()):
        raise ValueError(f"{name} has a slice along dim={dim} that is entirely -Inf (zero total mass)")
    return log_p


def raise_if_not_finite(result: Tensor, **inputs: Tensor) -> None:
    """After a result is computed, make sure it is finite; otherwise name the input that made it so.

    Under ``torch.func.vmap`` values cannot be inspected (no data-dependent control flow), so the check is
    skipped there; ``torch.func.grad`` and plain autograd keep it. It is also skipped during CUDA graph capture.
    """
    if not _values_inspectable(result):
        return
    if math.isfinite(result.item()) if result.dim() == 0 else bool(torch.isfinite(result).all()):
        return
    for name, x in inputs.items():
        check_finite(name, x)
    raise FloatingPointError("the result is not finite although the inputs are; please report this input")


def _values_inspectable(x: Tensor) -> bool:
    """Whether the values of ``x`` can be read: not under vmap, not in a CUDA capture."""
    return not _is_vmapped(x) and not _capturing(x)


def _capturing(x: Tensor) -> bool:
    """Whether ``x`` lives on a CUDA device whose current stream is capturing a graph."""
    return x.is_cuda and torch.cuda.is_current_stream_capturing()


def _is_vmapped(x: Tensor) -> bool:
    """Whether ``x`` is (or wraps) a tensor batched by ``torch.func.vmap``."""
    functorch = getattr(torch._C, "_functorch", None)
    while functorch is not None and functorch.is_functorch_wrapped_tensor(x):
        if functorch.is_batchedtensor(x):
            return True
        x = functorch.get_unwrapped(x)
    return False
