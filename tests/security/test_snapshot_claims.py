"""A verified-label snapshot recorded through the server is what the server's own labels make it.

The gate counts a run's snapshots (``[review] min_verified_items``, ``min_krippendorff_alpha``) from the
store's record and the snapshot's files in the run. A run's author who could record any numbers, or pin
files they wrote, would meet those requirements without one human label: the server rebuilds each
snapshot from its store and refuses every claim the rebuild does not bear out, on SQLite and PostgreSQL.
"""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

import mlflow_hitl
from mlflow_hitl._hashing import sha256_hex
from mlflow_hitl.review import HttpReviewStore, build_snapshot

from .conftest import BACKENDS, PASSWORDS, refused

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

CREATE = "hitl/api/snapshots/create"


def labelled_queue(api, monkeypatch) -> tuple[str, str]:
    """eve's run (acting as eve from here on) with a queue of 4 rows, 2 labelled by rita: (run, queue)."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "eve")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS["eve"])
    run_id = api.run("eve")["run_id"]
    queue = api.fresh_name("queue")
    n = 4
    selection = pd.DataFrame(
        {"row": range(n), "reason": ["least-confidence"] * n, "score": np.linspace(0.5, 0.2, n)}
    )
    api.store.create_queue(
        queue,
        rows=pd.DataFrame({"age": np.arange(30.0, 30.0 + n)}),
        selection=selection,
        classes=["No", "Yes"],
        actor="eve",
        run_id=run_id,
    )
    for position in (0, 1):
        api.store.annotate(queue, position=position, user="rita", label="Yes")
    return run_id, queue


@pytest.fixture
def published(api, monkeypatch, tmp_path):
    """A labelled queue (:func:`labelled_queue`) and its snapshot's files logged by eve, not yet recorded."""
    run_id, queue = labelled_queue(api, monkeypatch)
    client = mlflow.MlflowClient(tracking_uri=api.url, registry_uri=api.url)

    def log(files, snapshot_id):
        folder = tmp_path / snapshot_id
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)
        client.log_artifacts(run_id, str(folder), artifact_path=f"hitl/labels/{snapshot_id}")

    snapshot = build_snapshot(api.store.queue_labels(queue))
    files = snapshot.describe(run_id=run_id, audit_head=api.store.audit_head(), actor="eve")
    log(files, snapshot.id)
    claim = {
        "queue": queue,
        "snapshot_id": snapshot.id,
        "run_id": run_id,
        "method": "majority",
        "n_items": 2,
        "labels_sha256": sha256_hex(files["labels.csv"]),
        "manifest_sha256": sha256_hex(files["manifest.json"]),
    }
    return {"claim": claim, "files": files, "log": log, "queue": queue, "run_id": run_id}


def test_a_snapshot_claim_the_servers_labels_do_not_bear_out_is_refused(api, published):
    claim, queue, run_id = published["claim"], published["queue"], published["run_id"]
    refused(api.post(CREATE, {**claim, "n_items": 1000}), None)
    # Files of eve's own making, consistent with their own manifest: 500 verified rows at perfect agreement.
    forged_id = "f" * 16
    meta = json.loads(published["files"]["snapshot.json"])
    meta["agreement"], meta["verified_items"], meta["snapshot"] = {"krippendorff_alpha": 1.0}, 500, forged_id
    forged = {
        "labels.csv": b"age,label\n" + b"".join(b"%d,Yes\n" % i for i in range(500)),
        "annotations.csv": published["files"]["annotations.csv"],
        "snapshot.json": json.dumps(meta).encode(),
    }
    forged["manifest.json"] = json.dumps(
        {name: sha256_hex(content) for name, content in forged.items()}
    ).encode()
    published["log"](forged, forged_id)
    forged_claim = {
        **claim,
        "snapshot_id": forged_id,
        "n_items": 500,
        "labels_sha256": sha256_hex(forged["labels.csv"]),
        "manifest_sha256": sha256_hex(forged["manifest.json"]),
    }
    refused(api.post(CREATE, forged_claim), None)
    # The real files under a manifest digest that is not theirs, and a claim with no files at all.
    refused(api.post(CREATE, {**claim, "manifest_sha256": "0" * 64}), None)
    missing = api.post(CREATE, {**claim, "snapshot_id": "a" * 16})
    assert missing.status_code == 400 and "log the files first" in missing.json()["message"]
    assert api.store.snapshots(queue).empty
    assert set(api.events("api.refused")["actor"]) >= {"eve"}
    # The honest claim is recorded, as eve.
    made = api.post(CREATE, claim)
    assert made.status_code == 200, made.text
    recorded = api.store.snapshots(queue, run_id=run_id)
    assert recorded[["id", "n_items", "created_by"]].values.tolist() == [[claim["snapshot_id"], 2, "eve"]]


def test_publish_labels_through_the_server_logs_the_lineage_and_records_the_snapshot(api, monkeypatch):
    # The server proxies artifacts: the run's files live under mlflow-artifacts:/, which MLflow's
    # dataset sources do not describe; publishing must still log the lineage and record the snapshot.
    run_id, queue = labelled_queue(api, monkeypatch)
    mlflow.set_tracking_uri(api.url)
    record = mlflow_hitl.publish_labels(HttpReviewStore(api.url), queue, actor="eve")
    assert (record["n_items"], record["created_by"], record["republished"]) == (2, "eve", True)
    recorded = api.store.snapshots(queue, run_id=run_id)
    assert recorded["id"].tolist() == [record["id"]]
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    [verified] = [
        d.dataset
        for d in run.inputs.dataset_inputs
        if {t.key: t.value for t in d.tags}.get("mlflow.data.context") == "hitl-verified-labels"
    ]
    uri = f"{run.info.artifact_uri}/hitl/labels/{record['id']}/labels.csv"
    assert (verified.digest, json.loads(verified.source)) == (record["id"], {"uri": uri})
    # The retraining side reads the published labels back through the same server.
    assert len(mlflow_hitl.verified_labels(queue, store=HttpReviewStore(api.url), log_input=False)) == 2
