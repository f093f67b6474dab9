"""The calibration check's sums, summed on the executors; the verdict is the pandas path's own formulas.

Per row, as the pandas path computes it: the probabilities renormalised by their sum, the top-label
confidence, whether the top label is right, the Brier term and -log of the clipped probability of
the true class. Summed per equal-width bin (overall and per sensitive group, one ``GROUPING SETS``
job), they give ECE, MCE, overconfidence error, Brier, log loss, accuracy and the group metrics
over every row: exact, up to the order in which floating-point sums are added (relative error
around 1e-15). Adaptive (equal-mass) ECE needs quantiles of the confidence: they come from Spark's
``percentile_approx``, a mergeable sketch, with the bound of :func:`adaptive_ece_bound`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_probabilities
from ..checks import CalibrationGroupStats, CalibrationStats, uniform_edges
from ._inputs import column, on_executors
from ._scoring import PRED, PROBA

__all__ = ["ACCURACY", "adaptive_ece_bound", "calibration_stats"]

# percentile_approx's accuracy: each quantile's rank is within n / ACCURACY of the exact one.
ACCURACY = 10_000
# Probabilities are clipped to [eps, 1 - eps] before the logarithm, as the pandas path does.
_EPS = float(np.finfo(float).eps)


def adaptive_ece_bound(n_bins: int, rows: int) -> float:
    """How far adaptive ECE from sketched edges can lie from the pandas path's, when no confidence ties an edge.

    Each of the ``n_bins - 1`` inner edges sits within ``rows / ACCURACY`` ranks of the exact
    quantile, plus one row for numpy's interpolation between two ranks, so at most that many rows
    change bin at each edge. ECE is sum over bins |sum (confidence - correct)| / n and moving a row
    changes two bins' sums by at most 1 each, so ECE moves by at most 2 (n_bins - 1)(1/ACCURACY + 1/n).
    (Rows tied exactly at an edge move together; the pandas path's own edges have the same property.)
    """
    return 2.0 * (n_bins - 1) * (1.0 / ACCURACY + 1.0 / rows)


def _bin_id(conf: Any, edges: np.ndarray) -> Any:
    """Bin of each confidence as ``np.searchsorted(edges[1:-1], conf)``: how many inner edges lie below it."""
    from pyspark.sql import functions as F

    inner = [F.when(conf > float(e), 1).otherwise(0) for e in edges[1:-1]]
    return functools.reduce(operator.add, inner) if inner else F.lit(0)


def _total() -> Any:
    """Each row's probabilities summed: the pandas path divides by it (renormalising float noise)."""
    from pyspark.sql import functions as F

    return F.aggregate(F.col(PROBA), F.lit(0.0), lambda acc, x: acc + x)


def _invalid(total: Any) -> Any:
    """Probabilities ``check_probabilities`` refuses: NaN, outside [0, 1], or a sum more than 1e-3 from 1."""
    from pyspark.sql import functions as F

    return F.exists(F.col(PROBA), lambda p: F.isnan(p) | (p < 0) | (p > 1)) | (F.abs(total - 1.0) > 1e-3)


def _row_terms(scored: Any, target: str, classes: Sequence[Any], sensitive: Sequence[str]) -> Any:
    """One row per real row: ``_c`` confidence, ``_a`` correct (0/1), ``_b`` Brier term, ``_l`` -log p(true),
    ``_x`` 1 when the probabilities are not ones ``check_probabilities`` accepts, groups ``_g<i>``."""
    from pyspark.sql import functions as F

    total = _total()
    idx = functools.reduce(
        lambda expr, item: expr.when(column(target) == F.lit(item[1]), item[0]),
        list(enumerate(classes))[1:],
        F.when(column(target) == F.lit(classes[0]), 0),
    )
    p_true = F.element_at(F.col(PROBA), idx + 1) / total
    if len(classes) == 2:
        brier = F.pow(F.element_at(F.col(PROBA), 2) / total - (idx == 1).cast("double"), 2)
    else:
        squares = F.aggregate(
            F.transform(F.col(PROBA), lambda p: F.pow(p / total, 2)), F.lit(0.0), operator.add
        )
        brier = squares - 2.0 * p_true + 1.0
    return scored.select(
        (F.array_max(F.col(PROBA)) / total).alias("_c"),
        _invalid(total).cast("long").alias("_x"),
        (F.col(PRED) == column(target)).cast("double").alias("_a"),
        brier.alias("_b"),
        (-F.log(F.least(F.greatest(p_true, F.lit(_EPS)), F.lit(1.0 - _EPS)))).alias("_l"),
        *[column(c).alias(f"_g{i}") for i, c in enumerate(sensitive)],
    )


def _bins(rows: Sequence[Any], n_bins: int) -> dict[str, np.ndarray]:
    """``counts``, ``conf_sum``, ``acc_sum`` arrays (the pandas path's types) from collected per-bin rows."""
    counts, conf_sum, acc_sum = np.zeros(n_bins, dtype=np.int64), np.zeros(n_bins), np.zeros(n_bins)
    for row in rows:
        counts[row["_bin"]], conf_sum[row["_bin"]], acc_sum[row["_bin"]] = row["_n"], row["_c"], row["_a"]
    return {"counts": counts, "conf_sum": conf_sum, "acc_sum": acc_sum}


def _group_value(value: Any, numeric: bool) -> Any:
    """A group's value as the pandas path sees it: a null in a numeric column is NaN."""
    return float("nan") if value is None and numeric else value


def _groups(
    rows: Sequence[Any], terms: Any, sensitive: Sequence[str], n_bins: int
) -> dict[str, list[tuple[Any, CalibrationGroupStats]]]:
    """Per sensitive column, each group's sums, groups in value order (missing last)."""
    from pyspark.sql.types import NumericType

    m = len(sensitive)
    found: dict[str, list[tuple[Any, CalibrationGroupStats]]] = {}
    for i, name in enumerate(sensitive):
        gid = (2**m - 1) - 2 ** (
            m - 1 - i
        )  # grouping_id() of the set (_g<i>, _bin): the other groups rolled up
        mine = [r for r in rows if r["_gid"] == gid]
        values = sorted(
            {r[f"_g{i}"] for r in mine}, key=lambda v: (v is None or v != v, v if v is not None else 0)
        )
        numeric = isinstance(terms.schema[f"_g{i}"].dataType, NumericType)
        found[name] = []
        for value in values:
            group = [r for r in mine if r[f"_g{i}"] == value or (r[f"_g{i}"] is None and value is None)]
            bins = _bins(group, n_bins)
            found[name].append(
                (
                    _group_value(value, numeric),
                    CalibrationGroupStats(
                        n=int(bins["counts"].sum()),
                        correct=float(sum(r["_a"] for r in group)),
                        confidence=float(sum(r["_c"] for r in group)),
                        bins=bins,
                    ),
                )
            )
    return found


def calibration_stats(
    scored: Any, *, target: str, classes: Sequence[Any], sensitive: Sequence[str], n_bins: int
) -> CalibrationStats:
    """The sums :func:`mlflow_hitl.checks.calibration_from_stats` judges, over every row of ``scored``.

    Three jobs: the equal-width bins overall and per group, the confidence quantiles, the equal-mass bins.
    """
    from pyspark.sql import functions as F

    terms = _row_terms(scored, target, classes, sensitive)
    binned = terms.withColumn("_bin", _bin_id(F.col("_c"), uniform_edges(n_bins)))
    sums = [
        F.count(F.lit(1)).alias("_n"),
        F.sum("_c").alias("_c"),
        F.sum("_a").alias("_a"),
        F.sum("_b").alias("_b"),
        F.sum("_l").alias("_l"),
        F.sum("_x").alias("_x"),
    ]
    groups = [f"_g{i}" for i in range(len(sensitive))]
    if groups:
        sets = [["_bin"], *[[g, "_bin"] for g in groups]]
        query = binned.groupingSets(sets, "_bin", *groups).agg(F.grouping_id().alias("_gid"), *sums)
    else:
        query = binned.groupBy("_bin").agg(F.lit(0).alias("_gid"), *sums)
    rows = on_executors(query.collect)
    overall_gid = 2 ** len(groups) - 1
    overall = [r for r in rows if r["_gid"] == overall_gid]
    if sum(r["_x"] for r in overall):
        # Refused in the pandas path's words and numbers: the rows holding the extreme sums and values
        # (NaN sorts above every number) fail check_probabilities exactly as all the rows do.
        proba, total = F.col(PROBA), _total()
        extremes = scored.agg(
            F.min_by(proba, total),
            F.max_by(proba, total),
            F.min_by(proba, F.array_min(proba)),
            F.max_by(proba, F.array_max(proba)),
        )
        check_probabilities(
            np.asarray(on_executors(extremes.first), dtype=float), "y_prob", n_classes=len(classes)
        )

    quantiles = [float(q) for q in np.linspace(0.0, 1.0, n_bins + 1)]
    edges = on_executors(lambda: terms.agg(F.percentile_approx("_c", quantiles, ACCURACY)).first()[0])
    adaptive_edges = np.asarray(edges, dtype=float)
    adaptive_query = (
        terms.withColumn("_bin", _bin_id(F.col("_c"), adaptive_edges))
        .groupBy("_bin")
        .agg(F.count(F.lit(1)).alias("_n"), F.sum("_c").alias("_c"), F.sum("_a").alias("_a"))
    )
    bins = _bins(overall, n_bins)
    return CalibrationStats(
        n=int(bins["counts"].sum()),
        correct=float(bins["acc_sum"].sum()),
        confidence=float(bins["conf_sum"].sum()),
        brier=float(sum(r["_b"] for r in overall)),
        log_loss=float(sum(r["_l"] for r in overall)),
        bins=bins,
        adaptive_edges=adaptive_edges,
        adaptive_bins=_bins(on_executors(adaptive_query.collect), n_bins),
        groups=_groups(rows, terms, sensitive, n_bins) if sensitive else None,
    )
