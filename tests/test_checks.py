"""The convention of :mod:`wttm_core._checks`: a wrong kind is a TypeError that is also a ValueError, a value out of
range a ValueError, and every message names the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wttm_core._checks import ArgumentTypeError, check_int, check_number, check_scalar


@pytest.mark.parametrize("value", ["3", 2.0, 2.5, True, None, [1]])
def test_a_wrong_kind_is_both_a_type_error_and_a_value_error(value):
    with pytest.raises(ArgumentTypeError, match=r"^epochs must be an integer >= 1, got ") as raised:
        check_int("epochs", value, low=1)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, ValueError)


def test_a_value_out_of_range_is_a_value_error_only():
    with pytest.raises(ValueError, match=r"^num_classes must be >= 1, got 0$") as raised:
        check_int("num_classes", 0, low=1)
    assert not isinstance(raised.value, TypeError)
    with pytest.raises(ValueError, match=r"^port must be >= 1 and <= 65535, got 70000$"):
        check_int("port", 70000, low=1, high=65535)
    with pytest.raises(ValueError, match=r"^size must be >= 1 and <= 1234567, got 2000000$"):
        check_int("size", 2_000_000, low=1, high=1_234_567)
    with pytest.raises(ValueError, match=r"^lr must be > 0, got -1.0$"):
        check_number("lr", -1.0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"^similarity must be >= 0 and < 1, got 1$"):
        check_number("similarity", 1, low=0, high=1, high_open=True)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            check_number("lr", bad, low=0, low_open=True)


def test_good_values_come_back_as_plain_python_numbers():
    assert check_int("seed", np.int64(7), low=0) == 7 and type(check_int("seed", np.int64(7))) is int
    assert check_int("size", 10**30, low=1) == 10**30  # no float conversion on the way
    assert check_number("fraction", 1, low=0, high=1) == 1.0 and type(check_number("x", 1)) is float
    assert check_number("gamma", np.float32(0.25), low=0, low_open=True) == 0.25


def test_check_scalar_follows_the_same_convention():
    with pytest.raises(ArgumentTypeError, match="gamma must be a real number"):
        check_scalar("gamma", "0.5")
    with pytest.raises(ValueError, match="gamma must be > 0"):
        check_scalar("gamma", 0.0)
    assert check_scalar("gamma", torch.tensor(0.5)) == 0.5
