"""The argument checks every module shares: name, value and expectation in each message."""

import math

import numpy as np
import pytest

from deltaprop import validation as V


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: V.check_int("epochs", 2.0), TypeError, "epochs must be an integer, got 2.0"),
        (lambda: V.check_int("epochs", True), TypeError, "epochs must be an integer, got True"),
        (lambda: V.check_int("n", -1, 0, owner="X"), ValueError, "X: n must be >= 0, got -1"),
        (lambda: V.check_number("lr", "0.1"), TypeError, r"lr must be a number, got '0.1' \(str\)"),
        (lambda: V.check_number("lr", None), TypeError, r"got None \(NoneType\)"),
        (lambda: V.check_positive("lr", math.inf), ValueError, "lr must be > 0, got inf"),
        (lambda: V.check_positive("lr", math.nan), ValueError, "lr must be > 0, got nan"),
        (
            lambda: V.check_positive("eps", -1, allow_zero=True),
            ValueError,
            "eps must be >= 0, got -1.0",
        ),
        (lambda: V.check_fraction("p", 1), ValueError, r"p must be in \[0, 1\), got 1.0"),
        (
            lambda: V.check_number("f", 0, low=0, high=1, low_open=True),
            ValueError,
            r"f must be in \(0, 1\], got 0.0",
        ),
        (lambda: V.check_number("x", 5, high=1), ValueError, "x must be <= 1, got 5.0"),
        (lambda: V.check_bool("flag", "yes"), TypeError, "flag must be True or False, got 'yes'"),
        (lambda: V.check_bool("flag", 0), TypeError, "got 0"),
        (lambda: V.check_choice("mode", "up", ("min", "max")), ValueError, "'min', 'max'; got"),
        (lambda: V.check_rng("rng", 4.2), TypeError, "rng must be a numpy.random.Generator"),
        (lambda: V.check_rng("rng", True), TypeError, "or an integer seed, got bool"),
        (lambda: V.check_rng("rng", -1), ValueError, "rng: a seed must be >= 0, got -1"),
    ],
)
def test_each_check_names_the_argument_and_the_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_checks_return_the_converted_value():
    assert V.check_int("n", np.int64(16), 1) == 16 and type(V.check_int("n", np.int64(3))) is int
    assert V.check_positive("lr", np.float32(0.5)) == 0.5
    assert V.check_fraction("p", 0) == 0.0
    assert V.check_bool("flag", np.True_) is True
    assert V.check_number("x", 7, high=7) == 7.0


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.array([1.0, np.nan, np.inf]),
            r"NaN or inf in y: 2 values in 2 rows \(first in row 1\)",
        ),
        (
            np.array([[0.0, 1.0], [np.inf, -np.inf], [1.0, 2.0]], np.float32),
            r"NaN or inf in y: 2 values in 1 row \(first in row 1\)",
        ),
        (np.full((2, 2, 2), np.nan), r"8 values in 2 rows \(first in row 0\)"),
        (np.array(np.nan), r"1 value in 1 row \(first in row 0\)"),
    ],
)
def test_check_finite_counts_values_and_rows(array, message):
    with pytest.raises(ValueError, match=message):
        V.check_finite("y", array)


def test_check_finite_passes_finite_and_integer_arrays():
    V.check_finite("X", np.full((3, 2), np.finfo(np.float32).max, np.float32))  # huge, finite
    V.check_finite("y", np.array([1, 2, 3]))
    V.check_finite("X", np.empty((0, 4)))
