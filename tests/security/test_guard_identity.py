"""The creators' record (:mod:`mlflow_hitl.adapter.identity`), read back as the gate reads it."""

from mlflow_hitl.adapter.identity import (
    creation_record,
    record_model_created,
    record_run_created,
    record_version_created,
    recorded_creator,
)
from mlflow_hitl.review import ReviewStore


def test_the_latest_creation_of_each_subject_names_its_creator(tmp_path):
    store = ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}")
    record_run_created(store, run_id="abc", user="eve")
    record_model_created(store, name="fraud", user="eve", prompt=False)
    record_version_created(store, name="fraud", version="1", user="eve", run_id="abc", source="s3://b/m")
    record_model_created(store, name="fraud-2", user="rita", prompt=True)
    assert recorded_creator(store, "run:abc") == "eve"
    assert recorded_creator(store, "run:ab") is None  # no prefix matches
    assert recorded_creator(store, "model:fraud/1") == "eve"
    assert recorded_creator(store, "model:fraud-2/1") is None
    assert creation_record(store, "model:fraud-2")["prompt"] is True
    assert creation_record(store, "model:fraud/1")["run_id"] == "abc"
    assert recorded_creator(store, "queue:q1") is None

    # Deleted and made again under the same name: the old model's version 1 names nobody.
    record_model_created(store, name="fraud", user="mallory", prompt=False)
    assert recorded_creator(store, "model:fraud") == "mallory"
    assert recorded_creator(store, "model:fraud/1") is None
    record_version_created(store, name="fraud", version="1", user="mallory", run_id=None, source="s3://c/m")
    assert recorded_creator(store, "model:fraud/1") == "mallory"
