"""A blind queue through a real ``mlflow server --app-name hitl``: what an ordinary reviewer can read.

The queue's model prediction, confidence, selection score, reason and group, its gold labels and the
other raters' labels carry values no other field holds, so a leak shows as the value in the raw JSON
of any answer the reviewer gets; adjudicators and admins read the queue whole.
"""

import json
import uuid

import numpy as np
import pandas as pd
import pytest
import requests

from mlflow_hitl.adapter.blind import HIDDEN_REASON
from mlflow_hitl.errors import PermissionDeniedError
from mlflow_hitl.review import HttpReviewStore

from .conftest import PASSWORDS

pytestmark = pytest.mark.security

# Values found nowhere else in the answers: the model's, the selection's and others' labels (their comment).
# The prediction and the gold label are classes, which the queue itself shows: they are checked by field.
SECRETS = {
    "confidence": 0.8137,
    "score": 0.4242,
    "group": "grp-7f3a",
    "reason": "stratified-by-secret",
    "others": "others-comment-91c",
}
CLASSES = ["cat", "dog", "owl"]


def _as(monkeypatch, user, password=None):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or PASSWORDS[user])


@pytest.fixture(scope="module")
def blind(api):
    """A blind queue made by root, labelled by root and the adjudicator; names and the adjudicator."""
    adjudicator = f"adj-{uuid.uuid4().hex[:6]}"
    made = api.post(
        "api/2.0/mlflow/users/create", {"username": adjudicator, "password": "Adj-pass-word-12"}, "admin"
    )
    assert made.status_code == 200, made.text
    api.store.grant_role(adjudicator, "adjudicator", actor="root")
    name = api.fresh_name("blind")
    n = 4
    api.store.create_queue(
        name,
        rows=pd.DataFrame({"text": [f"row {i}" for i in range(n)]}),
        selection=pd.DataFrame(
            {
                "row": np.arange(n),
                "reason": [SECRETS["reason"]] * n,
                "score": [SECRETS["score"]] * n,
                "group": [SECRETS["group"]] * n,
            }
        ),
        classes=CLASSES,
        actor="root",
        raters_per_item=3,
        blind=True,
        predictions=["owl"] * n,
        confidences=[SECRETS["confidence"]] * n,
        gold={0: "owl"},
    )
    api.store.annotate(name, position=1, user="root", label="dog", comment=SECRETS["others"])
    api.store.annotate(name, position=1, user=adjudicator, label="cat", comment=SECRETS["others"])
    return {"queue": name, "adjudicator": (adjudicator, "Adj-pass-word-12")}


def _reads(api, queue, user, password=None):
    """Every read of the queue an ordinary client makes, as raw answers: route -> (status, text)."""
    auth = (user, password or PASSWORDS[user])
    calls = {
        "items/list": ("GET", {"queue": queue}),
        "items/next": ("POST", {"queue": queue}),
        "annotations/list": ("GET", {"queue": queue}),
        "queues/labels": ("GET", {"queue": queue}),
        "queues/label-counts": ("GET", {"queue": queue}),
        "queues/gold": ("GET", {"queue": queue}),
        "adjudications/list": ("GET", {"queue": queue}),
        "queues/get": ("GET", {"queue": queue}),
        "queues/list": ("GET", {}),
        "queues/progress": ("GET", {"queue": queue}),
        "audit/events": ("GET", {"subject": f"queue:{queue}"}),
    }
    answers = {}
    for route, (method, fields) in calls.items():
        kwargs = {"params": fields} if method == "GET" else {"json": fields}
        got = requests.request(method, f"{api.url}/hitl/api/{route}", auth=auth, timeout=60, **kwargs)
        answers[route] = (got.status_code, got.text)
    return answers


def test_no_read_of_an_ordinary_reviewer_shows_the_model_the_selection_gold_or_others_labels(api, blind):
    queue = blind["queue"]
    answers = _reads(api, queue, "eve")
    for route, (status, text) in answers.items():
        assert status in (200, 403), (route, text)
        for what, secret in SECRETS.items():
            assert str(secret) not in text, f"{route} shows the {what}: {text[:300]}"
    for route in ("queues/labels", "queues/label-counts", "queues/gold", "adjudications/list"):
        status, text = answers[route]
        assert status == 403 and "eve cannot read the" in text and "it is blind" in text, text
    items = json.loads(answers["items/list"][1])["items"]
    assert len(items) == 4 and all(i["prediction"] is None and i["confidence"] is None for i in items)
    assert {i["reason"] for i in items} == {HIDDEN_REASON} and {i["score"] for i in items} == {None}
    assert json.loads(answers["items/next"][1])["item"]["reason"] == HIDDEN_REASON
    # Others' labels and their events are withheld; the queue's own creation is not.
    assert json.loads(answers["annotations/list"][1])["annotations"] == []
    actions = [e["action"] for e in json.loads(answers["audit/events"][1])["events"]]
    assert actions == ["queue.create"]


def test_a_reviewer_sees_their_own_labels_and_events_only(api, blind, monkeypatch):
    queue = blind["queue"]
    _as(monkeypatch, "eve")
    store = HttpReviewStore(api.url)
    store.annotate(queue, position=1, user="ignored", label="owl", comment="mine")
    labels = store.annotations(queue)
    assert labels[["item", "rater", "comment"]].values.tolist() == [[1, "eve", "mine"]]
    events = store.audit_events(subject=f"queue:{queue}/item:1")
    assert events["actor"].tolist() == ["eve"]
    others = api.store.audit_events(subject=f"queue:{queue}/item:1", actor="root")
    seq = int(others["seq"].iloc[0])
    assert store.audit_event(seq) == {"seq": seq, "time": others["time"].iloc[0], "withheld": True}
    with pytest.raises(PermissionDeniedError, match="gold labels of queue .* it is blind"):
        store.gold(queue)
    with pytest.raises(PermissionDeniedError, match="labels of queue .* it is blind"):
        store.queue_labels(queue)
    # Whole pages of the chain stay in order for the reviewer; only others' item events are left out.
    everything = store.audit_events()
    assert everything["seq"].is_monotonic_increasing and f"queue:{queue}/item:1" in set(everything["subject"])


@pytest.mark.parametrize("who", ["adjudicator", "root"])
def test_adjudicators_and_admins_read_the_blind_queue_whole(api, blind, monkeypatch, who):
    if who == "adjudicator":
        _as(monkeypatch, *blind["adjudicator"])
    else:
        _as(monkeypatch, "root")
    store = HttpReviewStore(api.url)
    queue = blind["queue"]
    items = store.items(queue)
    assert {i.reason for i in items} == {SECRETS["reason"]} and {i.score for i in items} == {SECRETS["score"]}
    assert {i.group for i in items} == {SECRETS["group"]}
    assert store.gold(queue) == {0: "owl"}
    assert {"root", blind["adjudicator"][0]} <= set(store.annotations(queue)["rater"])
    assert {"root", blind["adjudicator"][0]} <= set(store.queue_labels(queue).annotations["rater"])
    assert set(store.audit_events(subject=f"queue:{queue}/item:1")["actor"]) >= {
        "root",
        blind["adjudicator"][0],
    }
