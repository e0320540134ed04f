"""Exercise checkers for the notebooks: answers and "implement it yourself" cells, checked in words.

Layer: lab (it imports nothing from the training engine). Two functions, both safe in a teaching cell - they
print one clear message and never raise, whatever the student typed:

- :func:`check_answer` - a number (or a word, for a choice) against the expected value. The first miss gives
  the ``hint``; the expected value is revealed only after ``tries_before_reveal`` misses (two by default) or on
  request (``reveal=True``). Tries are counted per exercise ``name`` in the running kernel.
- :func:`check_implementation` - a student's function against the reference (a ``wttm_core`` function) on a list
  of inputs. A body left as ``...`` (or ``raise NotImplementedError``) gives "not implemented yet", so a notebook
  run in batch with the TODO unfilled still passes; otherwise the answer is "matches to 3e-16" or a diagnosis:
  wrong shape, NaN, rows that do not sum to one, a flipped sign, a constant factor, or one of the ``mistakes``
  the caller names (a known wrong formula, e.g. "you used T where gamma = 1 / T belongs").

A third, :func:`verify`, replaces ``assert`` in a teaching cell: it prints that a claim holds for the numbers on
screen, or - at a parameter value where it does not - says so and why, instead of stopping the notebook.

All three return a :class:`Feedback` (``ok`` is True, False, or None for "nothing to check yet"; ``message`` is the
printed text). A Feedback displays nothing by itself (the message is already printed), so the call can be the
last line of a cell. Pattern for a notebook::

    def my_power_transform(p, gamma):
        # TODO: raise every probability to gamma and renormalise over the last dimension (Eq. 7)
        ...

    check_implementation(my_power_transform, W.power_transform, [(p, 0.25), (p, 2.0)], normalised=True)

    answer = None  # your number
    check_answer(answer, expected, name="01-max-U", hint="Which distribution makes every p_i^gamma equal?")
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch

__all__ = ["Feedback", "check_answer", "check_implementation", "reset_tries", "verify"]

_TRIES: dict[str, int] = {}

NOT_ANSWERED = "Not answered yet: set `answer` above and run this cell again."
NOT_IMPLEMENTED = "Not implemented yet: fill in the TODO in the function above and run the cell again."


@dataclass(frozen=True)
class Feedback:
    """The verdict of a checker: ``ok`` (True / False / None = nothing to check yet) and the printed ``message``."""

    ok: bool | None
    message: str

    def __bool__(self) -> bool:
        return self.ok is True

    def _ipython_display_(self) -> None:
        """Show nothing: the checker has already printed :attr:`message`."""


def _say(ok: bool | None, message: str) -> Feedback:
    print(message)
    return Feedback(ok, message)


def reset_tries(name: str | None = None) -> None:
    """Forget the tries of exercise ``name`` (of every exercise with ``None``)."""
    if name is None:
        _TRIES.clear()
    else:
        _TRIES.pop(name, None)


def _format(value: Any) -> str:
    return f"{float(value):.4g}" if isinstance(value, Real) and not isinstance(value, bool) else repr(value)


def _matches(answer: Any, expected: Any, rel_tol: float, abs_tol: float) -> bool | str:
    """True / False, or a message when ``answer`` has the wrong kind."""
    if isinstance(expected, str):
        if not isinstance(answer, str | int) or isinstance(answer, bool):
            return f"Your answer should be one of the named choices (a word in quotes), got {answer!r}."
        return str(answer).strip().lower() == expected.strip().lower()
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, Real):
        return f"Your answer should be a number (like 12.3), got {type(answer).__name__} {answer!r}."
    if math.isnan(float(answer)):
        return "Your answer is NaN: check the computation that produced it."
    return math.isclose(float(answer), float(expected), rel_tol=rel_tol, abs_tol=abs_tol)


def check_answer(
    answer: Any,
    expected: float | str,
    *,
    name: str | None = None,
    hint: str = "",
    explanation: str = "",
    rel_tol: float = 0.02,
    abs_tol: float = 0.0,
    reveal: bool = False,
    tries_before_reveal: int = 2,
    choices: Sequence[str] | None = None,
) -> Feedback:
    """Check a student's ``answer`` against ``expected`` and print the verdict; never raises.

    Args:
        answer: the student's number (or word, when ``expected`` is a string); ``None`` = not answered yet.
        expected: the right value, or the right choice (compared case-insensitively).
        name: the exercise's name, under which tries are counted (default: the hint's text).
        hint: printed on a miss, before the value is revealed.
        explanation: printed with a correct answer and with a reveal (why the value is what it is).
        rel_tol, abs_tol: tolerances for numbers (``math.isclose``).
        reveal: show the expected value now ("I give up").
        tries_before_reveal: misses after which the expected value is shown.
        choices: the allowed words for a choice question (a word outside them is not counted as a try).
    """
    key = name if name is not None else f"{hint}|{expected!r}"
    shown = f"{_format(expected)}" + (f". {explanation}" if explanation else "")
    if reveal:
        return _say(None, f"The answer is {shown}")
    if answer is None:
        return _say(None, NOT_ANSWERED)
    if choices is not None and str(answer).strip().lower() not in {c.strip().lower() for c in choices}:
        return _say(False, f"Choose one of {', '.join(repr(c) for c in choices)}; got {answer!r}.")
    verdict = _matches(answer, expected, rel_tol, abs_tol)
    if isinstance(verdict, str):
        return _say(False, verdict)
    if verdict:
        _TRIES.pop(key, None)
        return _say(True, "Correct!" + (f" {explanation}" if explanation else ""))
    _TRIES[key] = _TRIES.get(key, 0) + 1
    tries = _TRIES[key]
    if tries >= tries_before_reveal:
        return _say(False, f"Not quite ({_format(answer)}), try {tries}. The answer is {shown}")
    left = tries_before_reveal - tries
    tip = f" Hint: {hint}" if hint else ""
    return _say(
        False,
        f"Not quite: {_format(answer)} is not it.{tip} ({left} more {'try' if left == 1 else 'tries'} before the "
        "answer is shown, or pass reveal=True.)",
    )


# ------------------------------------------------------------------------------------------ implementations


def _as_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, Real) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """Same shape, finite, and within ``tol`` relative to ``b``'s largest entry."""
    if a.shape != b.shape or not bool(torch.isfinite(a).all()):
        return False
    if a.numel() == 0:
        return True
    return float((a - b).abs().max()) <= tol * (1.0 + float(b.abs().max()))


def _diagnose(got: torch.Tensor, want: torch.Tensor, normalised: bool, tol: float) -> str:
    """The most specific reason why ``got`` differs from ``want`` (both float64, same shape)."""
    if normalised and got.dim() >= 1:
        sums = got.sum(-1)
        if float((sums - 1).abs().max()) > 1e-6:
            return (
                f"your output is not normalised: its sums over the last dimension run from {float(sums.min()):.4g} "
                f"to {float(sums.max()):.4g}, not 1 - check the row sums (divide by the sum over the classes)."
            )
    if _close(got, -want, tol) and float(want.abs().max()) > 0:
        return "your output has the opposite sign of the reference: check the order of the two terms."
    scale = float((got * want).sum() / (want * want).sum()) if float((want * want).sum()) > 0 else math.nan
    if math.isfinite(scale) and abs(scale - 1) > 1e-6 and _close(got, scale * want, tol):
        return f"your output is the reference times a constant {scale:.4g}: a factor is missing or extra."
    return ""


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, str | None]:
    """``fn(*args)`` and None, or (None, what went wrong): NOT_IMPLEMENTED or the error in one line."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, NOT_IMPLEMENTED
    except Exception as error:  # a teaching cell reports the student's error in words, it does not crash
        line = traceback.extract_tb(error.__traceback__)[-1]
        where = f" (line {line.lineno}: {line.line})" if line.line else ""
        return None, f"Your function raised {type(error).__name__}: {error}{where}"


def _check_one(
    result: Any, want: Any, args: tuple[Any, ...], tol: float, normalised: bool, mistakes: Mapping[str, Callable]
) -> str | None:
    """None when ``result`` matches ``want``; otherwise the message for this input."""
    got = _as_tensor(result)
    reference = _as_tensor(want)
    if got is None:
        return f"Your function returned {type(result).__name__}, not a tensor: return the result (a torch.Tensor)."
    got, reference = got.to(torch.float64), reference.to(torch.float64)
    if got.shape != reference.shape:
        return f"your output has shape {tuple(got.shape)}, the reference {tuple(reference.shape)}: check keepdim / dim."
    if not bool(torch.isfinite(got).all()):
        return "your output contains NaN or inf: look for a log of 0 or a division by 0."
    if _close(got, reference, tol):
        return None
    for message, wrong in mistakes.items():
        value = _as_tensor(_call(wrong, args)[0])
        if value is not None and value.shape == got.shape and _close(got, value.to(torch.float64), tol):
            return message
    detail = _diagnose(got, reference, normalised, tol)
    gap = float((got - reference).abs().max())
    return detail or f"largest difference from the reference {gap:.3g}: compare your formula with the equation."


def check_implementation(
    student_fn: Callable[..., Any] | None,
    reference: Callable[..., Any],
    inputs: Sequence[tuple[Any, ...]],
    *,
    tol: float = 1e-9,
    normalised: bool = False,
    mistakes: Mapping[str, Callable[..., Any]] | None = None,
) -> Feedback:
    """Compare ``student_fn(*args)`` with ``reference(*args)`` for every ``args`` in ``inputs``; print a verdict.

    Never raises: an unfilled TODO (a body of ``...`` returning None, or ``raise NotImplementedError``) prints
    "Not implemented yet"; an error inside the student's function is reported with its line. On a mismatch the
    message names the first failing input and the most specific diagnosis: one of ``mistakes`` (message -> a
    function computing that known wrong formula from the same arguments), rows that do not sum to one (with
    ``normalised=True``), a flipped sign, a constant factor, or the largest difference. ``tol`` is relative to
    the reference's largest entry.
    """
    if student_fn is None:
        return _say(None, NOT_IMPLEMENTED)
    if not callable(student_fn):
        return _say(False, f"Pass your function itself (no parentheses), got {type(student_fn).__name__}.")
    worst = 0.0
    for i, args in enumerate(inputs):
        args = tuple(args)
        result, problem = _call(student_fn, args)
        if problem is None and (result is None or result is Ellipsis):
            problem = NOT_IMPLEMENTED
        if problem == NOT_IMPLEMENTED:
            return _say(None, NOT_IMPLEMENTED)
        want, reference_problem = _call(reference, args)
        if reference_problem is not None:
            return _say(False, f"The reference could not run on test input {i + 1}: {reference_problem}")
        problem = problem or _check_one(result, want, args, tol, normalised, dict(mistakes or {}))
        if problem is not None:
            case = f"On test input {i + 1} of {len(inputs)}: " if len(inputs) > 1 else ""
            return _say(False, f"Not yet. {case}{problem[0].upper()}{problem[1:]}")
        worst = max(worst, float((_as_tensor(result).double() - _as_tensor(want).double()).abs().max()))
    return _say(True, f"Well done: your function matches wttm_core to {worst:.1e} on {len(inputs)} test inputs.")


def verify(claim: str, holds: bool, detail: str = "", *, otherwise: str = "") -> Feedback:
    """Print whether ``claim`` holds for the numbers on screen (``detail``: the numbers); never raises.

    Use it where a notebook would ``assert``: a student who moves a parameter into a range where the claim fails
    reads ``otherwise`` (why that can happen) instead of a traceback. Hard checks belong in the tests.
    """
    extra = f" ({detail})" if detail else ""
    if holds:
        return _say(True, f"✔ {claim}{extra}")
    return _say(False, f"✘ Not here: {claim}{extra}." + (f" {otherwise}" if otherwise else ""))
