"""Drift's formulas on statistics: the per-column rule and each test, whatever engine counted.

The pandas path (:mod:`mlflow_hitl.checks._drift`) and the Spark path (:mod:`mlflow_hitl.spark`) both
produce the statistics these functions read (a column's type family and distinct-value count, the
non-missing counts, each value's count, small sets whole, a large set's quantiles) and call them, so
the two engines decide and score with one definition of evidently's defaults.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError

__all__ = [
    "DRIFT_THRESHOLDS",
    "QuantileSketch",
    "SketchScore",
    "column_kind",
    "counts_test",
    "drift_threshold",
    "is_drifted",
    "ks_p_value",
    "mixed_kinds_error",
    "numeric_plan",
    "unsupported_type_error",
    "wasserstein_from_quantiles",
    "wasserstein_norm",
]

# evidently's default thresholds; p-value tests drift *below* theirs, distances *at or above*.
DRIFT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1}
_SMALL_REFERENCE = 1000  # at most this many non-missing reference values: p-value tests
_FEW_VALUES = 5  # a numeric column with at most this many distinct values is tested on its counts
_INT_CATEGORY_LIMIT = 10  # evidently's INTEGER_CARDINALITY_LIMIT
_KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp(method="auto") is exact up to this size
_WASSERSTEIN_MIN_NORM = 0.001  # evidently divides by max(std(reference), 0.001)


def drift_threshold(stattest: str) -> float:
    """evidently's default threshold of a test (a p-value for KS, chi-square and Z; a distance else)."""
    return DRIFT_THRESHOLDS[stattest]


def is_drifted(stattest: str, score: float) -> bool:
    """evidently's comparison for each test (KS alone uses ``<=``)."""
    threshold = DRIFT_THRESHOLDS[stattest]
    if stattest == "ks":
        return score <= threshold
    if stattest in ("chisquare", "z"):
        return score < threshold
    return score >= threshold


def column_kind(family: str, n_distinct_current: int) -> str:
    """evidently's ``infer_column_type`` once a column's type family is known, on either engine.

    ``family``: ``float`` (any non-integer number), ``int`` or ``cat`` (bool, category, strings, other
    objects); ``n_distinct_current``: the current set's distinct non-missing values, read for ``int``
    only (an integer column with at most 10 of them is categorical).
    """
    if family == "cat" or (family == "int" and n_distinct_current <= _INT_CATEGORY_LIMIT):
        return "cat"
    return "num"


def mixed_kinds_error(column: Any, reference_type: Any) -> InputError:
    """The error for a column numeric in current but not in reference (both engines say it alike)."""
    return InputError(
        f"column {column!r} is numeric in current but {reference_type} in reference; "
        "give it the same type in both sets"
    )


def unsupported_type_error(column: Any, dtype: Any, input_name: str) -> InputError:
    """The error for a dates, durations or other column that is neither numeric nor categorical."""
    return InputError(
        f"{input_name} column {column!r} has dtype {dtype}; drift is tested on numeric and "
        "categorical columns only: convert it, or leave it out with columns="
    )


def counts_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[str, float]:
    """Chi-square, Z or Jensen-Shannon on the counts of each value seen in either set."""
    from scipy import special, stats
    from scipy.spatial import distance

    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    if n_ref > _SMALL_REFERENCE:
        return "jensenshannon", float(distance.jensenshannon(ref_counts / n_ref, cur_counts / n_cur))
    if len(ref_counts) > 2:
        # A value only in current has zero expected count: statistic inf, p-value 0, as in evidently.
        with np.errstate(divide="ignore", invalid="ignore"):
            return "chisquare", float(stats.chisquare(cur_counts, ref_counts * (n_cur / n_ref)).pvalue)
    if len(ref_counts) == 1:  # one value, the same in both sets
        return "z", 1.0
    # Two-proportion Z test, written as evidently writes it (1 - cdf, not sf) so scores agree.
    p_ref, p_cur = ref_counts[1] / n_ref, cur_counts[1] / n_cur
    pooled = (ref_counts[1] + cur_counts[1]) / (n_ref + n_cur)
    z = (p_ref - p_cur) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return "z", float(2 * (1 - special.ndtr(abs(z))))


def numeric_plan(n_reference: int, n_current: int, n_distinct: int) -> str:
    """Which statistic decides a numeric column, from its non-missing counts and the distinct values
    of both sets together: ``counts`` (a counts test on each value's count), ``ks_exact`` (scipy's
    KS on both sets whole), ``wasserstein`` or ``ks_asymptotic`` (KS with the asymptotic p-value).

    Each engine then produces only what its plan reads: small sets whole, a large reference's
    quantiles, a large current set's counts at the reference's values.
    """
    if n_distinct <= _FEW_VALUES:
        return "counts"
    if n_reference <= _SMALL_REFERENCE and n_current <= _KS_EXACT_MAX_N:
        return "ks_exact"
    return "wasserstein" if n_reference > _SMALL_REFERENCE else "ks_asymptotic"


def ks_p_value(d: float, n: int, m: int) -> float:
    """The asymptotic KS p-value for statistic ``d`` of sets of ``n`` and ``m`` values (scipy's kstwo)."""
    from scipy import stats

    return float(np.clip(stats.kstwo.sf(d, np.round(n * m / (n + m))), 0.0, 1.0))


def wasserstein_norm(reference_std: float) -> float:
    """evidently's divisor of the Wasserstein distance: the reference's (population) std, at least 0.001."""
    return max(reference_std, _WASSERSTEIN_MIN_NORM)


class QuantileSketch(NamedTuple):
    """A set's approximate quantiles at ``j / K`` for ``j = 0..K``, as a mergeable sketch returns them.

    ``quantiles[0]`` and ``quantiles[K]`` must be the exact minimum and maximum. ``relative_error``:
    the sketch's rank guarantee (Spark's ``percentile_approx`` with accuracy ``A`` has ``1 / A``): the
    value returned for ``p`` has a rank within ``(p ± relative_error) * n``. ``n``: the set's size.
    """

    quantiles: np.ndarray
    relative_error: float
    n: int

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """For each cell ``(j/K, (j+1)/K]``, sketched quantiles certain to lie at or below and at or
        above the exact quantile function anywhere in it.

        The sketched value for ``p`` is an exact quantile somewhere in ``p ± relative_error``; three
        more ranks (``3 / n``) cover the rounding of ranks and their counting from 0 or 1. Beyond the
        grid, the exact minimum and maximum serve.
        """
        q = np.maximum.accumulate(np.asarray(self.quantiles, dtype=np.float64))
        cells = len(q) - 1
        margin = (self.relative_error + 3.0 / self.n) * cells
        j = np.arange(cells)
        below = np.clip(np.floor(j - margin), 0, cells).astype(np.int64)
        above = np.clip(np.ceil(j + 1 + margin), 0, cells).astype(np.int64)
        return q[below], q[above]

    def mid_cells(self) -> np.ndarray:
        """Each cell's estimate of the quantile function: the mean of its two ends."""
        q = np.maximum.accumulate(np.asarray(self.quantiles, dtype=np.float64))
        return (q[:-1] + q[1:]) / 2.0


class SketchScore(NamedTuple):
    """A score from quantile sketches: the estimate, and the interval the exact score lies in."""

    score: float
    low: float
    high: float

    @property
    def bound(self) -> float:
        """The largest distance from the estimate to the exact score."""
        return max(self.score - self.low, self.high - self.score)


def wasserstein_from_quantiles(
    reference: QuantileSketch, current: QuantileSketch, reference_std: float
) -> SketchScore:
    """evidently's normed Wasserstein distance from two quantile sketches, with an interval for the exact one.

    The distance is the area between the two quantile functions, ``∫ |Q_ref(u) - Q_cur(u)| du``. On
    each cell ``(j/K, (j+1)/K]`` of the sketches' grid, each set's exact quantile function lies between
    two sketched quantiles (:meth:`QuantileSketch.envelope`); the cell's area then lies between the
    nearest and the farthest the two envelopes can be, which sums to ``[low, high]``. The estimate
    compares the cell's mid-quantiles, so it lies in the interval too.
    """
    ref_low, ref_high = reference.envelope()
    cur_low, cur_high = current.envelope()
    cells = len(ref_low)
    near = np.maximum(0.0, np.maximum(cur_low - ref_high, ref_low - cur_high))
    far = np.maximum(cur_high - ref_low, ref_high - cur_low)
    estimate = np.abs(reference.mid_cells() - current.mid_cells())
    norm = wasserstein_norm(reference_std) * cells
    return SketchScore(float(estimate.sum() / norm), float(near.sum() / norm), float(far.sum() / norm))
