"""Two numeric samples merged once, so their empirical CDFs can be compared at every value.

Drift (KS, normed Wasserstein, the distinct-value count) and the generator's fidelity (KS) both
read this one merge. Each sample is sorted on its own and the two sorted runs are then merged by a
stable argsort (timsort merges two runs in linear time); after that, each sample's CDF at every
merged position is a cumulative count.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Merged", "cdf_gap", "ks_statistic", "merge_samples"]


class Merged(NamedTuple):
    values: np.ndarray  # both samples, sorted
    ref_below: np.ndarray  # reference values at or before each merged position
    is_run_end: np.ndarray  # position i is the last of its value (length len(values) - 1)
    n: int  # reference size
    m: int  # current size

    def gap(self) -> np.ndarray:
        """Reference CDF minus current CDF at each merged position, computed as scipy computes it
        (count / size, then subtract)."""
        positions = np.arange(1, self.n + self.m + 1)
        return cdf_gap(self.ref_below, positions - self.ref_below, self.n, self.m)


def cdf_gap(ref_at_or_below: np.ndarray, cur_at_or_below: np.ndarray, n: int, m: int) -> np.ndarray:
    """Reference CDF minus current CDF at some values, from each set's count of values at or below them.

    The KS statistic is its largest absolute value over the values where either CDF steps; the
    Spark path, which counts the current set only at the reference's values, reads it there.
    """
    return ref_at_or_below / n - cur_at_or_below / m


def merge_samples(ref: np.ndarray, cur: np.ndarray) -> Merged:
    """Merge two NaN-free samples (the inputs are not modified)."""
    n, m = len(ref), len(cur)
    merged = np.concatenate((ref, cur))
    merged[:n].sort()
    merged[n:].sort()
    order = np.argsort(merged, kind="stable")
    merged = merged[order]
    ref_below = np.cumsum(order < n)
    del order
    return Merged(merged, ref_below, merged[1:] != merged[:-1], n, m)


def ks_statistic(merged: Merged) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest CDF gap (0 when both hold one value).

    The CDFs change only at the end of a run of equal values, so only those positions are read.
    """
    return float(np.abs(merged.gap()[:-1][merged.is_run_end]).max(initial=0.0))
