"""Numbers read the same everywhere: the rules of ``mlflow_hitl._format``."""

import math

import numpy as np
import pytest

from mlflow_hitl._format import MISSING, number, percent


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (500000, "500,000"),
        (np.int64(1234), "1,234"),
        (20000.0, "20,000"),
        (0.3781, "0.378"),
        (0.09743, "0.097"),
        (0.233, "0.233"),
        (1.5, "1.500"),
        (0.0, "0.000"),
        (3.14e-05, "3.1e-05"),
        (-0.0004, "-4.0e-04"),
        (float("nan"), MISSING),
        (np.float32("nan"), MISSING),
        (None, MISSING),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (True, "yes"),
        (False, "no"),
        ("text", "text"),
    ],
)
def test_number(value, shown):
    assert number(value) == shown


def test_number_decimals():
    assert number(0.37814, decimals=2) == "0.38"
    assert number(0.004, decimals=2) == "4.0e-03"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.434, "43.4%"), (1, "100.0%"), (float("nan"), MISSING), (None, MISSING), ("x", MISSING)],
)
def test_percent(value, shown):
    assert percent(value) == shown
