"""The door every check goes through: inputs are validated once, named in every message."""

import numpy as np
import pandas as pd
import pytest

from mlflow_hitl._validation import (
    check_consistent_length,
    check_frame,
    check_labels,
    check_probabilities,
    numeric_and_categorical,
)
from mlflow_hitl.errors import InputError


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        ([[1, 2]], {}, "real must be a pandas DataFrame, got list"),
        (pd.DataFrame(), {}, "real has 0 row"),
        (pd.DataFrame({"a": [1]}), {"columns": ["a", "b"]}, "real is missing column.*b; it has: a"),
        (pd.DataFrame({"a": [1.0]}), {"min_rows": 2}, "at least 2 needed"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), {}, "duplicate column names: a"),
    ],
)
def test_check_frame_refuses(data, kwargs, match):
    with pytest.raises(InputError, match=match):
        check_frame(data, "real", **kwargs)


def test_check_frame_turns_inf_into_nan_without_touching_the_caller():
    frame = pd.DataFrame({"a": [1.0, np.inf], "b": ["x", "y"]})
    checked = check_frame(frame, "real")
    assert np.isnan(checked.loc[1, "a"])
    assert np.isinf(frame.loc[1, "a"])


def test_check_labels():
    assert check_labels(pd.Series(["a", "b"]), "y").tolist() == ["a", "b"]
    with pytest.raises(InputError, match="y has 1 missing label"):
        check_labels([1.0, np.nan], "y")
    with pytest.raises(InputError, match="y is empty"):
        check_labels([], "y")
    with pytest.raises(InputError, match="one-dimensional"):
        check_labels(np.zeros((2, 2)), "y")


@pytest.mark.parametrize(
    ("proba", "match"),
    [
        ([[0.5, np.nan]], "NaN or infinite"),
        ([[1.2, -0.2]], r"must lie in \[0, 1\]"),
        ([[0.5, 0.2]], "rows must sum to 1"),
        (np.zeros((0, 2)), "is empty"),
        ([[0.2, 0.3, 0.5]], "3 columns but there are 2 classes"),
    ],
)
def test_check_probabilities_refuses(proba, match):
    with pytest.raises(InputError, match=match):
        check_probabilities(proba, "y_prob", n_classes=2)


def test_check_probabilities_reads_1d_as_positive_class():
    out = check_probabilities([0.2, 0.9], "y_prob")
    np.testing.assert_allclose(out, [[0.8, 0.2], [0.1, 0.9]])


def test_consistent_length_names_every_input():
    assert check_consistent_length(a=[1, 2], b=[3, 4]) == 2
    with pytest.raises(InputError, match="y_true=2, y_prob=3"):
        check_consistent_length(y_true=[1, 2], y_prob=[1, 2, 3])


def test_numeric_and_categorical_keeps_bools_categorical():
    frame = pd.DataFrame({"n": [1.0], "i": [1], "b": [True], "s": ["x"]})
    assert numeric_and_categorical(frame) == (["n", "i"], ["b", "s"])
