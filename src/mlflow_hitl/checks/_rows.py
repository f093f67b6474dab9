"""The generator check's row sets as arrays, encoded once: realism and privacy both read them.

Numeric columns become float arrays (NaN for missing); categorical columns integer codes that mean
the same value in every set (-1 = missing), as the drift check encodes them. The synthetic and real
sets are always there; the generator's training source and an unseen holdout only when given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validation import numeric_and_categorical
from ._encoding import shared_codes_of

__all__ = ["Encoded", "Rows", "encode"]


@dataclass(frozen=True)
class Rows:
    """One set's rows: numeric values (NaN kept) and category codes shared by every set."""

    num: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.num)


@dataclass(frozen=True)
class Encoded:
    """Every set on the same columns and codes; ``source`` and ``holdout`` are ``None`` when not given."""

    numeric: list[str]
    categorical: list[str]
    synthetic: Rows
    real: Rows
    source: Rows | None
    holdout: Rows | None
    n_levels: np.ndarray

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical

    # The realism code reads the two main sets by these names.
    @property
    def num_syn(self) -> np.ndarray:
        return self.synthetic.num

    @property
    def num_real(self) -> np.ndarray:
        return self.real.num

    @property
    def codes_syn(self) -> np.ndarray:
        return self.synthetic.codes

    @property
    def codes_real(self) -> np.ndarray:
        return self.real.codes


def encode(
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    source: pd.DataFrame | None = None,
    holdout: pd.DataFrame | None = None,
) -> Encoded:
    """The sets (already checked to share columns and column kinds) as :class:`Encoded`.

    Synthetic and real values take the first codes, so the realism numbers do not depend on whether a
    source or holdout was given.
    """
    numeric, categorical = numeric_and_categorical(real)
    frames = [f for f in (synthetic, real, source, holdout) if f is not None]
    codes = [np.empty((len(f), len(categorical)), dtype=np.int64) for f in frames]
    n_levels = np.empty(len(categorical), dtype=np.int64)
    for j, column in enumerate(categorical):
        per_set, n_levels[j] = shared_codes_of([f[column] for f in frames])
        for out, values in zip(codes, per_set, strict=True):
            out[:, j] = values
    rows = iter([Rows(_floats(f, numeric), c) for f, c in zip(frames, codes, strict=True)])
    return Encoded(
        numeric=[str(c) for c in numeric],
        categorical=[str(c) for c in categorical],
        synthetic=next(rows),
        real=next(rows),
        source=None if source is None else next(rows),
        holdout=None if holdout is None else next(rows),
        n_levels=n_levels,
    )


def _floats(frame: pd.DataFrame, columns: Sequence[Any]) -> np.ndarray:
    """The columns as one float array (NaN for missing), filled column by column.

    Column-major, so each column is contiguous for the sorts and hashes that follow, and without the
    intermediate frame that ``frame[columns].to_numpy()`` builds and then interleaves.
    """
    out = np.empty((len(frame), len(columns)), order="F")
    for j, column in enumerate(columns):
        out[:, j] = frame[column].to_numpy(dtype=float, na_value=np.nan)
    return out
