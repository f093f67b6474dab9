"""Team mode end to end: ``validate`` logs to a real ``mlflow server --app-name hitl`` (basic auth) and the
server registers the evidence itself; a sign-off, the gate and a promotion follow, all through the server.

The client holds no database URL and no audit key (no ``MLFLOW_HITL_STORE_URI``): the registration is
made by ``POST /hitl/api/evidence/register``, where the server hashes the run's files and the model.
"""

import json
import uuid
import warnings

import mlflow
import pytest
import requests

from hitl_support import LENIENT_POLICY, log_run_with_evidence, log_sklearn_model, mlflow_state_restored
from mlflow_hitl._hashing import sha256_hex
from mlflow_hitl.adapter.registration import model_digest_at, model_location
from mlflow_hitl.errors import InputError, PermissionDeniedError
from mlflow_hitl.review import HttpReviewStore

pytestmark = [pytest.mark.security, pytest.mark.filterwarnings("ignore::UserWarning:mlflow")]

ALIAS = "api/2.0/mlflow/registered-models/alias"
REGISTER = "hitl/api/evidence/register"


def _user(api, role=None):
    """A fresh MLflow user (and review-store role); its (name, password)."""
    name, password = f"u-{uuid.uuid4().hex[:8]}", "Fresh-pass-word-1"
    made = api.post("api/2.0/mlflow/users/create", {"username": name, "password": password}, "admin")
    assert made.status_code == 200, made.text
    if role is not None:
        api.store.grant_role(name, role, actor="root")
    return name, password


def _client_of(monkeypatch, api, user, password):
    """MLflow's client and ours pointed at the server as ``user``, with no review-store URL of their own."""
    from .conftest import PASSWORDS

    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or PASSWORDS[user])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", api.url)
    mlflow.set_tracking_uri(api.url)
    mlflow.set_registry_uri(api.url)


@pytest.fixture(scope="module")
def logged(api, arrests_model, arrests_split, tmp_path_factory):
    """eve's run, evidence logged through the server by validate, and a model version made from it."""
    synthetic, real, _ = arrests_split
    with mlflow_state_restored(), pytest.MonkeyPatch.context() as monkeypatch:
        _client_of(monkeypatch, api, "eve", None)
        mlflow.set_experiment(api.fresh_name("team-evidence"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_id = log_run_with_evidence(arrests_model, synthetic, real, input_example=False)
        name = api.fresh_name("fraud")
        mlflow.register_model(f"runs:/{run_id}/model", name)
    api.set_policy(name, LENIENT_POLICY)
    return {"run_id": run_id, "model": name, "warnings": [str(w.message) for w in caught]}


def _registrations(api, run_id):
    events = api.store.audit_events(subject=f"run:{run_id}", action="evidence.registered")
    return [(row.actor, json.loads(row.payload)) for row in events.itertuples()]


def _decision(api, name, user="rita"):
    got = api.call(
        "GET",
        "hitl/api/gate/decision",
        user,
        params={"model": name, "version": 1, "target": "alias:champion"},
    )
    assert got.status_code == 200, got.text
    return {r["name"]: r for r in got.json()["decision"]["requirements"]}


def test_validate_logging_to_the_server_registers_the_evidence_through_it(api, logged):
    assert not [w for w in logged["warnings"] if "is not registered" in w], logged["warnings"]
    ((actor, payload),) = _registrations(api, logged["run_id"])
    assert actor == "eve"  # the authenticated user, recorded by the server
    assert payload["model_sha256"] and payload["model_problem"] is None
    assert payload["model_uri"].startswith("models:/m-")
    summary = api.call(
        "GET", "get-artifact", "eve", params={"run_uuid": logged["run_id"], "path": "hitl/summary.json"}
    )
    assert summary.status_code == 200, summary.text
    assert payload["fingerprints"] == json.loads(summary.content)["details"]["fingerprints"]
    assert payload["summary_sha256"] == sha256_hex(summary.content)


def test_sign_off_gate_and_promotion_go_through_the_server(api, logged, monkeypatch):
    name, run_id = logged["model"], logged["run_id"]
    assert "evidence.registered" not in {n for n, r in _decision(api, name).items() if not r["met"]}
    dana = _user(api, "fairness-reviewer")
    _client_of(monkeypatch, api, *dana)
    HttpReviewStore(api.url).sign_off(run_id=run_id, check="fairness", user="ignored", approve=True)
    unmet = {n: r["detail"] for n, r in _decision(api, name).items() if not r["met"]}
    assert unmet == {}, unmet
    refused = api.post(ALIAS, {"name": name, "alias": "champion", "version": "1"}, "eve")  # the author
    assert refused.status_code == 403, refused.text
    promoted = api.post(ALIAS, {"name": name, "alias": "champion", "version": "1"}, "rita")
    assert promoted.status_code == 200, promoted.text
    assert api.alias_version(name, "champion") == "1"


def test_evidence_changed_after_registration_blocks_the_gate(api, logged, monkeypatch, tmp_path):
    name, run_id = logged["model"], logged["run_id"]
    _client_of(monkeypatch, api, "eve", None)
    report = tmp_path / "report.html"
    report.write_text("<p>all good</p>")
    mlflow.MlflowClient().log_artifact(run_id, str(report), artifact_path="hitl")  # eve's own run
    unmet = {n: r["detail"] for n, r in _decision(api, name).items() if not r["met"]}
    assert "evidence changed after registration" in unmet["evidence.registered"], unmet
    refused = api.post(ALIAS, {"name": name, "alias": "champion", "version": "1"}, "rita")
    assert refused.status_code == 403 and "evidence changed after registration" in refused.text
    # Registering the tampered files again is refused: they no longer match their own manifest.
    with pytest.raises(
        InputError, match=r"hitl/ files do not match its summary.json: hitl/report.html was altered"
    ):
        HttpReviewStore(api.url).register_evidence(run_id, model_uri=None)
    assert len(_registrations(api, run_id)) == 1


def test_only_who_may_edit_the_run_registers_and_never_with_its_own_digests(api, logged, monkeypatch):
    run_id = logged["run_id"]
    reader = _user(api)
    got = api.call("GET", "api/2.0/mlflow/runs/get", "admin", params={"run_id": run_id})
    experiment_id = got.json()["run"]["info"]["experiment_id"]
    granted = api.post(
        "api/3.0/mlflow/users/permissions/grant",
        {
            "username": reader[0],
            "resource_type": "experiment",
            "resource_id": experiment_id,
            "permission": "DENY",
        },
        "admin",
    )
    assert granted.status_code == 200, granted.text
    logged_metric = requests.post(
        f"{api.url}/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run_id, "key": "k", "value": 1.0, "timestamp": 0},
        auth=reader,
        timeout=60,
    )
    assert logged_metric.status_code == 403  # the rule is MLflow's own: who may not log to the run
    _client_of(monkeypatch, api, *reader)
    with pytest.raises(
        PermissionDeniedError, match=f"{reader[0]} cannot register the evidence of run {run_id}"
    ):
        HttpReviewStore(api.url).register_evidence(run_id, model_uri=None)
    refusals = api.store.audit_events(subject=f"run:{run_id}", action="api.refused")
    assert reader[0] in set(refusals["actor"])
    # Digests are the server's to compute: a body carrying one is refused outright.
    forged = api.post(REGISTER, {"run_id": run_id, "summary_sha256": "0" * 64}, "eve")
    assert forged.status_code == 400 and "does not take 'summary_sha256'" in forged.text
    assert len(_registrations(api, run_id)) == 1


@pytest.mark.parametrize(
    ("model_uri", "problem"),
    [
        ("/etc", "is not a model of run"),
        ("file:///etc", "is not a model of run"),
        ("runs:/another-run/model", "is not a model of run"),
        ("runs:/{run_id}/../../x", "is not a model of run"),
        ("models:/m-0123456789abcdef", "cannot be found"),
        ("models:/{other_model}", "is not a model of run"),
        ("models:/{model_id}", None),
        ("runs:/{run_id}/model", None),
        ("models:/{name}/1", None),  # a version of the run's own model
        ("models:/{name}/2", "is not a model of run"),  # names the run, serves another run's model
    ],
)
def test_the_server_reads_only_models_of_the_run_itself(tracking_uri, arrests_model, model_uri, problem):
    """What ``evidence/register`` hashes for a client-named model: never a path on the server's disk."""
    with mlflow.start_run() as other:
        other_model = log_sklearn_model(arrests_model).model_id
    with mlflow.start_run() as run:
        model_id = log_sklearn_model(arrests_model).model_id
    client, name = mlflow.MlflowClient(), "fraud"
    client.create_registered_model(name)
    for source in (model_id, other_model):
        client.create_model_version(name, f"models:/{source}", run_id=run.info.run_id, model_id=source)
    uri = model_uri.format(run_id=run.info.run_id, model_id=model_id, other_model=other_model, name=name)
    location, why = model_location(client, uri, run.info.run_id)
    if problem is None:
        assert why is None and model_digest_at(location) == model_digest_at(f"models:/{model_id}")
    else:
        assert location is None and problem in why
    assert other.info.run_id != run.info.run_id
