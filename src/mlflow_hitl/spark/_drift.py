"""Drift over every row of Spark DataFrames: the pandas path's rules and formulas, on merged statistics.

Each pair costs a few aggregations, none of whose results grows with the rows:

1. one pass over both sets counts rows and non-missing values, estimates each numeric column's
   distinct values (HyperLogLog) and finds its exact minimum, maximum and the reference's standard
   deviation;
2. the columns that are categorical, or whose current set has at most :data:`_SCREEN` distinct values
   by that estimate, are counted exactly per value (one ``groupBy`` over all of them). A column with
   that few values is categorical or "few-valued" by evidently's rules only if its exact count says
   so; the estimate only spares counting columns with hundreds of values, which no rule looks at;
3. a numeric column whose reference has at most 1000 values is tested as the pandas path tests it:
   those values are collected (bounded), with the current set's when it has at most 10,000, or else
   the current set's counts below and at each reference value (the KS statistic's only candidates);
4. the numeric columns with a larger reference are sketched: ``approxQuantile`` over each set, one
   pass per set for all of them.

Everything above is exact: the column's kind, test and score equal the pandas path's. Only a numeric
column with a large reference is scored from the quantile sketches: evidently's normed Wasserstein
distance, with an interval that holds the exact score (:func:`~mlflow_hitl.checks.wasserstein_from_quantiles`).
Each table row says which (``estimate``: ``exact`` or ``sketch``, with its ``bound``), and a sketched
score whose interval straddles the threshold is reported as ``near_threshold``: its verdict is the
estimate's, and the exact score could fall on the other side.

The column types follow Spark's schema: integers take evidently's integer rule (categorical with at
most 10 distinct current values) also when they hold nulls (pandas would hold those as floats),
decimals and floats are numeric, booleans and strings categorical; dates, timestamps and nested types
are refused as the pandas path refuses dates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._result import CheckResult
from .._settings import resolve_section
from ..checks import (
    ColumnVerdict,
    PairTable,
    QuantileSketch,
    cdf_gap,
    check_same_columns,
    checked_drift_columns,
    column_kind,
    counts_test,
    drift_result_of,
    drift_threshold,
    drift_verdict_table,
    ks_p_value,
    mixed_kinds_error,
    numeric_plan,
    unsupported_type_error,
    validated_drift_pairs,
    wasserstein_from_quantiles,
    with_drift_report_pages,
)
from ..config import DriftConfig
from ..errors import InputError
from . import is_spark_frame, require_pyspark
from ._inputs import as_spark, check_rows, column, selected

__all__ = ["drift_check_spark", "drift_table_spark", "render_drift_pages_spark"]

_CELLS = 2000  # quantile sketch grid: j / 2000, j = 0..2000
_ACCURACY = (
    10_000  # approxQuantile's relative error is 1 / 10,000: a rank error of at most 0.01 % of the rows
)
# At most this many partial sketches per column are merged: Spark merges them in one task, on the heap,
# and the merge's memory and time grow with their number (bench/bench_spark_sketches.py, 50M rows x 13
# columns at a 512m local heap: 200 partitions ran it out; 50 finished, 803 MB JVM, 267 CPU seconds,
# half the CPU of 200 partitions with a 1g heap). Fewer tasks for this one pass, never a different bound.
_SKETCH_PARTITIONS = 50
_SCREEN = 200  # estimated distinct values up to which a column is counted exactly
_SIDE, _ID = "_hitl_side", "_hitl_row"
# What each pair's details say of how the table was computed.
_ESTIMATES = {
    "engine": "spark",
    "exact": "row and value counts, category and few-value counts, small sets whole (KS)",
    "sketch": (
        "normed Wasserstein of numeric columns with more than 1000 reference values, from approxQuantile "
        f"at {_CELLS + 1} quantiles (relative error 1/{_ACCURACY}); a column's bound holds the exact score"
    ),
    "report_sample": "evidently's page is rendered on a seeded sample of each set (report_sample_size)",
}


class _Column(NamedTuple):
    """What the schema says of one column, and how its values are read in both sets."""

    name: str
    family: str  # float, int or cat, from the current set's type (the reference's when current is empty)
    ref_family: str
    ref_type: str  # the reference's Spark type, for the error when it is not numeric
    value_type: str  # "double" or "string" or "keep": the common type both sets are read as


class _Stats(NamedTuple):
    n_reference: int
    n_current: int
    distinct_reference: int  # estimates (HyperLogLog), where a rule may read them; else 0
    distinct_current: int
    range_reference: tuple[float | None, float | None]  # exact minimum and maximum (numbers)
    range_current: tuple[float | None, float | None]
    std_reference: float | None


def _family(data_type: Any) -> str | None:
    from pyspark.sql import types as T

    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "int"
    if isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        return "float"
    if isinstance(data_type, (T.BooleanType, T.StringType)):
        return "cat"
    return None  # dates, timestamps, intervals, binary, nested: refused


def _columns(reference: Any, current: Any) -> list[_Column]:
    ref_types = {f.name: f.dataType for f in reference.schema.fields}
    out = []
    for field in current.schema.fields:
        ref_type = ref_types[field.name]
        for data_type, input_name in ((ref_type, "reference"), (field.dataType, "current")):
            if _family(data_type) is None:
                raise unsupported_type_error(field.name, data_type.simpleString(), input_name)
        family, ref_family = _family(field.dataType), _family(ref_type)
        # pandas counts a boolean as a number: a boolean reference beside a numeric current reads as 0/1.
        ref_numeric = ref_family != "cat" or ref_type.simpleString() == "boolean"
        if family != "cat" and ref_numeric or {family, ref_family} <= {"int", "float"}:
            value_type = "double"
        elif field.dataType == ref_type:
            value_type = "keep"
        else:
            value_type = "string"
        out.append(_Column(field.name, family, ref_family, ref_type.simpleString(), value_type))  # type: ignore[arg-type]
    return out


def _value(described: _Column) -> Any:
    """The column as both sets read it, missing (null; NaN and ±inf for numbers) as null."""
    from pyspark.sql import functions as F

    value = column(described.name)
    if described.value_type == "string":
        return value.cast("string")
    if described.value_type == "keep":
        return value
    value = value.cast("double")
    return F.when(~F.isnan(value) & (F.abs(value) != float("inf")), value)


def _tagged(reference: Any, current: Any, columns: list[_Column]) -> Any:
    """Both sets in one frame, each column read alike, with the side (0 reference, 1 current) and a row id
    that orders each set's rows as given (for the pandas path's order of first appearance)."""
    from pyspark.sql import functions as F

    def side(frame: Any, value: int) -> Any:
        return frame.select(*[_value(c).alias(c.name) for c in columns], F.lit(value).alias(_SIDE))

    union = side(reference, 0).unionByName(side(current, 1))
    return union.withColumn(_ID, F.monotonically_increasing_id())


# --------------------------------------------------------------------------- 1. one pass of statistics


def _statistics(tagged: Any, columns: list[_Column]) -> tuple[int, int, dict[str, _Stats]]:
    """Rows and non-missing values per set; for numbers the estimated distinct values (of the current
    set, and of the reference for integers, whose kind may come from it), the exact ends and the
    reference's standard deviation."""
    from pyspark.sql import functions as F

    # Grouped by side, each aggregate is written once: one ``when`` per side and aggregate doubled the
    # expressions, and an aggregation that wide runs several times slower (measured at 1M rows: 25.3 -> 18.4-19.2 CPU s).
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, described in enumerate(columns):
        value = column(described.name)
        aggregates.append(F.count(value).alias(f"n_{i}"))
        if described.value_type == "double":
            aggregates += [F.min(value).alias(f"lo_{i}"), F.max(value).alias(f"hi_{i}")]
            aggregates += [
                F.approx_count_distinct(value).alias(f"d_{i}"),
                F.stddev_pop(value).alias(f"sd_{i}"),
            ]
    by_side = {r[_SIDE]: r.asDict() for r in tagged.groupBy(_SIDE).agg(*aggregates).collect()}
    empty: dict[str, Any] = {"rows": 0}
    ref, cur = by_side.get(0, empty), by_side.get(1, empty)
    stats = {}
    for i, described in enumerate(columns):
        sd = ref.get(f"sd_{i}")
        stats[described.name] = _Stats(
            int(ref.get(f"n_{i}") or 0),
            int(cur.get(f"n_{i}") or 0),
            int(ref.get(f"d_{i}") or 0) if "int" in (described.family, described.ref_family) else 0,
            int(cur.get(f"d_{i}") or 0),
            (ref.get(f"lo_{i}"), ref.get(f"hi_{i}")),
            (cur.get(f"lo_{i}"), cur.get(f"hi_{i}")),
            None if sd is None else float(sd),
        )
    return int(ref["rows"]), int(cur["rows"]), stats


def _sketches(
    tagged: Any, stats: Mapping[str, _Stats], names: list[str]
) -> dict[str, tuple[QuantileSketch, QuantileSketch]]:
    """Both sets' quantile sketches of the listed columns: Spark's ``approxQuantile`` (one pass per set,
    every column at once) at ``j / _CELLS``, its ends replaced by the exact minimum and maximum."""
    if not names:
        return {}
    from pyspark.sql import functions as F

    probabilities = [j / _CELLS for j in range(_CELLS + 1)]
    per_side = []
    for s in (0, 1):
        # approxQuantile reads names as Spark parses them: the columns go under their positions
        frame = (
            tagged.where(F.col(_SIDE) == s)
            .select(*[column(n).alias(f"q{k}") for k, n in enumerate(names)])
            .coalesce(_SKETCH_PARTITIONS)
        )
        per_side.append(frame.approxQuantile(frame.columns, probabilities, 1.0 / _ACCURACY))
    out = {}
    for name, ref_q, cur_q in zip(names, *per_side, strict=True):
        sketches = []
        for quantiles, (low, high), n in (
            (ref_q, stats[name].range_reference, stats[name].n_reference),
            (cur_q, stats[name].range_current, stats[name].n_current),
        ):
            q = np.asarray(quantiles, dtype=np.float64)
            q[0], q[-1] = low, high
            sketches.append(QuantileSketch(q, 1.0 / _ACCURACY, n))
        out[name] = (sketches[0], sketches[1])
    return out


# --------------------------------------------------------------------------- 2. exact value counts


class _Counts(NamedTuple):
    """Each value's count in both sets, in the pandas path's order for a categorical column (first
    appearance in the reference, then new values in the current set) and, separately, by value."""

    reference: np.ndarray
    current: np.ndarray
    by_value_reference: np.ndarray
    by_value_current: np.ndarray


def _value_counts(tagged: Any, columns: list[_Column]) -> dict[str, _Counts]:
    """One ``groupBy`` over every listed column: (column, side, value) -> count and first row id."""
    if not columns:
        return {}
    from pyspark.sql import functions as F

    entries = F.array(
        *[
            F.struct(
                F.lit(i).alias("k"),
                (F.lit(None) if c.value_type == "double" else column(c.name).cast("string"))
                .cast("string")
                .alias("s"),
                (column(c.name) if c.value_type == "double" else F.lit(None)).cast("double").alias("d"),
            )
            for i, c in enumerate(columns)
        ]
    )
    exploded = tagged.select(F.col(_SIDE), F.col(_ID), F.explode(entries).alias("e")).where(
        F.col("e.s").isNotNull() | F.col("e.d").isNotNull()
    )
    grouped = exploded.groupBy(F.col("e.k").alias("k"), F.col(_SIDE).alias("side"), "e.s", "e.d").agg(
        F.count(F.lit(1)).alias("n"), F.min(_ID).alias("first")
    )
    rows = grouped.collect()
    per_column: dict[int, dict[Any, list[int]]] = {i: {} for i in range(len(columns))}
    for r in rows:
        value = r["d"] if r["s"] is None else r["s"]
        entry = per_column[r["k"]].setdefault(value, [0, 0, -1, -1])
        entry[r["side"]] = int(r["n"])
        entry[2 + r["side"]] = int(r["first"])
    out = {}
    for i, described in enumerate(columns):
        entries_ = per_column[i]
        # First appearance in the reference, then in the current set (ids order rows within each set).
        order = sorted(entries_, key=lambda v: (0, entries_[v][2]) if entries_[v][0] else (1, entries_[v][3]))
        by_value = sorted(entries_)
        out[described.name] = _Counts(
            np.array([entries_[v][0] for v in order], dtype=np.int64),
            np.array([entries_[v][1] for v in order], dtype=np.int64),
            np.array([entries_[v][0] for v in by_value], dtype=np.int64),
            np.array([entries_[v][1] for v in by_value], dtype=np.int64),
        )
    return out


# --------------------------------------------------------------------------- 3. small sets whole


def _collected(tagged: Any, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
    """The non-missing values of each (column, side) listed: only sides of at most 10,000 values."""
    if not wanted:
        return {}
    from pyspark.sql import functions as F

    row = (
        tagged.agg(
            *[
                F.collect_list(F.when(F.col(_SIDE) == s, column(c))).alias(f"v{k}")
                for k, (c, s) in enumerate(wanted)
            ]
        )
        .collect()[0]
        .asDict()
    )
    return {key: np.asarray(row[f"v{k}"], dtype=np.float64) for k, key in enumerate(wanted)}


def _ks_asymptotic(
    tagged: Any, references: Mapping[str, np.ndarray], n_current: Mapping[str, int]
) -> dict[str, float]:
    """KS p-values against large current sets: their counts below and at each reference value.

    Between two reference values the reference's CDF is flat, so the largest gap is at a reference
    value or just below one; counting the current set there gives every candidate (the pandas path's
    statistic, to the bit: the same counts go through the same :func:`cdf_gap`). One pass for all
    the columns: each is bucketed by its reference's values and the (column, bucket, equal) cells counted.
    """
    if not references:
        return {}
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import functions as F

    names = list(references)
    values = {name: np.unique(references[name]) for name in names}
    current = tagged.where(F.col(_SIDE) == 1).select(
        *[F.coalesce(column(name), F.lit(float("nan"))).alias(f"x{i}") for i, name in enumerate(names)]
    )
    bucketed = Bucketizer(
        splitsArray=[[-float("inf"), *values[name].tolist(), float("inf")] for name in names],
        inputCols=[f"x{i}" for i in range(len(names))],
        outputCols=[f"b{i}" for i in range(len(names))],
        handleInvalid="keep",  # missing values (NaN here) go to a last bucket, left out below
    ).transform(current)
    cells = F.array(
        *[
            F.struct(
                F.lit(i).alias("k"),
                F.col(f"b{i}").alias("b"),
                F.col(f"x{i}").isin(values[name].tolist()).alias("eq"),
            )
            for i, name in enumerate(names)
        ]
    )
    rows = (
        bucketed.select(F.explode(cells).alias("e"))
        .groupBy("e.k", "e.b", "e.eq")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    in_bucket = {i: np.zeros(len(values[name]) + 2, dtype=np.int64) for i, name in enumerate(names)}
    equal = {i: np.zeros(len(values[name]) + 1, dtype=np.int64) for i, name in enumerate(names)}
    for r in rows:
        in_bucket[r["k"]][int(r["b"])] += r["n"]
        if r["eq"]:
            equal[r["k"]][int(r["b"]) - 1] += r["n"]
    scores = {}
    for i, name in enumerate(names):
        k, n, m = len(values[name]), len(references[name]), n_current[name]
        cur_below = np.cumsum(in_bucket[i][: k + 1])[:-1]  # current values below each reference value
        ref_counts = np.unique(references[name], return_counts=True)[1]
        ref_at_or_below = np.cumsum(ref_counts)
        gaps = np.r_[
            cdf_gap(ref_at_or_below, cur_below + equal[i][:k], n, m),
            cdf_gap(ref_at_or_below - ref_counts, cur_below, n, m),
        ]
        scores[name] = ks_p_value(float(np.abs(gaps).max(initial=0.0)), n, m)
    return scores


# --------------------------------------------------------------------------- the table


class _Row(NamedTuple):
    verdict: ColumnVerdict
    estimate: str | None  # exact or sketch; None when untested
    bound: float
    near_threshold: bool


def _kind(column: _Column, stats: _Stats, counts: _Counts | None) -> str:
    family, distinct = column.family, stats.distinct_current
    if stats.n_current == 0:  # nothing to infer from: the reference's kind, as the pandas path takes it
        family, distinct = column.ref_family, stats.distinct_reference
        exact = None if counts is None else int(np.count_nonzero(counts.reference))
    else:
        exact = None if counts is None else int(np.count_nonzero(counts.current))
    if family == "int":
        distinct = exact if exact is not None else distinct  # not counted: hundreds, well above the limit
    kind = column_kind(family, distinct)
    if kind == "num" and column.value_type != "double":
        raise mixed_kinds_error(column.name, column.ref_type)
    return kind


def _row(
    column: _Column,
    kind: str,
    stats: _Stats,
    counts: _Counts | None,
    values: Mapping[str, float],
    sketches: Mapping[str, tuple[QuantileSketch, QuantileSketch]],
) -> _Row:
    n_ref, n_cur = stats.n_reference, stats.n_current
    if not (n_ref and n_cur):
        return _Row(ColumnVerdict(kind, None, float("nan"), n_ref, n_cur), None, float("nan"), False)
    if kind == "cat":
        assert counts is not None
        return _exact(kind, counts_test(counts.reference, counts.current), n_ref, n_cur)
    distinct = len(counts.by_value_reference) if counts is not None else _SCREEN + 1
    plan = numeric_plan(n_ref, n_cur, distinct)
    if plan == "counts":
        assert counts is not None
        return _exact(kind, counts_test(counts.by_value_reference, counts.by_value_current), n_ref, n_cur)
    if plan in ("ks_exact", "ks_asymptotic"):
        return _exact(kind, ("ks", values[column.name]), n_ref, n_cur)
    score = wasserstein_from_quantiles(*sketches[column.name], stats.std_reference or 0.0)
    threshold = drift_threshold("wasserstein")
    near = score.low < threshold <= score.high
    return _Row(ColumnVerdict(kind, "wasserstein", score.score, n_ref, n_cur), "sketch", score.bound, near)


def _exact(kind: str, test: tuple[str, float], n_ref: int, n_cur: int) -> _Row:
    return _Row(ColumnVerdict(kind, test[0], test[1], n_ref, n_cur), "exact", 0.0, False)


def _ks_scores(tagged: Any, stats: Mapping[str, _Stats], numeric: list[str]) -> dict[str, float]:
    """KS p-values of the numeric columns with a small reference, from their values collected."""
    from scipy import stats as st

    plans = {}
    for name in numeric:
        s = stats[name]
        if s.n_reference and s.n_current:
            plan = numeric_plan(s.n_reference, s.n_current, _SCREEN + 1)
            if plan in ("ks_exact", "ks_asymptotic"):
                plans[name] = plan
    wanted = [(name, 0) for name in plans] + [(name, 1) for name, plan in plans.items() if plan == "ks_exact"]
    values = _collected(tagged, wanted)
    scores = {
        name: float(st.ks_2samp(values[(name, 0)], values[(name, 1)]).pvalue)
        for name, plan in plans.items()
        if plan == "ks_exact"
    }
    asymptotic = [name for name, plan in plans.items() if plan == "ks_asymptotic"]
    scores.update(
        _ks_asymptotic(
            tagged,
            {name: values[(name, 0)] for name in asymptotic},
            {name: stats[name].n_current for name in asymptotic},
        )
    )
    return scores


def _spark_pair(reference: Any, current: Any, columns: Any) -> tuple[Any, Any]:
    require_pyspark()
    if not (is_spark_frame(reference) or is_spark_frame(current)):
        raise InputError("drift_check_spark needs a Spark DataFrame in each pair; use drift_check for pandas")
    session = (reference if is_spark_frame(reference) else current).sparkSession
    columns = checked_drift_columns(columns)
    reference = selected(as_spark(reference, "reference", session), "reference", columns)
    current = selected(as_spark(current, "current", session), "current", columns)
    if columns is None:
        check_same_columns(reference.columns, current.columns)
        current = current.select(*[column(c) for c in reference.columns])
    return reference, current


def _counted(column: _Column, stats: _Stats) -> bool:
    """Whether a column's values are counted exactly: categorical ones always, numbers when a rule may
    read their distinct values (at most 10 for an integer's kind, 5 for a few-valued number), by the
    estimate with a wide margin. Without current values only an integer reference's kind needs them."""
    if column.value_type != "double":
        return True
    if stats.n_current:
        return stats.distinct_current <= _SCREEN
    return column.ref_family == "int" and stats.distinct_reference <= _SCREEN


def _pair_table(reference: Any, current: Any, columns: Sequence[str] | None) -> PairTable:
    reference, current = _spark_pair(reference, current, columns)
    described = _columns(reference, current)
    tagged = _tagged(reference, current, described)
    rows_ref, rows_cur, stats = _statistics(tagged, described)
    check_rows(rows_ref, "reference")
    check_rows(rows_cur, "current")
    counted = [c for c in described if _counted(c, stats[c.name])]
    counts = _value_counts(tagged, counted)
    kinds = {c.name: _kind(c, stats[c.name], counts.get(c.name)) for c in described}
    spread = [
        c.name
        for c in described
        if kinds[c.name] == "num" and (c.name not in counts or len(counts[c.name].by_value_reference) > 5)
    ]
    ks = _ks_scores(tagged, stats, spread)
    sketched = [
        name
        for name in spread
        if stats[name].n_current
        and numeric_plan(stats[name].n_reference, stats[name].n_current, _SCREEN + 1) == "wasserstein"
    ]
    sketches = _sketches(tagged, stats, sketched)
    rows = [_row(c, kinds[c.name], stats[c.name], counts.get(c.name), ks, sketches) for c in described]
    table = drift_verdict_table(
        [c.name for c in described],
        [r.verdict for r in rows],
        extra={
            "estimate": [r.estimate for r in rows],
            "bound": [r.bound for r in rows],
            "near_threshold": [r.near_threshold for r in rows],
        },
    )
    return PairTable(table, rows_ref, rows_cur)


# --------------------------------------------------------------------------- public API


def drift_table_spark(reference: Any, current: Any, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`~mlflow_hitl.checks.drift_table` over every row of two Spark DataFrames.

    The same columns, plus ``estimate`` (``exact``, or ``sketch`` for a numeric column with more than
    1000 reference values, scored by normed Wasserstein from quantile sketches), ``bound`` (how far
    the exact score can be from ``score``: 0 when exact) and ``near_threshold`` (the exact score could
    fall on the other side of the threshold).
    """
    return _pair_table(reference, current, columns).table


def drift_check_spark(
    pairs: Mapping[str, tuple[Any, Any]],
    *,
    columns: Sequence[str] | None = None,
    config: DriftConfig | Mapping[str, Any] | None = None,
) -> CheckResult:
    """:func:`~mlflow_hitl.checks.drift_check` over every row of Spark DataFrames (a pair may mix in a
    pandas frame): the same metrics, status rule and summary.

    ``details[P]["table"]`` says per column how its score was found (``estimate``, ``bound``,
    ``near_threshold``), ``details[P]["near_threshold_columns"]`` lists the columns whose verdict the
    sketch's bound leaves open, and ``details[P]["estimates"]`` what is exact and what sketched. evidently's page
    (``render_report``) is rendered on a seeded sample of at most ``report_sample_size`` rows per set.
    """
    cfg = resolve_section("drift", DriftConfig, config)
    pairs = validated_drift_pairs(pairs)
    tables = {}
    for name, (reference, current) in pairs.items():
        try:
            tables[name] = _pair_table(reference, current, columns)
        except InputError as exc:
            raise InputError(f"pairs[{name!r}]: {exc}") from exc
    result = drift_result_of(tables, cfg)
    details = {key: {**pair, "estimates": _ESTIMATES} for key, pair in result.details.items()}
    result = dataclasses.replace(result, details=details)
    return render_drift_pages_spark(result, pairs, cfg) if cfg.render_report else result


def render_drift_pages_spark(
    result: CheckResult, pairs: Mapping[str, tuple[Any, Any]], cfg: DriftConfig
) -> CheckResult:
    """``result`` with evidently's page for each pair, rendered on a seeded sample of at most
    ``cfg.report_sample_size`` rows of each set (only the sample reaches the driver)."""
    samples, rows = {}, {}
    for key, (name, (reference, current)) in zip(result.details, pairs.items(), strict=True):
        n_ref, n_cur = result.details[key]["n_reference"], result.details[key]["n_current"]
        samples[name] = (
            _sample(reference, n_ref, cfg.report_sample_size, cfg.seed),
            _sample(current, n_cur, cfg.report_sample_size, cfg.seed + 1),
        )
        rows[name] = (n_ref, n_cur)
    return with_drift_report_pages(result, samples, cfg, rows=rows)


def _sample(frame: Any, n_rows: int, size: int, seed: int) -> pd.DataFrame:
    """At most ``size`` rows, drawn with Spark's seeded Bernoulli sample (a little over, then cut)."""
    if not is_spark_frame(frame):
        return frame
    if n_rows > size:
        frame = frame.sample(fraction=min(1.0, 1.1 * size / n_rows + 1e-3), seed=seed).limit(size)
    return frame.toPandas()
