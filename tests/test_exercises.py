"""The exercise checkers: hint first, reveal after two tries or on request; implementations checked in words."""

from __future__ import annotations

import pytest
import torch

import wttm_core as W
from wttm_core.exercises import (
    NOT_ANSWERED,
    NOT_IMPLEMENTED,
    Feedback,
    check_answer,
    check_implementation,
    reset_tries,
    verify,
)


@pytest.fixture(autouse=True)
def _fresh_tries():
    reset_tries()
    yield
    reset_tries()


def test_answer_not_given_right_and_wrong(capsys):
    assert check_answer(None, 63.1, name="a").ok is None
    assert NOT_ANSWERED in capsys.readouterr().out
    right = check_answer(63.0, 63.1, name="a", rel_tol=0.01, explanation="K^(1-gamma).")
    assert right.ok is True and bool(right) and "Correct! K^(1-gamma)." == right.message
    assert check_answer(torch.tensor(63.05), 63.1, name="a").ok is True  # a 0-d tensor counts as a number


def test_first_miss_hints_second_reveals_and_reveal_on_request():
    first = check_answer(50, 63.1, name="u", hint="which distribution maximises U?")
    assert first.ok is False and "Hint: which distribution maximises U?" in first.message
    assert "63.1" not in first.message and "1 more try" in first.message
    second = check_answer(51, 63.1, name="u", hint="which distribution maximises U?")
    assert second.ok is False and "The answer is 63.1" in second.message
    assert check_answer(None, 63.1, name="v", reveal=True).message.startswith("The answer is 63.1")
    # a right answer resets the count; another exercise counts its own tries
    assert check_answer(63.1, 63.1, name="u").ok
    assert "63.1" not in check_answer(1, 63.1, name="u", hint="h").message
    assert "2.5" not in check_answer(1, 2.5, name="w", hint="h").message


def test_wrong_kinds_of_answer_print_instead_of_raising():
    for bad in ("63", [63], True):
        feedback = check_answer(bad, 63.1, name="k")
        assert feedback.ok is False and "should be a number" in feedback.message
    assert "NaN" in check_answer(float("nan"), 1.0).message
    # a word outside the choices does not count as a try
    assert "Choose one of" in check_answer("d", "a", choices=["a", "b"], name="c").message
    assert check_answer(" A ", "a", choices=["a", "b"], name="c").ok is True
    assert "The answer is" not in check_answer("b", "a", choices=["a", "b"], name="c2", hint="h").message


def test_feedback_shows_nothing_of_its_own():
    feedback = Feedback(True, "x")
    assert feedback._ipython_display_() is None


def _power(p, gamma):
    powered = p**gamma
    return powered / powered.sum(-1, keepdim=True)


def _inputs():
    p = torch.softmax(torch.randn(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64), -1)
    return [(p, 0.25), (p, 2.0)]


def test_implementation_matches():
    feedback = check_implementation(_power, W.power_transform, _inputs(), normalised=True)
    assert feedback.ok is True and "matches wttm_core to" in feedback.message and "2 test inputs" in feedback.message


def test_unfilled_todo_is_not_an_error():
    def todo(p, gamma):
        # TODO
        ...

    def raises(p, gamma):
        raise NotImplementedError

    for fn in (todo, raises, None):
        feedback = check_implementation(fn, W.power_transform, _inputs())
        assert feedback.ok is None and feedback.message == NOT_IMPLEMENTED


def test_diagnoses_are_specific():
    def unnormalised(p, gamma):
        return p**gamma

    def flipped(p, gamma):
        return -W.power_transform(p, gamma)

    def doubled(p, gamma):
        return 2 * W.power_transform(p, gamma)

    def wrong_power(p, gamma):
        return _power(p, 1 / gamma)

    def crashes(p, gamma):
        return p.sum(dim=5)

    def not_a_tensor(p, gamma):
        return "p"

    def wrong_shape(p, gamma):
        return _power(p, gamma)[0]

    def nan(p, gamma):
        return _power(p, gamma) * float("nan")

    ref, inputs = W.power_transform, _inputs()
    assert "not normalised" in check_implementation(unnormalised, ref, inputs, normalised=True).message
    assert "row sums" in check_implementation(unnormalised, ref, inputs, normalised=True).message
    assert "opposite sign" in check_implementation(flipped, ref, inputs).message
    assert "times a constant 2" in check_implementation(doubled, ref, inputs).message
    mistake = {"you raised p to T instead of gamma = 1/T": lambda p, g: _power(p, 1 / g)}
    assert check_implementation(wrong_power, ref, inputs, mistakes=mistake).message.endswith("gamma = 1/T")
    crash = check_implementation(crashes, ref, inputs)
    assert crash.ok is False and "raised IndexError" in crash.message and "p.sum(dim=5)" in crash.message
    assert "not a tensor" in check_implementation(not_a_tensor, ref, inputs).message
    assert "shape (6,)" in check_implementation(wrong_shape, ref, inputs).message
    assert "NaN" in check_implementation(nan, ref, inputs).message
    assert "Pass your function itself" in check_implementation(3, ref, inputs).message


def test_first_failing_input_is_named():
    def only_small_gamma(p, gamma):
        return _power(p, min(gamma, 1.0))

    feedback = check_implementation(only_small_gamma, W.power_transform, _inputs())
    assert feedback.ok is False and "test input 2 of 2" in feedback.message


def test_verify_prints_instead_of_raising(capsys):
    assert verify("U >= 1", True, "min 1.02").message == "✔ U >= 1 (min 1.02)"
    failed = verify("U >= 1", False, "min 0.4", otherwise="For gamma > 1 the bound flips.")
    assert failed.ok is False and failed.message == "✘ Not here: U >= 1 (min 0.4). For gamma > 1 the bound flips."
    assert "✘ Not here" in capsys.readouterr().out
