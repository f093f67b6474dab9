"""The model scored on the executors gives the pandas path's labels and probabilities, row for row."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_hitl.adapter.model import as_classifier
from mlflow_hitl.spark import is_spark_frame
from mlflow_hitl.spark._scoring import PRED, PROBA, scored

pytestmark = pytest.mark.spark


def test_a_spark_frame_is_recognised_and_a_pandas_one_is_not(spark, arrests):
    assert is_spark_frame(spark.createDataFrame(arrests.head(5)))
    assert not is_spark_frame(arrests)
    assert not is_spark_frame(None)


@pytest.mark.parametrize("partitions", [1, 7])
def test_scores_equal_the_pandas_path_whatever_the_partitioning(
    spark, arrests_split, arrests_model, partitions
):
    _, real, _ = arrests_split
    real = real.reset_index(drop=True).assign(row=lambda f: range(len(f)))
    model = as_classifier(arrests_model)
    features = list(model.feature_names)
    frame = spark.createDataFrame(real).repartition(partitions)
    out = (
        scored(
            frame,
            features=features,
            label_type=frame.schema["released"].dataType,
            predict=model.predict,
            predict_proba=model.predict_proba,
            classes=model.classes,
        )
        .select("row", PRED, PROBA)
        .toPandas()
        .sort_values("row")
    )
    expected = model.predict_proba(real[features])
    np.testing.assert_allclose(np.stack(out[PROBA].to_numpy()), expected, rtol=0, atol=1e-12)
    assert out[PRED].tolist() == list(np.asarray(model.classes, dtype=object)[expected.argmax(axis=1)])
