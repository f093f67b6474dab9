"""Tables read by Spark for the command line: files, folders of Parquet parts and catalog tables.

The CLI's ``--engine spark`` reads each input here instead of into pandas, so a table larger than one
process is validated on the executors. The session is ``SparkSession.builder.getOrCreate()``: the
ambient one where there is one (a Databricks cluster, ``spark-submit``, a test's), else a new local one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError, first_line
from . import require_pyspark

__all__ = ["TABLE_PREFIX", "read_table", "spark_session"]

# ``--real table:loans_2025``: a table of the session's catalog, not a path.
TABLE_PREFIX = "table:"
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def spark_session() -> Any:
    """The active Spark session, else a new one (local unless ``spark-submit`` or the environment says otherwise).

    A new local session's Python workers run this Python (``PYSPARK_PYTHON`` unless set), which holds
    mlflow-hitl and the model's libraries; an existing session keeps the workers it was given.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is None:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return SparkSession.builder.getOrCreate()


def _location(spec: str, input_name: str) -> tuple[str, str]:
    """(Spark's reader, the path to give it). A local path is made absolute (Spark reads relative paths
    from its own working folder); a URI (``s3://``, ``dbfs:/``, ``hdfs://``) is given as it is, and one
    without a ``.csv`` or ``.parquet`` suffix is a folder of Parquet parts, as a local folder is."""
    local = "://" not in spec and not spec.startswith("dbfs:")
    path = Path(spec)
    kind = _FORMATS.get(path.suffix.lower())
    if not local:
        return kind or "parquet", spec
    if path.is_dir():  # Spark's own output: a folder of parts (CSV when it is named so)
        return kind or "parquet", str(path.resolve())
    if kind is None:
        raise InputError(
            f"{input_name}: {spec} is not a .csv or .parquet file, a folder of Parquet parts, "
            f"or {TABLE_PREFIX}<name> (a Spark table)"
        )
    if not path.is_file():
        raise InputError(f"{input_name}: file {spec} does not exist")
    return kind, str(path.resolve())


def read_table(spec: str, input_name: str) -> Any:
    """A Spark DataFrame of ``spec``: ``table:<name>`` (the catalog's table), a ``.csv`` file (a header
    row, column types inferred as pandas infers them), a ``.parquet`` file, or a folder of Parquet parts.

    Nothing is read yet beyond the schema (a CSV's types are inferred by one pass on the executors);
    a name or path Spark cannot read is one :class:`~mlflow_hitl.errors.InputError` line.
    """
    session = spark_session()
    from pyspark.errors import PySparkException

    try:
        if spec.startswith(TABLE_PREFIX):
            return session.table(spec[len(TABLE_PREFIX) :])
        kind, path = _location(spec, input_name)
        if kind == "csv":
            return session.read.csv(path, header=True, inferSchema=True)
        return session.read.parquet(path)
    except PySparkException as exc:
        raise InputError(f"{input_name}: cannot read {spec} with Spark: {first_line(exc)}") from exc
