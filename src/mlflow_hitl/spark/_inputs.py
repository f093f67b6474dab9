"""Spark inputs checked at the door, refused in the pandas path's words, their columns read by the names as
written, and Spark's errors made one line.

A pandas input given next to a Spark one is checked as the pandas path checks it and then turned into
a Spark DataFrame with the Spark input's session, so every input is read the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import errors
from .._validation import (
    check_frame,
    check_unique_columns,
    missing_columns_message,
    missing_labels_message,
    too_few_rows_message,
)
from ..errors import InputError, ModelError, first_line
from . import is_spark_frame

__all__ = [
    "Checked",
    "as_spark",
    "check_rows",
    "checked",
    "column",
    "in_pandas",
    "on_executors",
    "require_columns",
    "selected",
]

T = TypeVar("T")

# A library error raised on an executor reaches the driver inside Spark's PythonException, as the
# last lines of the worker's traceback: "mlflow_hitl.errors.ModelError: LogisticRegression.predict failed: ...".
_OUR_ERROR = re.compile(r"^mlflow_hitl\.errors\.(\w+): (.+)$", re.MULTILINE)


def column(name: str) -> Any:
    """The column called ``name``, quoted so dots, spaces and backticks in it are part of the name.

    Spark parses a plain name (``F.col``, ``frame[name]``, a name given to ``select``, ``orderBy``,
    ``groupBy``, ``approxQuantile``): ``income.total`` would be the field ``total`` of ``income``.
    """
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def in_pandas(frame: Any, function: Callable[[Iterator[Any]], Iterator[Any]], schema: Any) -> Any:
    """``frame.mapInPandas(function, schema)``, whatever the column names.

    pyspark's ``mapInPandas`` reads each column by its name as Spark parses it, which a dot or a
    backtick in a name breaks (``income.total`` is looked up as a field of ``income``). The columns
    travel under their positions instead, and each pandas batch gets its names back before
    ``function`` sees it.
    """
    names = list(frame.columns)
    positional = frame.select(*[column(c).alias(f"_hitl_{i}") for i, c in enumerate(names)])

    def named(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            batch.columns = names
            yield batch

    return positional.mapInPandas(lambda batches: function(named(batches)), schema)


def on_executors(action: Callable[[], T]) -> T:
    """Run a Spark action; a failure in our code or the model's on an executor becomes one line.

    The error raised there (``ModelError`` when the model's call failed) is raised again here with its
    own message, instead of Spark's page of JVM and Python traceback.
    """
    from pyspark.errors import PythonException

    try:
        return action()
    except PythonException as exc:
        text = str(exc)
        ours = _OUR_ERROR.findall(text)
        if ours:
            kind, message = ours[-1]
            error = getattr(errors, kind, None)
            if isinstance(error, type) and issubclass(error, errors.HitlError):
                raise error(message) from exc
        lines = [line for line in text.splitlines() if line.strip()]
        raise ModelError(
            f"the model failed on the executors: {lines[-1] if lines else first_line(exc)}"
        ) from exc


def as_spark(frame: Any, input_name: str, session: Any) -> Any:
    """``frame`` as a Spark DataFrame of ``session``: a pandas frame is checked (as the pandas path does) and converted."""
    if is_spark_frame(frame):
        return frame
    pandas_frame = check_frame(frame, input_name, min_rows=0)
    try:
        return session.createDataFrame(pandas_frame)
    except Exception as exc:  # pyspark's and Arrow's type inference raise several kinds
        raise InputError(
            f"{input_name} could not be turned into a Spark DataFrame: {first_line(exc)}"
        ) from exc


def require_columns(frame: Any, input_name: str, columns: Sequence[str]) -> None:
    """Refuse duplicate column names and any of ``columns`` the frame lacks (read from the schema, no job)."""
    names = list(frame.columns)
    check_unique_columns(names, input_name)
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(missing_columns_message(input_name, missing, names))


def selected(frame: Any, input_name: str, columns: Sequence[str] | None = None) -> Any:
    """``frame[columns]`` (every column when ``None``), refused as ``check_frame`` refuses a pandas frame:
    duplicate names, a missing column, no columns at all. Reads the schema only (no job)."""
    require_columns(frame, input_name, columns or [])
    if columns is not None:
        frame = frame.select(*[column(c) for c in columns])
    if not frame.columns:
        raise InputError(f"{input_name} has no columns")
    return frame


def check_rows(rows: int, input_name: str) -> None:
    """The pandas path's refusal of an empty input, once Spark has counted its rows."""
    if rows < 1:
        raise InputError(too_few_rows_message(input_name, rows))


@dataclass(frozen=True)
class Checked:
    """An input as the checks read it: ``columns`` selected, infinities as nulls; its rows and fingerprint."""

    frame: Any
    rows: int
    fingerprint: str


def _finite(frame: Any, name: str) -> Any:
    """The column with +-inf turned into null, as the pandas path turns them into NaN."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    col = column(name)
    if isinstance(frame.schema[name].dataType, (DoubleType, FloatType)):
        col = F.when(col.isin(float("inf"), float("-inf")), F.lit(None)).otherwise(col)
    return col.alias(name)


def checked(frame: Any, input_name: str, columns: Sequence[str], *, labels: str | None = None) -> Checked:
    """``frame[columns]`` checked as ``check_frame`` (and, for ``labels``, ``check_labels``) checks a pandas one.

    One job counts the rows, the missing labels and the fingerprint: the SHA-256 of the columns, their
    types, the row count and the exact sum (a 38-digit decimal) of Spark's 64-bit ``xxhash64`` row
    hashes. A sum does not depend on the rows' order or partitioning, so the same rows give the same
    fingerprint however they are split; it is a different hash from the pandas path's, so compare a
    Spark input's fingerprint with another Spark input's.
    """
    from pyspark.sql import functions as F

    require_columns(frame, input_name, columns)
    selected = frame.select(*[_finite(frame, c) for c in columns])
    aggregates = [
        F.count(F.lit(1)),
        F.sum(F.xxhash64(*[column(c) for c in columns]).cast("decimal(38,0)")),
    ]
    if labels is not None:
        aggregates.append(F.sum(column(labels).isNull().cast("long")))
    row = on_executors(lambda: selected.agg(*aggregates).first())
    rows = int(row[0])
    check_rows(rows, input_name)
    if labels is not None and row[2]:
        raise InputError(missing_labels_message(f"{input_name}[{labels!r}]", int(row[2])))
    schema = "\0".join(f"{f.name}\0{f.dataType.simpleString()}" for f in selected.schema.fields)
    digest = hashlib.sha256(f"spark-xxhash64-sum\0{schema}\0{rows}\0{row[1]}".encode()).hexdigest()
    return Checked(selected, rows, digest)
