"""One categorical column of two (or more) sets as integer codes that mean the same value on both sides.

Drift counts values per set and the generator check compares rows across sets; both need a code
that names the same category in either set. Each set is factorised on its own (no concatenated
copy of a million rows) and only the few distinct values are aligned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["shared_codes", "shared_codes_of"]


def shared_codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of ``a`` and of ``b`` on one shared list of values (-1 = missing), and that list's length.

    Values are equal as pandas' factorisation finds them equal; every kind of missing value is -1.
    """
    (codes_a, codes_b), n_levels = shared_codes_of([a, b])
    return codes_a, codes_b, n_levels


def shared_codes_of(columns: list[pd.Series]) -> tuple[list[np.ndarray], int]:
    """:func:`shared_codes` for any number of sets: the first set's values take the first codes, each
    later set's new values the next ones."""
    try:
        factorised = [pd.factorize(column) for column in columns]
    except TypeError as exc:  # lists, dicts: values that cannot be compared as categories
        raise InputError(
            f"column {columns[0].name!r} holds values that cannot be compared as categories ({exc}); "
            "leave it out with columns="
        ) from exc
    per_set = [pd.Index(np.asarray(values, dtype=object)) for _, values in factorised]
    levels = per_set[0].append(per_set[1:]).unique() if len(per_set) > 1 else per_set[0].unique()
    return [
        _recode(codes, levels.get_indexer(values))
        for (codes, _), values in zip(factorised, per_set, strict=True)
    ], len(levels)


def _recode(codes: np.ndarray, new_code: np.ndarray) -> np.ndarray:
    """``codes`` mapped through ``new_code`` (one entry per old code); -1 stays -1."""
    return np.append(new_code, -1).astype(np.int64)[codes]
