"""Evidence frozen and bound to its model behind a real ``mlflow server --app-name hitl`` with basic auth.

The run's author (a non-admin with MANAGE, MLflow's default here) uses only what the server lets her
do: overwrite ``hitl/`` artifacts of her run after the sign-off, with the manifest hashes recomputed,
and register a version whose source is another model under the passing run's id. The gate, in the
client and in the server, judges the run against its registration in the audit chain, on SQLite and PostgreSQL.
"""

import json
from pathlib import Path

import mlflow
import pytest
import requests

from hitl_support import (
    LENIENT_POLICY,
    log_run_with_evidence,
    log_sklearn_model,
    make_arrests_model,
    unique_name,
)
from mlflow_hitl._hashing import sha256_file
from mlflow_hitl.adapter.gate import check_gate, set_policy
from mlflow_hitl.adapter.lineage import lineage
from mlflow_hitl.review import ReviewStore

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

USERS = {"alice": "Alice-pass-word-1", "dana": "Dana-pass-word-1", "rita": "Rita-pass-word-1"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request):
    """The session's shared server of each backend, with alice, dana and rita as non-admin users."""
    shared = request.getfixturevalue(f"hitl_server_{request.param}")
    shared.users(USERS)
    shared.roles({"dana": ["fairness-reviewer"]})
    return {
        "url": shared.url,
        "store_uri": shared.store_uri,
        "key_env": shared.key_env,
        "model": unique_name("fraud"),
    }


def _as(monkeypatch, server, user):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", USERS[user])
    monkeypatch.setenv("MLFLOW_HITL_USER", user)  # the review store's actor, as the server will record it
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", server["store_uri"])
    for name, value in server["key_env"].items():  # what this process writes there, it signs as the server
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(server["url"])
    mlflow.set_registry_uri(server["url"])


def _set_alias(server, user):
    return requests.post(
        f"{server['url']}/api/2.0/mlflow/registered-models/alias",
        json={"name": server["model"], "alias": "champion", "version": "1"},
        auth=(user, USERS[user]),
        timeout=120,
    )


def test_the_author_overwriting_evidence_through_the_server_is_caught(
    server, monkeypatch, tmp_path, arrests_model, arrests_split
):
    synthetic, real, _ = arrests_split
    name = server["model"]
    _as(monkeypatch, server, "alice")
    mlflow.set_experiment("evidence-freeze")
    run_id = log_run_with_evidence(arrests_model, synthetic, real, input_example=False)
    mlflow.register_model(f"runs:/{run_id}/model", name)
    store = ReviewStore(server["store_uri"])
    set_policy(store, name, LENIENT_POLICY, actor="root")
    signed = requests.post(
        f"{server['url']}/hitl/api/signoffs/create",
        json={"run_id": run_id, "check": "fairness", "approve": True},
        auth=("dana", USERS["dana"]),
        timeout=60,
    )
    assert signed.status_code == 200, signed.text

    def unmet():
        decision = check_gate(name, "1", "alias:champion", store=store, actor="rita", record=False)
        return {r.name: r.detail for r in decision.unmet()}

    before = unmet()
    assert "evidence.registered" not in before and "evidence.model" not in before, before
    # The run's author, as the server recorded her when she created the run, may not promote it.
    own = _set_alias(server, "alice")
    assert own.status_code == 403 and "duties.promoter" in own.json()["message"], own.text

    # alice overwrites her run's result and rewrites the manifest to match, through the server.
    client = mlflow.MlflowClient()
    folder = tmp_path / "forged"
    result = folder / "calibration" / "result.json"
    summary_path = folder / "summary.json"
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps({"status": "passed", "metrics": {"ece": 0.0}}))
    summary = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="hitl/summary.json")
        ).read_text()
    )
    summary["manifest"]["calibration/result.json"] = sha256_file(result)
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    client.log_artifact(run_id, str(result), artifact_path="hitl/calibration")
    client.log_artifact(run_id, str(summary_path), artifact_path="hitl")
    stored = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="hitl/summary.json")
    assert json.loads(Path(stored).read_text()) == summary  # the server took the overwrite

    after = unmet()
    assert "evidence.artifacts_intact" not in after  # consistent with its own rewritten manifest...
    assert "evidence changed after registration" in after["evidence.registered"]  # ...not with the record
    assert any(
        "evidence changed after registration" in p
        for p in lineage(name, "1", store=store)["evidence_problems"]
    )
    refused = _set_alias(server, "rita")
    assert refused.status_code == 403 and "evidence changed after registration" in refused.json()["message"]

    # A version with another model as its source and the passing run's id: the files differ.
    with mlflow.start_run():
        other = log_sklearn_model(make_arrests_model(synthetic.iloc[:200]))
    created = requests.post(
        f"{server['url']}/api/2.0/mlflow/model-versions/create",
        json={"name": name, "source": other.model_uri, "run_id": run_id, "model_id": other.model_id},
        auth=("alice", USERS["alice"]),
        timeout=60,
    )
    assert created.status_code == 200, created.text
    version = created.json()["model_version"]["version"]
    decision = check_gate(name, version, "alias:champion", store=store, actor="rita", record=False)
    assert (
        "model files differ from the evaluated model"
        in {r.name: r.detail for r in decision.unmet()}["evidence.model"]
    )
    refused = requests.post(
        f"{server['url']}/api/2.0/mlflow/registered-models/alias",
        json={"name": name, "alias": "champion", "version": version},
        auth=("rita", USERS["rita"]),
        timeout=120,
    )
    assert (
        refused.status_code == 403
        and "model files differ from the evaluated model" in refused.json()["message"]
    )
