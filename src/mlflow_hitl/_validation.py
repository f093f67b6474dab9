"""Validation at the door: every public check calls these first, naming its inputs.

Each function returns the converted value, so a caller cannot validate one object and then
compute on another (scikit-learn's ``check_array`` habit). Errors name the input, what was
found and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "check_classes",
    "check_consistent_length",
    "check_frame",
    "check_labels",
    "check_probabilities",
    "check_unique_columns",
    "differing_columns",
    "missing_columns_message",
    "missing_labels_message",
    "numeric_and_categorical",
    "too_few_rows_message",
]


# The wording of the refusals below, shared with the Spark path's checks so both say the same thing.


def check_unique_columns(columns: Sequence[Any], input_name: str) -> None:
    """Refuse repeated column names: values are read, stored and shown by column name, so a repeated one
    would silently lose a value. Callers that key rows by text pass the names as text (``1`` is ``"1"``)."""
    names = list(columns)
    duplicated = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if duplicated:
        raise InputError(
            f"{input_name} has duplicate column names: {', '.join(sorted(map(str, duplicated)))}"
        )


def missing_columns_message(input_name: str, missing: Sequence[Any], columns: Sequence[Any]) -> str:
    available = ", ".join(map(str, list(columns)[:20]))
    return f"{input_name} is missing column(s) {', '.join(map(str, missing))}; it has: {available}"


def too_few_rows_message(input_name: str, rows: int, min_rows: int = 1) -> str:
    return f"{input_name} has {rows} row(s); at least {min_rows} needed"


def missing_labels_message(input_name: str, missing: int) -> str:
    return f"{input_name} has {missing} missing label(s); drop or label those rows first"


def check_frame(
    data: Any,
    input_name: str,
    *,
    columns: Sequence[str] | None = None,
    min_rows: int = 1,
) -> pd.DataFrame:
    """A non-empty DataFrame holding ``columns`` (all of them when ``None``), with inf turned into NaN.

    The caller's frame is never modified: a selection or copy is returned.
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"{input_name} must be a pandas DataFrame, got {type(data).__name__}")
    check_unique_columns(data.columns, input_name)
    if columns is not None:
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise InputError(missing_columns_message(input_name, missing, data.columns))
        data = data.loc[:, list(columns)]
    if len(data) < min_rows:
        raise InputError(too_few_rows_message(input_name, len(data), min_rows))
    if data.shape[1] == 0:
        raise InputError(f"{input_name} has no columns")
    # Column by column: one float copy of a wide frame would double the memory of big inputs.
    infinite = [
        c
        for c in data.select_dtypes(include="floating").columns
        if np.isinf(data[c].to_numpy(dtype=float)).any()
    ]
    if infinite:
        data = data.copy()
        data[infinite] = data[infinite].replace([np.inf, -np.inf], np.nan)
    return data


def check_classes(classes: Any, *, input_name: str = "classes", min_classes: int = 2) -> pd.Index:
    """``classes`` as an index of at least ``min_classes`` distinct labels, none of them missing.

    The checks need two (the columns of a probability matrix); a review queue may allow one.
    """
    if classes is None or isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise InputError(
            f"{input_name} must be a sequence of class labels (e.g. model.classes_ or ['cat', 'dog']), "
            f"got {classes!r}"
        )
    index = pd.Index(list(classes))
    if len(index) == 0:
        raise InputError(f"{input_name} is empty: pass the labels, e.g. {input_name}=['cat', 'dog']")
    if len(index) < min_classes:
        count = {1: "one", 2: "two"}.get(min_classes, str(min_classes))
        raise InputError(f"{input_name} must hold at least {count} labels, got {index.tolist()!r}")
    if index.hasnans:
        raise InputError(f"{input_name} contains a missing value: {index.tolist()!r}; list only real labels")
    if index.has_duplicates:
        dupes = ", ".join(repr(c) for c in pd.unique(index[index.duplicated()]))
        raise InputError(f"{input_name} has duplicate labels: {dupes}; list each label once")
    return index


def check_labels(y: Any, input_name: str) -> np.ndarray:
    """A 1-D label array without missing values."""
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputError(f"{input_name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{input_name} is empty")
    missing = pd.isna(arr)
    if missing.any():
        raise InputError(missing_labels_message(input_name, int(missing.sum())))
    return arr


def check_probabilities(y_prob: Any, input_name: str, *, n_classes: int | None = None) -> np.ndarray:
    """A finite ``(n, k)`` array of class probabilities in [0, 1] whose rows sum to 1.

    A 1-D array is read as the probability of the positive class of a binary problem.
    Rows that sum to something else within 1e-3 are renormalised (float noise); further off is an error.
    """
    arr = np.asarray(y_prob, dtype=float)
    if arr.ndim == 1:
        arr = np.column_stack([1.0 - arr, arr])
    if arr.ndim != 2:
        raise InputError(f"{input_name} must be a 2-D array of class probabilities, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{input_name} is empty")
    if n_classes is not None and arr.shape[1] != n_classes:
        raise InputError(f"{input_name} has {arr.shape[1]} columns but there are {n_classes} classes")
    if not np.isfinite(arr).all():
        raise InputError(f"{input_name} contains NaN or infinite values")
    if (arr < 0).any() or (arr > 1).any():
        raise InputError(
            f"{input_name} must lie in [0, 1]; got values from {arr.min():.3g} to {arr.max():.3g}"
        )
    sums = arr.sum(axis=1)
    if np.abs(sums - 1.0).max() > 1e-3:
        raise InputError(
            f"{input_name} rows must sum to 1; found sums from {sums.min():.3g} to {sums.max():.3g}"
        )
    return arr / sums[:, None]


def differing_columns(synthetic: pd.DataFrame, real: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(only in synthetic, only in real)``: the column names one frame has and the other lacks, as text."""
    return (
        [str(c) for c in synthetic.columns if c not in real.columns],
        [str(c) for c in real.columns if c not in synthetic.columns],
    )


def check_consistent_length(**arrays: Any) -> int:
    """The common length of the named arrays; an error naming each length otherwise."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        found = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise InputError(f"inputs have inconsistent numbers of rows: {found}")
    return next(iter(lengths.values()), 0)


def numeric_and_categorical(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split columns into numeric (not boolean) and categorical (everything else)."""
    numeric = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    categorical = [c for c in frame.columns if c not in numeric]
    return numeric, categorical
