"""A Spark DataFrame checked at the door, with the pandas path's words for what is wrong with it.

Only the schema is read here (no Spark job): the row count comes with each check's first aggregation,
which then calls :func:`check_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from . import is_spark_frame

__all__ = ["check_rows", "checked_spark_frame", "spark_frame_of"]


def spark_frame_of(frame: Any, input_name: str, like: Any) -> Any:
    """``frame`` as a Spark DataFrame: a pandas one is handed to ``like``'s session (it is small, or it
    would not be in pandas), a Spark one passes, anything else is refused."""
    if is_spark_frame(frame):
        return frame
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return like.sparkSession.createDataFrame(frame)
    raise InputError(f"{input_name} must be a pandas or Spark DataFrame, got {type(frame).__name__}")


def checked_spark_frame(frame: Any, input_name: str, *, columns: Sequence[Any] | None = None) -> Any:
    """``frame`` reduced to ``columns`` (all when ``None``): no duplicate names, none missing, at least one."""
    names = list(frame.columns)
    seen: set[str] = set()
    dupes = sorted({c for c in names if c in seen or seen.add(c)})
    if dupes:
        raise InputError(f"{input_name} has duplicate column names: {', '.join(dupes)}")
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            available = ", ".join(map(str, names[:20]))
            raise InputError(
                f"{input_name} is missing column(s) {', '.join(map(str, missing))}; it has: {available}"
            )
        frame = frame.select(*[frame[c] for c in columns])
    if not frame.columns:
        raise InputError(f"{input_name} has no columns")
    return frame


def check_rows(n_rows: int, input_name: str, min_rows: int = 1) -> None:
    """The pandas path's check of a frame's row count, once Spark has counted them."""
    if n_rows < min_rows:
        raise InputError(f"{input_name} has {n_rows} row(s); at least {min_rows} needed")
