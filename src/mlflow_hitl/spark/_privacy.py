"""The generator check's exact-copy counts over every row of Spark DataFrames: row hashes grouped on the executors.

Each row is hashed (64-bit xxHash) over its canonical form, as the pandas path canonicalises it: numeric
columns as doubles with -0.0 as 0.0 and every missing value (null, NaN, ±inf) alike, categorical columns
as their values, and a null flag per column so that a missing value in one column never equals one in
another. The sets are tagged and grouped by hash in one shuffle; one aggregation over the groups then
gives every count :class:`~mlflow_hitl.checks.CopyCounts` holds, and only those numbers reach the driver.
The formulas (shares, Fisher's test, the excess) are the pandas path's, read from the counts. A collision
between two different rows has probability about ``n_synthetic * n_real / 2**64``, as in pandas.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from ..checks import CopyCounts, PoolCounts
from . import is_spark_frame, require_pyspark
from ._inputs import as_spark, column, selected

__all__ = ["exact_copy_counts_spark"]

_SETS = ("synthetic", "real", "source", "holdout")
_HASH, _SET = "_hitl_hash", "_hitl_set"


def _numeric(data_type: Any) -> bool:
    """Numeric as the pandas path's ``numeric_and_categorical`` has it: numbers, not booleans."""
    from pyspark.sql import types as T

    return isinstance(data_type, T.NumericType)


def _hashed(frame: Any, columns: Sequence[str], numeric: set[str], as_string: set[str], tag: int) -> Any:
    from pyspark.sql import functions as F

    flags, values = [], []
    for name in columns:
        value = column(name)
        if name in numeric:
            value = value.cast("double")
            value = F.when(~F.isnan(value) & (F.abs(value) != float("inf")), value + F.lit(0.0))
        elif name in as_string:
            value = value.cast("string")
        flags.append(value.isNull())
        values.append(value)
    return frame.select(F.xxhash64(*flags, *values).alias(_HASH), F.lit(tag).alias(_SET))


def _per_hash(given: Mapping[str, Any], columns: Sequence[str]) -> Any:
    """One row per distinct row hash: how many rows of each set hold it (a shuffle by hash)."""
    from pyspark.sql import functions as F

    types = {name: {f.name: f.dataType for f in frame.schema.fields} for name, frame in given.items()}
    numeric = {c for c in columns if _numeric(types["real"][c])}
    # A categorical column typed differently in two sets is compared as text in all of them.
    as_string = {c for c in columns if c not in numeric and len({str(t[c]) for t in types.values()}) > 1}
    parts = [
        _hashed(given[name], columns, numeric, as_string, tag)
        for tag, name in enumerate(_SETS)
        if name in given
    ]
    tagged = functools.reduce(lambda left, right: left.unionByName(right), parts)
    return tagged.groupBy(_HASH).agg(
        *[F.sum((F.col(_SET) == tag).cast("long")).alias(name) for tag, name in enumerate(_SETS)]
    )


def _totals(per_hash: Any, given: Mapping[str, Any]) -> dict[str, int]:
    """The dozen totals :class:`CopyCounts` is made of, in one aggregation over the hashes."""
    from pyspark.sql import functions as F

    syn, real_n, src, hold = (F.col(n) for n in _SETS)
    train = src if "source" in given else real_n
    unseen = hold if "holdout" in given else real_n
    single_train = (train + unseen == 1) & (train == 1)
    single_unseen = (train + unseen == 1) & (unseen == 1)
    copied = syn > 0

    def total(condition: Any, value: Any = None) -> Any:
        return F.sum(F.when(condition, F.lit(1) if value is None else value).otherwise(0))

    row = per_hash.agg(
        F.sum(syn).alias("synthetic_rows"),
        F.sum(real_n).alias("real_rows"),
        F.sum(train).alias("training_rows"),
        F.sum(unseen).alias("unseen_rows"),
        total(real_n > 0, syn).alias("synthetic_in_real"),
        total(real_n > 1, real_n).alias("real_duplicated"),
        total(src > 0, syn).alias("source_copies"),
        total(single_train).alias("unique_training"),
        total(single_unseen).alias("unique_unseen"),
        total(single_train & copied).alias("unique_training_copied"),
        total(single_unseen & copied).alias("unique_unseen_copied"),
        total(train == 0, unseen).alias("unseen_outside_training"),
    ).collect()[0]
    return {k: int(v or 0) for k, v in row.asDict().items()}


def exact_copy_counts_spark(
    synthetic: Any,
    real: Any,
    *,
    columns: Sequence[str],
    source: Any = None,
    holdout: Any = None,
) -> CopyCounts:
    """:class:`~mlflow_hitl.checks.CopyCounts` of Spark DataFrames on ``columns``, exact over every row.

    ``source`` (the generator's training rows) and ``holdout`` (real rows it never saw) as in
    :func:`~mlflow_hitl.checks.generator_check`; any of the frames may be pandas (it joins the Spark
    session of ``real`` or ``synthetic``). Two Spark jobs' worth of work (a shuffle by hash, then one
    aggregation); only a dozen numbers are collected.
    """
    require_pyspark()
    session = next(f for f in (real, synthetic, source, holdout) if is_spark_frame(f)).sparkSession
    given = {
        name: selected(as_spark(frame, name, session), name, list(columns))
        for name, frame in zip(_SETS, (synthetic, real, source, holdout), strict=True)
        if frame is not None
    }
    count = _totals(_per_hash(given, columns), given)
    pool = None
    if "source" in given or "holdout" in given:
        pool = PoolCounts(
            training_rows=count["training_rows"],
            unseen_rows=count["unseen_rows"],
            unique_training=count["unique_training"],
            unique_unseen=count["unique_unseen"],
            unique_training_copied=count["unique_training_copied"],
            unique_unseen_copied=count["unique_unseen_copied"],
            unseen_outside_training=count["unseen_outside_training"],
        )
    return CopyCounts(
        synthetic_rows=count["synthetic_rows"],
        real_rows=count["real_rows"],
        synthetic_in_real=count["synthetic_in_real"],
        real_duplicated=count["real_duplicated"],
        source_copies=count["source_copies"] if "source" in given else None,
        pool=pool,
    )
