"""The routed model in Spark batch scoring (``mlflow.pyfunc.spark_udf``): each Python worker answers as
the wrapped model and routes its own uncertain rows to the queue."""

from __future__ import annotations

import time

import mlflow
import numpy as np
import pytest

from hitl_support import log_sklearn_model
from mlflow_hitl.review import ReviewStore, Router, RoutingRule
from mlflow_hitl.serving import log_routed_model

pytestmark = pytest.mark.spark

# No random controls: which rows a worker picks at random depends on how Spark splits the rows;
# the uncertain ones do not.
RULE = {"strategy": "least-confidence", "threshold": 0.6, "control_share": 0.0}


def test_spark_udf_answers_as_the_model_and_queues_exactly_the_uncertain_rows(
    spark, tracking_uri, tmp_path, arrests_split, arrests_model
):
    _, real, production = arrests_split
    with mlflow.start_run():
        base = log_sklearn_model(arrests_model, real)
    store_uri = f"sqlite:///{tmp_path / 'routed.db'}"
    info = log_routed_model(
        base.model_uri,
        queue="batch-spark",
        store_uri=store_uri,
        spool_dir=str(tmp_path / "spool"),
        budget=None,
        id_column="request_id",
        **RULE,
    )
    features = list(arrests_model.feature_names_in_)
    frame = (
        production[features].reset_index(drop=True).assign(request_id=lambda f: [f"r{i}" for i in f.index])
    )
    score = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type="string", env_manager="local")
    rows = spark.createDataFrame(frame).repartition(3)
    answered = rows.select("request_id", score(*rows.columns).alias("answer")).toPandas()

    expected = arrests_model.predict(frame[features])
    by_id = answered.set_index("request_id")["answer"]
    assert by_id.loc[frame["request_id"]].tolist() == [str(v) for v in expected]

    routed = Router(RoutingRule(**RULE)).route(arrests_model.predict_proba(frame[features]))
    uncertain = set(frame["request_id"].iloc[routed["row"]])
    assert 0 < len(uncertain) < len(frame)
    store = ReviewStore(store_uri)
    deadline = time.monotonic() + 60  # the workers' feeders send off the request path, within seconds
    queued: set[str] = set()
    while time.monotonic() < deadline:
        if "batch-spark" in {q.name for q in store.queues()}:
            queued = {i.row_key for i in store.items("batch-spark")}
        if len(queued) >= len(uncertain):
            break
        time.sleep(0.5)
    assert queued == uncertain
    items = store.items("batch-spark")
    assert {i.reason for i in items} == {"least-confidence"} and all(i.confidence < 0.6 for i in items)
    assert np.isin([i.prediction for i in items], arrests_model.classes_).all()
