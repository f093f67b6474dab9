"""Seeded perturbations of real feature rows, one frame per severity.

Each perturbation draws its randomness once and scales it by severity (common random numbers):
the cells that go missing at severity 0.3 are a superset of those at 0.1, and the noise at 0.5
is the noise at 0.1 times five. Curves over severity then move because of severity, not because
of a new draw, and severity 0 reproduces the clean rows exactly.

Statistics (spread, categories seen, medians and modes) come from the rows being perturbed.

Each perturbation's stream is seeded by the config seed and its name (:func:`named_rng`), not by its
place in a list: adding a perturbation changes no other perturbation's draws. Severity is left out of
the seed on purpose: one draw serves every severity, which is what makes the curves comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._seeding import named_rng

__all__ = ["PERTURBATIONS", "Features", "imputation_values", "perturb", "robust_spread", "skip_reason"]


@dataclass(frozen=True)
class Features:
    """The feature columns by role: numeric ones get noise and rounding, categorical ones swaps."""

    numeric: list[str]
    categorical: list[str]
    all: list[str]


def robust_spread(values: np.ndarray) -> np.ndarray:
    """Per column IQR / 1.349 (the sd of a normal with that IQR), or the sd when the IQR is 0.

    The IQR ignores outliers, so one extreme value does not blow up the noise; columns that are
    mostly one value (IQR 0, e.g. binary flags) fall back to the sd; constant columns get 0.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: spread 0 below
        q75, q25 = np.nanpercentile(values, [75, 25], axis=0)
        std = np.nanstd(values, axis=0)
    spread = np.where((q75 - q25) > 0, (q75 - q25) / 1.349, std)
    return np.nan_to_num(spread, nan=0.0)


def skip_reason(name: str, features: Features, frame: pd.DataFrame) -> str | None:
    """Why ``name`` cannot perturb these features, or None when it applies."""
    if name in ("gaussian_noise", "quantization") and not features.numeric:
        return "no numeric feature columns"
    if name == "category_swap" and not any(frame[c].nunique() >= 2 for c in features.categorical):
        return "no categorical feature column with at least two categories"
    return None


def imputation_values(frame: pd.DataFrame, features: Features) -> dict[str, dict[str, Any]]:
    """Median for numeric columns, mode (most frequent value) for every other column."""
    out: dict[str, dict[str, Any]] = {}
    for col in features.all:
        if col in features.numeric:
            out[col] = {"strategy": "median", "value": frame[col].median()}
        else:
            modes = frame[col].mode(dropna=True)
            out[col] = {"strategy": "mode", "value": modes.iloc[0] if len(modes) else np.nan}
    return out


def _with_numeric(frame: pd.DataFrame, columns: list[str], values: np.ndarray) -> pd.DataFrame:
    out = frame.copy()
    out[columns] = values
    return out


def _gaussian_noise(frame, features, severities, rng, fill):
    """Add N(0, (severity x robust spread)^2) to every numeric cell."""
    values = frame[features.numeric].to_numpy(dtype=float, na_value=np.nan)
    spread = robust_spread(values)
    z = rng.standard_normal(values.shape)
    return [_with_numeric(frame, features.numeric, values + s * spread * z) for s in severities]


def _quantization(frame, features, severities, rng, fill):
    """Round numeric cells to the nearest multiple of step = severity x robust spread."""
    values = frame[features.numeric].to_numpy(dtype=float, na_value=np.nan)
    spread = robust_spread(values)
    out = []
    for s in severities:
        step = s * spread
        safe = np.where(step > 0, step, 1.0)
        out.append(
            _with_numeric(frame, features.numeric, np.where(step > 0, np.round(values / safe) * safe, values))
        )
    return out


def _missingness(frame, features, severities, rng, fill):
    """Blank each feature cell with probability severity; fill with ``fill`` values when given."""
    u = rng.random(frame.shape)
    other = (
        pd.DataFrame({c: [fill[c]["value"]] * len(frame) for c in frame.columns}, index=frame.index)
        if fill is not None
        else np.nan
    )
    return [frame.mask(u < s, other) for s in severities]


def _category_swap(frame, features, severities, rng, fill):
    """Replace each categorical cell, with probability severity, by another category seen in its column."""
    draws = []
    for col in features.categorical:
        codes, uniques = pd.factorize(frame[col])
        m = len(uniques)
        if m < 2:
            continue
        # codes + offset (mod m) with offset in 1..m-1 is uniform over the *other* categories.
        swapped = pd.Series(
            uniques.take((codes + rng.integers(1, m, size=len(codes))) % m), index=frame.index
        )
        draws.append((col, codes >= 0, rng.random(len(codes)), swapped))
    out = []
    for s in severities:
        perturbed = frame.copy()
        for col, present, u, swapped in draws:
            perturbed[col] = frame[col].where(~(present & (u < s)), swapped)
        out.append(perturbed)
    return out


_APPLY: Mapping[str, Callable[..., list[pd.DataFrame]]] = {
    "gaussian_noise": _gaussian_noise,
    "missingness": _missingness,
    "category_swap": _category_swap,
    "quantization": _quantization,
}
# The adversarial check's perturbation families, in the order they run by default.
PERTURBATIONS: tuple[str, ...] = tuple(_APPLY)


def perturb(
    name: str,
    frame: pd.DataFrame,
    features: Features,
    severities: Sequence[float],
    *,
    seed: int,
    fill: Mapping[str, dict[str, Any]] | None = None,
) -> list[pd.DataFrame]:
    """``frame`` perturbed by ``name`` at each severity; its own seeded stream per perturbation.

    ``fill`` (missingness only): per-column ``{"value": ...}`` to impute instead of leaving NaN.
    """
    rng = named_rng(seed, name)
    return _APPLY[name](frame, features, severities, rng, fill)
