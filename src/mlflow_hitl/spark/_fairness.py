"""The fairness audit's counts, counted on the executors: rows per (sensitive values, true, predicted) cell.

The audit itself is :func:`mlflow_hitl.checks.fairness_from_counts`, the pandas path's own: every
metric and the bootstrap read only these counts, so the numbers are the pandas path's exactly, and
with the same seed so are the intervals. The driver receives one row per observed cell, bounded by
the groups (at most ``max_groups`` per sensitive column, checked first) and the labels, not the rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import missing_labels_message
from ..checks import TOO_MANY_GROUPS, FairnessCounts
from ..errors import InputError
from ._inputs import column, on_executors
from ._scoring import PRED

__all__ = ["fairness_counts", "refuse_many_groups"]


def _missing_as_null(frame: Any, name: str) -> Any:
    """The column with NaN as null: the pandas path counts both as the one group ``missing``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    col = column(name)
    if isinstance(frame.schema[name].dataType, (DoubleType, FloatType)):
        col = F.when(F.isnan(col), F.lit(None)).otherwise(col)
    return col


def refuse_many_groups(frames: Sequence[Any], sensitive: Sequence[str], max_groups: int) -> None:
    """The pandas path's refusal of a sensitive column with more than ``max_groups`` groups, counted exactly.

    ``validate_spark`` asks before the model is scored, so a doomed audit costs one job, not a model pass.
    """
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    projected = [
        f.select(*[_missing_as_null(f, c).alias(f"_s{i}") for i, c in enumerate(sensitive)]) for f in frames
    ]
    union = functools.reduce(DataFrame.unionByName, projected)
    row = on_executors(
        lambda: union.agg(
            *[F.countDistinct(F.col(f"_s{i}")) for i in range(len(sensitive))],
            *[F.max(F.col(f"_s{i}").isNull().cast("int")) for i in range(len(sensitive))],
        ).first()
    )
    for i, name in enumerate(sensitive):
        groups = int(row[i]) + int(row[len(sensitive) + i] or 0)
        if groups > max_groups:
            raise InputError(TOO_MANY_GROUPS.format(column=name, groups=groups, max_groups=max_groups))


def _cells(frame: Any, sensitive: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """Rows per observed combination of the sensitive columns and ``labels``, collected (``_s<i>``, ``_l<j>``, ``_n``)."""
    keys = [column(c).alias(f"_s{i}") for i, c in enumerate(sensitive)]
    keys += [column(c).alias(f"_l{j}") for j, c in enumerate(labels)]
    return on_executors(lambda: frame.groupBy(*keys).count().withColumnRenamed("count", "_n").toPandas())


def _sensitive(cells: pd.DataFrame, sensitive: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: cells[f"_s{i}"] for i, name in enumerate(sensitive)})


def fairness_counts(
    scored: Any, *, target: str, sensitive: Sequence[str], synthetic: Any | None
) -> FairnessCounts:
    """The audit's counts over every real row (``scored``: with the prediction) and every synthetic row.

    The caller has refused too many groups first (:func:`refuse_many_groups`): the cells collected
    here are then bounded by the groups and labels.
    """
    real = _cells(scored, sensitive, [target, PRED])
    counts: dict[str, Any] = {
        "sensitive": _sensitive(real, sensitive),
        "y_true": real["_l0"].to_numpy(),
        "y_pred": real["_l1"].to_numpy(),
        "count": real["_n"].to_numpy(dtype=np.int64),
    }
    if synthetic is not None:
        cells = _cells(synthetic, sensitive, [target])
        unlabelled = cells["_l0"].isna().to_numpy()
        if unlabelled.any():
            # the pandas path checks the synthetic labels as fairness_check's synthetic_y
            raise InputError(missing_labels_message("synthetic_y", int(cells["_n"][unlabelled].sum())))
        counts.update(
            synthetic_sensitive=_sensitive(cells, sensitive),
            synthetic_y=cells["_l0"].to_numpy(),
            synthetic_count=cells["_n"].to_numpy(dtype=np.int64),
        )
    return FairnessCounts(**counts)
