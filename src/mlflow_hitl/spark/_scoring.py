"""The model scored on the executors: each partition's rows go through the model in pandas batches.

A pandas UDF (``mapInPandas``) rather than ``mlflow.pyfunc.spark_udf``: the model arrives already
resolved (the adapter's classifier, with ``predict_proba`` unwrapped the way MLflow's own evaluator
does), and ``spark_udf`` would return labels only. The classifier is shipped to the executors by
Spark's pickling; on a cluster the executors need the model's own libraries, as with ``spark_udf``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError
from ._inputs import in_pandas

__all__ = ["PRED", "PROBA", "predictions", "scored"]

# The columns scoring adds: the predicted label (typed like the target) and, for a model with
# class probabilities, their array in the classifier's class order.
PRED = "_hitl_pred"
PROBA = "_hitl_proba"


def scored(
    frame: Any,
    *,
    features: Sequence[str],
    label_type: Any,
    predict: Callable[[pd.DataFrame], np.ndarray],
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None,
    classes: Sequence[Any] | None,
    keep: Sequence[str] | None = None,
) -> Any:
    """``frame`` with :data:`PRED` (and :data:`PROBA` when there are probabilities), computed lazily.

    ``label_type``: the Spark type of the target column, which the predicted label takes.
    With probabilities the label is the most probable class, as the pandas path takes it.
    ``keep``: the columns of ``frame`` to hand back beside the answers (all when ``None``); the
    model still reads its ``features``, but the others do not make the trip back through Arrow,
    which a ``select`` after the pandas UDF could not spare them.
    """
    from pyspark.sql.types import ArrayType, DoubleType, StructField, StructType

    kept = list(frame.columns if keep is None else keep)
    fields = [frame.schema[c] for c in kept] + [StructField(PRED, label_type, True)]
    if predict_proba is not None:
        fields.append(StructField(PROBA, ArrayType(DoubleType(), False), True))
    schema = StructType(fields)
    columns = list(features)
    class_array = None if classes is None else np.asarray(list(classes), dtype=object)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            labels, proba = predictions(batch, columns, predict, predict_proba, class_array)
            answered = batch[kept].assign(**{PRED: labels})
            if proba is not None:
                answered[PROBA] = list(proba)
            yield answered

    return in_pandas(frame, score, schema)


def predictions(
    batch: pd.DataFrame,
    columns: Sequence[str],
    predict: Callable[[pd.DataFrame], np.ndarray],
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None,
    class_array: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One pandas batch's predicted labels and class probabilities (``None`` without ``predict_proba``),
    on an executor; with probabilities the label is the most probable of ``class_array``."""
    X = batch[list(columns)]
    if predict_proba is None:
        return np.asarray(predict(X)), None
    proba = np.asarray(predict_proba(X), dtype=float)
    if proba.ndim != 2 or proba.shape[0] != len(batch):
        raise ModelError(f"predict_proba returned shape {proba.shape} for {len(batch)} rows")
    return class_array[proba.argmax(axis=1)], proba
