"""A production queue grows as requests come: appends on a real SQLite file and a real PostgreSQL server."""

import json

import numpy as np
import pandas as pd
import pytest

from mlflow_hitl.errors import InputError, NotFoundError
from mlflow_hitl.review import ImportReport, ReviewStore

CLASSES = ["No", "Yes"]


@pytest.fixture
def store(store_url):
    store = ReviewStore(store_url)
    store.create_queue(
        "prod",
        rows=pd.DataFrame({"age": [30.0], "colour": ["Black"]}, index=["seed-request"]),
        selection=pd.DataFrame({"row": [0], "reason": ["least-confidence"], "score": [0.5]}),
        classes=CLASSES,
        actor="serving",
    )
    yield store
    store.close()


def _batch(ages, ids, *, picked=None):
    rows = pd.DataFrame({"colour": ["White"] * len(ages), "age": ages})  # columns in another order
    picked = range(len(ages)) if picked is None else picked
    selection = pd.DataFrame(
        {
            "row": list(picked),
            "reason": ["least-confidence"] * len(picked),
            "score": [0.4] * len(picked),
            "inclusion_probability": [np.nan] * len(picked),
        }
    )
    return {
        "rows": rows,
        "selection": selection,
        "request_ids": ids,
        "predictions": ["Yes"] * len(ages),
        "confidences": [0.6] * len(ages),
    }


def test_appended_items_follow_the_queue_keyed_by_request_and_audited(store):
    report = store.append_items(
        "prod", **_batch([40.0, 41.0, 42.0], ["r1", "r2", "r3"], picked=[2, 0]), actor="svc"
    )
    assert report == ImportReport(added=2, unchanged=0)
    items = store.items("prod")
    assert [(i.position, i.row_key) for i in items] == [(0, "seed-request"), (1, "r3"), (2, "r1")]
    assert items[1].payload == {"colour": "White", "age": 42.0}
    assert (items[1].prediction, items[1].confidence, items[1].reason) == ("Yes", 0.6, "least-confidence")
    event = store.audit_events(subject="queue:prod", action="queue.append")
    assert event["actor"].tolist() == ["svc"]
    assert json.loads(event["payload"].iloc[0])["items"] == 2
    assert store.verify_audit().ok


def test_a_request_id_is_queued_once_however_often_it_is_sent(store):
    batch = _batch([40.0, 41.0], ["r1", "r2"])
    assert store.append_items("prod", **batch, actor="svc") == ImportReport(added=2, unchanged=0)
    assert store.append_items("prod", **batch, actor="svc") == ImportReport(added=0, unchanged=2)
    again = _batch([50.0, 51.0, 52.0], ["r2", "r9", "r9"])  # one old id, one new id twice
    assert store.append_items("prod", **again, actor="svc") == ImportReport(added=1, unchanged=2)
    items = store.items("prod")
    assert [i.row_key for i in items] == ["seed-request", "r1", "r2", "r9"]
    assert [i.position for i in items] == [0, 1, 2, 3]
    assert items[3].payload["age"] == 51.0  # the first of a repeated id
    # a call that adds nothing records nothing
    assert len(store.audit_events(subject="queue:prod", action="queue.append")) == 2


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"name": "nope"}, NotFoundError, "unknown queue 'nope'"),
        ({"request_ids": ["r1"]}, InputError, "request_ids has 1 entries for 2 rows"),
        ({"request_ids": ["r1", ""]}, InputError, "request ids must be non-empty strings"),
        ({"request_ids": ["r1", 7]}, InputError, "request ids must be non-empty strings"),
        (
            {"rows": pd.DataFrame({"age": [1.0, 2.0]})},
            InputError,
            r"rows have columns \['age'\]; queue 'prod'",
        ),
        ({"predictions": ["Yes"]}, InputError, "predictions has 1 entries for 2 rows"),
        ({"selection": pd.DataFrame({"row": [5], "reason": ["x"]})}, InputError, "outside the 2 given"),
        ({"actor": " "}, InputError, "actor must be a non-empty name"),
    ],
)
def test_a_bad_append_is_refused_whole_with_one_line(store, change, error, match):
    call = {"name": "prod", **_batch([40.0, 41.0], ["r1", "r2"]), "actor": "svc", **change}
    with pytest.raises(error, match=match):
        store.append_items(call.pop("name"), **call)
    assert [i.row_key for i in store.items("prod")] == ["seed-request"]
