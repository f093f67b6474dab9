"""One categorical column of two sets as integer codes that mean the same value on both sides.

Drift counts values per set and the generator check compares rows across sets; both need a code
that names the same category in either set. Each set is factorised on its own (no concatenated
copy of a million rows) and only the few distinct values are aligned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["shared_codes"]


def shared_codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of ``a`` and of ``b`` on one shared list of values (-1 = missing), and that list's length.

    Values are equal as pandas' factorisation finds them equal; every kind of missing value is -1.
    """
    try:
        codes_a, levels_a = pd.factorize(a)
        codes_b, levels_b = pd.factorize(b)
    except TypeError as exc:  # lists, dicts: values that cannot be compared as categories
        raise InputError(
            f"column {a.name!r} holds values that cannot be compared as categories ({exc}); "
            "leave it out with columns="
        ) from exc
    levels_a = pd.Index(np.asarray(levels_a, dtype=object))
    levels_b = pd.Index(np.asarray(levels_b, dtype=object))
    levels = levels_a.append(levels_b).unique()
    return (
        _recode(codes_a, levels.get_indexer(levels_a)),
        _recode(codes_b, levels.get_indexer(levels_b)),
        len(levels),
    )


def _recode(codes: np.ndarray, new_code: np.ndarray) -> np.ndarray:
    """``codes`` mapped through ``new_code`` (one entry per old code); -1 stays -1."""
    return np.append(new_code, -1).astype(np.int64)[codes]
