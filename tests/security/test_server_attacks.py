"""The second attack on the server: ways around found, each now refused, on SQLite and PostgreSQL.

As the engineer ``eve`` (MANAGE on every model and run, no review-store role), through the real server
only: the artifact proxy, ``/hitl/api/`` and MLflow's registry routes.
"""

import json
from urllib.parse import quote

import pytest

from .conftest import BACKENDS, refused

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

REGISTER = "hitl/api/evidence/register"


def _upload(api, run: dict, path: str, text: str, user: str = "eve") -> None:
    """Write one file into ``run``'s artifacts through the server's artifact proxy."""
    folder = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    put = api.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{folder}/{path}", user, data=text)
    assert put.status_code == 200, put.text


# ``..`` spelled so that the run id stays the first segment: the artifact store decodes it after the check.
TRAVERSALS = [
    "runs:/{run}/%2e%2e/%2e%2e/{other}/artifacts/model",
    "runs:/{run}/%2E%2E/%2E%2E/{other}/artifacts/model",
    "runs:/{run}/%252e%252e/%252e%252e/{other}/artifacts/model",
    "runs:/{run}/.%2e/%2e./{other}/artifacts/model",
    "runs:/{run}/..%2f..%2f{other}%2fartifacts%2fmodel",
    "runs:/{run}/model/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/proc/self",
]


def test_evidence_registration_never_hashes_files_outside_the_run(api):
    """A percent-encoded ``..`` in the evaluated model's URI would have the server hash another run's
    model (then recorded as what the run evaluated) or any folder on its disk; it is refused."""
    mine, other = api.run("eve"), api.run("admin")
    _upload(api, mine, "hitl/summary.json", json.dumps({"manifest": {}, "details": {}}))
    _upload(api, other, "model/MLmodel", "flavors: {}\n", "admin")
    for uri in TRAVERSALS:
        model_uri = uri.format(run=mine["run_id"], other=other["run_id"])
        answer = api.post(REGISTER, {"run_id": mine["run_id"], "model_uri": model_uri})
        assert answer.status_code == 200, answer.text  # registered, with no evaluated model on record
        registration = answer.json()["registration"]
        assert registration["model_sha256"] is None, model_uri
        assert "is not a model of run" in registration["model_problem"], registration
    # The run's own model is still hashed.
    _upload(api, mine, "model/MLmodel", "flavors: {}\n")
    own = api.post(REGISTER, {"run_id": mine["run_id"], "model_uri": f"runs:/{mine['run_id']}/model"})
    assert own.json()["registration"]["model_sha256"], own.text


def _champion_held(request, backend_kind, api, name: str) -> None:
    """``name`` version 1 holds the champion after a promotion that passed (a default-policy pass takes
    evidence of all five checks: it is written beside the server, as the promotion would have left it)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    api.store.record_event(
        actor="rita",
        action="promotion.granted",
        subject=f"model:{name}/1",
        payload={"target": "alias:champion", "passed": True},
    )
    backend = request.getfixturevalue(f"hitl_server_{backend_kind}").backend
    SqlAlchemyStore(backend).set_registered_model_alias(name, "champion", "1")


@pytest.mark.parametrize("take_away", ["alias", "model"])
def test_a_renamed_model_created_as_a_prompt_keeps_its_champion(api, request, backend_kind, take_away):
    """Created with the prompt flag, its version serving model files and holding the champion: a rename
    left the model without its gate history under the new name, and its owner could then delete the
    protected alias, or the whole model, without the release role."""
    name = api.model("eve", tags={"mlflow.prompt.is_prompt": "true"})
    _champion_held(request, backend_kind, api, name)
    renamed = f"{name}-renamed"
    moved = api.post("api/2.0/mlflow/registered-models/rename", {"name": name, "new_name": renamed})
    assert moved.status_code == 200, moved.text  # no policy either side: a rename anyone may make
    if take_away == "alias":
        gone = api.call(
            "DELETE", "api/2.0/mlflow/registered-models/alias", json={"name": renamed, "alias": "champion"}
        )
        refused(gone, "alias.delete")
    else:
        gone = api.call("DELETE", "api/2.0/mlflow/registered-models/delete", json={"name": renamed})
        refused(gone, "model.delete")
    assert api.alias_version(renamed, "champion") == "1"
    assert api.events("guard.exempt", f"model:{renamed}").empty
    # The release role may.
    assert (
        api.call(
            "DELETE",
            "api/2.0/mlflow/registered-models/alias",
            "rita",
            json={"name": renamed, "alias": "champion"},
        ).status_code
        == 200
    )


@pytest.mark.parametrize("suffix", [";x", "?x"])
def test_the_gate_hashes_the_folder_mlflow_serves_for_a_local_source(api, request, backend_kind, suffix):
    """A run in an experiment whose artifact location is a path on the server (here under the artifact
    destination, so the proxy writes there) registers ``model/``; a version's source names
    ``model;x/``, another model: the gate read ``;x`` (``?x``) as a URL's and hashed ``model/``,
    while MLflow serves ``model;x/``."""
    destination = request.getfixturevalue(f"hitl_server_{backend_kind}").folder / "artifacts"
    made = api.post(
        "api/2.0/mlflow/experiments/create",
        {"name": api.fresh_name("local"), "artifact_location": str(destination / api.fresh_name("local"))},
    )
    assert made.status_code == 200, made.text
    created = api.post("api/2.0/mlflow/runs/create", {"experiment_id": made.json()["experiment_id"]})
    run = created.json()["run"]["info"]
    proxied = {**run, "artifact_uri": "mlflow-artifacts:/" + run["artifact_uri"][len(str(destination)) + 1 :]}
    quoted = quote(suffix, safe="")
    _upload(api, proxied, "model/MLmodel", "flavors: {evaluated: {}}\n")
    _upload(api, proxied, f"model{quoted}/MLmodel", "flavors: {other: {}}\n")
    _upload(api, proxied, "hitl/summary.json", json.dumps({"manifest": {}, "details": {}}))
    own = api.post(REGISTER, {"run_id": run["run_id"], "model_uri": f"runs:/{run['run_id']}/model"})
    assert own.json()["registration"]["model_sha256"], own.text
    name = api.fresh_name()
    assert api.post("api/2.0/mlflow/registered-models/create", {"name": name}).status_code == 200
    source = f"{run['artifact_uri']}/model{suffix}"
    version = api.post(
        "api/2.0/mlflow/model-versions/create", {"name": name, "source": source, "run_id": run["run_id"]}
    )
    assert version.status_code == 200, version.text
    served = api.call(
        "GET", "api/2.0/mlflow/model-versions/get-download-uri", params={"name": name, "version": "1"}
    )
    assert served.json()["artifact_uri"] == source  # MLflow reads the folder model{suffix}
    decision = api.call(
        "GET", "hitl/api/gate/decision", params={"model": name, "version": "1", "target": "alias:champion"}
    )
    model = {r["name"]: r for r in decision.json()["decision"]["requirements"]}["evidence.model"]
    assert not model["met"] and "model files differ from the evaluated model" in model["detail"], model


ALIAS = "api/2.0/mlflow/registered-models/alias"
# (method, route suffix, body or raw text, headers): none may set the champion of a version that fails.
SHAPES = [
    *(
        ("POST", "", {"version": v}, {})
        for v in ("1e0", "1.0", "0x1", "１", "1_0", "\t1", 1, 1.0, True, [1], -1)
    ),
    *(("POST", "", {"alias": a}, {}) for a in ("champion\n", " champion", "champ%69on", "champion\x00")),
    ("POST", "", "text", {"Content-Type": "text/plain"}),
    ("POST", "", "text", {"Content-Type": "application/json-patch+json"}),
    ("POST", ";x", "text", {"Content-Type": "application/json"}),
    *((m, "", "text", {"Content-Type": "application/json"}) for m in ("PUT", "PATCH", "OPTIONS", "HEAD")),
    *(
        ("GET", "", "text", {"Content-Type": "application/json", h: "POST"})
        for h in ("X-HTTP-Method-Override", "X-HTTP-Method")
    ),
]


def test_other_request_shapes_never_set_a_protected_alias(api):
    """Version and alias spellings, content types, methods and override headers, a ``;`` path parameter,
    and a body whose length two headers disagree on: refused, or not a request MLflow acts on."""
    import socket
    from base64 import b64encode
    from urllib.parse import urlparse

    from .conftest import PASSWORDS

    name = api.model("eve")
    fields = {"name": name, "alias": "champion", "version": "1"}
    for method, suffix, body, headers in SHAPES:
        if isinstance(body, dict):
            answer = api.call(method, ALIAS + suffix, json={**fields, **body})
        else:
            answer = api.call(method, ALIAS + suffix, data=json.dumps(fields), headers=headers)
        assert answer.status_code != 200, (method, suffix, body, headers, answer.text)
    # Transfer-Encoding and Content-Length together (a short decoy length, the real body chunked).
    url, payload = urlparse(api.url), json.dumps(fields).encode()
    credentials = b64encode(f"eve:{PASSWORDS['eve']}".encode()).decode()
    head = (
        f"POST /{ALIAS} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Basic {credentials}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head.encode() + f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n")
        status = sock.recv(4096).split(b"\r\n", 1)[0]
    assert b" 200 " not in status, status
    for alias in ("champion", "Champion"):
        assert api.alias_version(name, alias) is None
