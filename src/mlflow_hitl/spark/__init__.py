"""The evidence over every row of a Spark DataFrame, on the executors (``pip install mlflow-hitl[spark]``).

``validate`` and queue creation accept a ``pyspark.sql.DataFrame`` wherever they accept a pandas one.
The model is scored on the executors; each check then reads statistics merged across partitions
(counts, binned sums, quantile sketches with a stated error bound, a seeded sample only where the
method is per-row), and the check's own formulas, shared with the pandas path, turn them into the
same metrics. Nothing proportional to the row count is collected to the driver.

- :func:`queue_for_review`: a review queue ranked on the executors, only the chosen rows fetched.
- :func:`validate_spark`: what ``validate`` runs when an input is a Spark DataFrame; its runner
  table (``RUNNERS``) says how each check runs on Spark.
- :func:`read_table`: a file, a folder of Parquet parts or ``table:<name>`` as a Spark DataFrame of the
  ambient session (the CLI's ``--engine spark``).

Importing this package does not import pyspark: :func:`is_spark_frame` recognises a Spark
DataFrame by its type's module, so the pandas path never pays for (or needs) Spark, and
:func:`validate_spark` is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ._queue import queue_for_review
    from ._read import read_table
    from ._validate import RUNNERS, validate_spark

__all__ = [
    "RUNNERS",
    "SAMPLE_ROWS",
    "is_spark_frame",
    "queue_for_review",
    "read_table",
    "require_pyspark",
    "validate_spark",
]

# The most rows per input a check that works row by row reads on the Spark path: a seeded sample.
SAMPLE_ROWS = 100_000

# The modules behind these names import pyspark; only a caller holding a Spark DataFrame reaches them.
_HOMES = {
    "RUNNERS": "._validate",
    "validate_spark": "._validate",
    "queue_for_review": "._queue",
    "read_table": "._read",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_spark_frame(obj: Any) -> bool:
    """Whether ``obj`` is a Spark DataFrame (classic or Spark Connect), without importing pyspark."""
    kind = type(obj)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pyspark.sql")


def require_pyspark(needed_by: str = "a Spark DataFrame") -> None:
    """Raise one clear line when the Spark path is asked for (by ``needed_by``) and pyspark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise InputError(f"{needed_by} needs pyspark: pip install 'mlflow-hitl[spark]'") from exc
