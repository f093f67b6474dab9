"""The security boundary: a real `mlflow server --app-name hitl` subprocess on 127.0.0.1 and a free port
(the session's shared server of each backend).

Every way to set a protected alias or stage, or a hitl.* tag, is tried over raw REST, MlflowClient and
the UI's ajax routes: refused while the gate fails, accepted for aliases once it passes.
"""

import os

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from hitl_support import log_run_with_evidence, unique_name
from mlflow_hitl.review import ReviewStore

ADMIN, PASSWORD = "admin", "Adm1n-pass-word!"
USERS = {"dana": "Dana-pass-word-1", "rita": "Rita-pass-word-1"}
POLICY = """
[protect]
aliases = ["champion"]
stages = ["Production"]
[checks.calibration]
max = { ece = 0.5 }
allow_status = ["passed", "needs_review", "failed"]
[[signoffs]]
check = "fairness"
role = "fairness-reviewer"
count = 1
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, monkeypatch):
    """The session's shared server of each backend, as its admin, with a model name of this test's own."""
    shared = request.getfixturevalue(f"hitl_server_{request.param}")
    shared.users(USERS)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", shared.store_uri)
    for name, value in shared.key_env.items():  # decisions made here verify the server's signed events
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(shared.url)
    mlflow.set_registry_uri(shared.url)
    yield {
        "url": shared.url,
        "store": shared.store(),
        "model": unique_name("fraud"),
        "shared": shared,
    }


@pytest.fixture
def version(server, arrests_model, arrests_split):
    synthetic, real, _ = arrests_split
    mlflow.set_experiment("server-gates")
    run_id = log_run_with_evidence(arrests_model, synthetic, real, input_example=False)
    mlflow.register_model(f"runs:/{run_id}/model", server["model"])
    server["shared"].roles({"dana": ["fairness-reviewer"]})
    from mlflow_hitl.adapter.gate import set_policy

    set_policy(server["store"], server["model"], POLICY, actor="root")
    return run_id


def _post(server, route, body, auth=(ADMIN, PASSWORD)):
    return requests.post(f"{server['url']}/{route}", json=body, auth=auth, timeout=60)


def _attempts(name: str) -> list[tuple[str, dict]]:
    """Every route around the gate, for model ``name``: protected alias and stage, hitl.* tags."""
    return [
        ("api/2.0/mlflow/registered-models/alias", {"name": name, "alias": "champion", "version": "1"}),
        ("ajax-api/2.0/mlflow/registered-models/alias", {"name": name, "alias": "champion", "version": "1"}),
        (
            "api/2.0/mlflow/model-versions/transition-stage",
            {"name": name, "version": "1", "stage": "Production", "archive_existing_versions": False},
        ),
        (
            "ajax-api/2.0/mlflow/model-versions/transition-stage",
            {"name": name, "version": "1", "stage": "Production", "archive_existing_versions": False},
        ),
        (
            "api/2.0/mlflow/model-versions/set-tag",
            {"name": name, "version": "1", "key": "hitl.gate.alias.champion", "value": '{"passed": true}'},
        ),
        (
            "ajax-api/2.0/mlflow/model-versions/set-tag",
            {"name": name, "version": "1", "key": "hitl.x", "value": "1"},
        ),
        (
            "api/2.0/mlflow/registered-models/set-tag",
            {"name": name, "key": "hitl.policy_hash", "value": "forged"},
        ),
        (
            "ajax-api/2.0/mlflow/registered-models/set-tag",
            {"name": name, "key": "hitl.policy_hash", "value": "x"},
        ),
    ]


def test_every_route_around_the_gate_is_refused_until_it_passes(server, version):
    name = server["model"]
    ATTEMPTS = _attempts(name)
    for route, body in ATTEMPTS:
        response = _post(server, route, body)
        assert response.status_code == 403, (route, response.text)
        assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "signoff.fairness" in _post(server, *ATTEMPTS[0]).json()["message"]
    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException, match="signoff.fairness") as refused:
        client.set_registered_model_alias(name, "champion", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert (
        requests.post(f"{server['url']}/{ATTEMPTS[0][0]}", json=ATTEMPTS[0][1], timeout=30).status_code == 401
    )

    prompt = mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}")
    mlflow.genai.set_prompt_alias(
        "greeting", alias="champion", version=prompt.version
    )  # prompts are not gated
    client.set_registered_model_alias(name, "staging-candidate", "1")  # not protected
    client.set_model_version_tag(name, "1", "owner", "risk-team")  # not a hitl.* tag
    refusals = server["store"].audit_events(subject=f"model:{name}", action="promotion.refused")
    assert len(refusals) >= 3 and set(refusals["actor"]) == {ADMIN}  # the authenticated user

    # The sign-off goes through the server, as the authenticated user: the body names no user.
    assert (
        _post(
            server,
            "hitl/api/signoffs/create",
            {"run_id": version, "check": "fairness", "approve": True},
            auth=None,
        ).status_code
        == 401
    )
    denied = _post(
        server,
        "hitl/api/signoffs/create",
        {"run_id": version, "check": "fairness", "approve": True},
        auth=("rita", "Rita-pass-word-1"),
    )
    assert denied.status_code == 403 and "needs the 'fairness-reviewer' role" in denied.json()["message"]
    signed = _post(
        server,
        "hitl/api/signoffs/create",
        {"run_id": version, "check": "fairness", "approve": True, "note": "checked"},
        auth=("dana", "Dana-pass-word-1"),
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["signoff"]["user"] == "dana"
    role = _post(
        server,
        "hitl/api/roles/grant",
        {"user": "rita", "role": "release-manager"},
        auth=("dana", "Dana-pass-word-1"),
    )
    assert role.status_code == 403  # dana is no admin
    # The run was logged as admin, its author: separation of duties leaves promotion to someone else.
    with pytest.raises(MlflowException, match="duties.promoter"):
        client.set_registered_model_alias(name, "champion", "1")
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = (
        "rita",
        "Rita-pass-word-1",
    )
    client.set_registered_model_alias(name, "champion", "1")
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    rita = ("rita", "Rita-pass-word-1")
    assert _post(server, *ATTEMPTS[2], auth=rita).status_code == 200  # the stage, too, once the gate passes
    granted = server["store"].audit_events(subject=f"model:{name}", action="promotion.granted")
    assert set(granted["actor"]) == {"rita"}
    for route, body in ATTEMPTS[4:]:
        assert _post(server, route, body).status_code == 403  # hitl.* tags stay the server's own


def test_a_server_without_an_audit_key_keys_its_chain_and_says_where_the_key_is(hitl_server_sqlite):
    log = (hitl_server_sqlite.folder / "server.log").read_text()
    key_file = hitl_server_sqlite.key_env["MLFLOW_HITL_AUDIT_KEY_FILE"]
    assert f"the audit key is {key_file}: back it up" in log
    assert "choose your own with MLFLOW_HITL_AUDIT_KEY or MLFLOW_HITL_AUDIT_KEY_FILE" in log
    assert "no audit key" not in log


def test_a_fresh_server_walks_its_audit_chain_at_start_for_the_requests_to_share(tmp_path):
    """The whole chain is walked in the background as the server starts; a request then walks only the rest."""
    import time

    from hitl_support import shared_server

    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    store = ReviewStore(store_uri)
    for n in range(300):
        store.record_event(actor="ann", action="note.add", subject=f"note:{n}", payload={"n": n})
    # A loaded machine: the session's servers share it, so this one may take long to start.
    with shared_server(
        "sqlite", tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", store_uri, timeout=300
    ) as own:
        url = own.url

        def get(route, **params):
            answer = requests.get(f"{url}/hitl/api/{route}", params=params, auth=own.admin, timeout=60)
            assert answer.status_code == 200, answer.text
            return answer.json()

        deadline = time.monotonic() + 120
        status = get("audit/status")
        while status["start_walk"]["state"] == "walking" and time.monotonic() < deadline:
            time.sleep(0.2)
            status = get("audit/status")
        walk = status["start_walk"]
        assert walk["state"] == "verified", walk
        assert (walk["head_seq"], walk["n_events"], status["head"]["seq"]) == (300, 300, 300)
        assert walk["seconds"] >= 0
        # The start-up walk is the requests' own: the next verification walks from its head only.
        later = get("audit/verify", incremental="true")["verification"]
        assert later["ok"] and (later["walked_from"], later["n_events"]) == (300, 1)
