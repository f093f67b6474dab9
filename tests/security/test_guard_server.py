"""The request side of issue 7, attacked through a real ``mlflow server --app-name hitl`` with basic auth.

One test per attack class, as the non-admin engineer ``eve`` (MANAGE on every model) and as MLflow's
admin. The gate never passes here (no evidence is logged): a protected alias or stage that gets set
is a way around it.
"""

import json

import pytest

from mlflow_hitl.adapter.identity import recorded_creator

from .conftest import BACKENDS, GOLD_POLICY, OPEN_POLICY, refused

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

ALIAS = "api/2.0/mlflow/registered-models/alias"


@pytest.mark.parametrize("user", ["eve", "admin"])
def test_exemptions_rest_on_what_the_server_recorded_at_creation(api, user):
    """Class 1: the prompt tag cannot be switched on, and a prompt with a policy or a run is gated."""
    name = api.model(user)  # a normal model, without a stored policy: the strict default protects champion
    for route, body, method in (
        (
            "registered-models/set-tag",
            {"name": name, "key": "mlflow.prompt.is_prompt", "value": "true"},
            "POST",
        ),
        (
            "model-versions/set-tag",
            {"name": name, "version": "1", "key": "mlflow.prompt.is_prompt", "value": "true"},
            "POST",
        ),
        ("registered-models/delete-tag", {"name": name, "key": "mlflow.prompt.is_prompt"}, "DELETE"),
        (
            "registered-models/set-tag",
            {"name": name, "key": " MLflow.Prompt.IS_PROMPT", "value": "true"},
            "POST",
        ),
    ):
        refused(api.call(method, f"api/2.0/mlflow/{route}", user, json=body), "tag.prompt_flag")
    refused(api.post(ALIAS, {"name": name, "alias": "champion", "version": "1"}, user))
    assert api.alias_version(name, "champion") is None

    # Created as a prompt, but its version has a run: not exempt.
    prompt_with_run = api.model(user, tags={"mlflow.prompt.is_prompt": "true"})
    refused(api.post(ALIAS, {"name": prompt_with_run, "alias": "champion", "version": "1"}, user))

    # A real prompt (created with the flag, a placeholder source, no run): exempt, and the change audited.
    prompt = api.fresh_name("prompt")
    tags = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    assert (
        api.post("api/2.0/mlflow/registered-models/create", {"name": prompt, "tags": tags}, user).status_code
        == 200
    )
    made = api.post(
        "api/2.0/mlflow/model-versions/create",
        {
            "name": prompt,
            "source": "dummy-source",
            "tags": tags + [{"key": "mlflow.prompt.text", "value": "Hi"}],
        },
        user,
    )
    assert made.status_code == 200, made.text
    assert api.post(ALIAS, {"name": prompt, "alias": "champion", "version": "1"}, user).status_code == 200
    exempt = api.events("guard.exempt", f"model:{prompt}")
    assert list(exempt["actor"]) == [user]
    # Once it has a policy, it is a gated model like any other.
    api.set_policy(prompt, GOLD_POLICY)
    refused(api.post(ALIAS, {"name": prompt, "alias": "gold", "version": "1"}, user))
    assert api.alias_version(prompt, "gold") is None


@pytest.mark.parametrize("user", ["eve", "admin"])
def test_hitl_tags_are_refused_on_every_route_that_writes_tags(api, user):
    """Class 7: at creation of a model or a version, and on every tag route, in any case or padding."""
    name = api.model(user)
    forged = [{"key": "hitl.gate.alias.champion", "value": '{"passed": true}'}]
    new = api.fresh_name()
    refused(
        api.post("api/2.0/mlflow/registered-models/create", {"name": new, "tags": forged}, user), "tag.hitl"
    )
    assert (
        api.call("GET", "api/2.0/mlflow/registered-models/get", "admin", params={"name": new}).status_code
        == 404
    )
    refused(api.version(name, user, tags={"HITL.gate.alias.champion": "{}"}), "tag.hitl")
    for method, route, body in (
        (
            "POST",
            "model-versions/set-tag",
            {"name": name, "version": "1", "key": " hitl.gate.x", "value": "1"},
        ),
        (
            "DELETE",
            "model-versions/delete-tag",
            {"name": name, "version": "1", "key": "hitl.gate.alias.champion"},
        ),
        ("POST", "registered-models/set-tag", {"name": name, "key": "Hitl.policy_hash", "value": "x"}),
        ("DELETE", "registered-models/delete-tag", {"name": name, "key": "hitl.policy_hash"}),
        ("POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "hitl.x", "value": "1"}),
    ):
        refused(api.call(method, f"ajax-api/2.0/mlflow/{route}", user, json=body), "tag.hitl")
    assert not [k for k in api.tags(name, "1") if k.lower().strip().startswith("hitl.")]
    assert set(api.events("guard.refused", f"model:{name}")["actor"]) == {user}


def test_taking_a_protected_alias_or_stage_away_needs_the_release_role(api):
    """Class 9: deleting a protected alias (any case), a version or model holding one, or leaving a protected stage."""
    name = api.model("eve")
    api.set_policy(name, OPEN_POLICY)  # nothing protected yet: the alias and stage are set freely
    assert api.post(ALIAS, {"name": name, "alias": "champion", "version": "1"}).status_code == 200
    stage = {"name": name, "version": "1", "stage": "Production", "archive_existing_versions": False}
    assert api.post("api/2.0/mlflow/model-versions/transition-stage", stage).status_code == 200
    api.set_policy(name, GOLD_POLICY)
    for user in ("eve", "admin"):  # MLflow's admin holds no review-store role
        for alias in ("champion", "Champion"):
            refused(api.call("DELETE", ALIAS, user, json={"name": name, "alias": alias}), "alias.delete")
        refused(
            api.call(
                "DELETE", "api/2.0/mlflow/model-versions/delete", user, json={"name": name, "version": "1"}
            ),
            "version.delete",
        )
        refused(
            api.call("DELETE", "api/2.0/mlflow/registered-models/delete", user, json={"name": name}),
            "model.delete",
        )
        archive = {**stage, "stage": "archived"}
        refused(api.post("api/2.0/mlflow/model-versions/transition-stage", archive, user), "stage.leave")
    assert api.alias_version(name, "champion") == "1"
    refusals = api.events("guard.refused", f"model:{name}")
    assert {"eve", "admin"} == set(refusals["actor"])
    assert api.call("DELETE", ALIAS, "rita", json={"name": name, "alias": "champion"}).status_code == 200
    assert api.alias_version(name, "champion") is None
    granted = api.events("guard.granted", f"model:{name}")
    assert list(granted["actor"]) == ["rita"]
    assert (
        api.call("DELETE", "api/2.0/mlflow/registered-models/delete", "rita", json={"name": name}).status_code
        == 200
    )
    assert list(api.events("model.deleted", f"model:{name}")["actor"]) == ["rita"]


def test_policies_follow_the_model_through_a_rename(api):
    """Class 6: rename, act under the new name, rename back: the policy went along; only admins move it."""
    name = api.model("eve")
    api.set_policy(name, GOLD_POLICY)
    new = api.fresh_name("renamed")
    rename = "api/2.0/mlflow/registered-models/rename"
    for user in ("eve", "admin"):
        refused(api.post(rename, {"name": name, "new_name": new}, user), "rename.policy")
        refused(
            api.post(rename, {"name": name, "newName": new}, user), "rename.policy"
        )  # the proto's JSON name
    assert api.post(rename, {"name": name, "new_name": new}, "root").status_code == 200
    assert api.store.policy(new)["policy_hash"] == api.store.policy(name)["policy_hash"]
    assert (
        api.tags(new)["hitl.policy_hash"] == api.store.policy(new)["policy_hash"]
    )  # the server's own mirror
    refused(
        api.post(ALIAS, {"name": new, "alias": "gold", "version": "1"})
    )  # gold: protected by its own policy
    assert api.alias_version(new, "gold") is None
    renamed = api.events("model.renamed", f"model:{new}")
    assert list(renamed["actor"]) == ["root"] and json.loads(renamed["payload"].iloc[0])["from"] == name
    assert recorded_creator(api.store, f"model:{new}/1") == "eve"  # the creation records followed it
    assert api.post(rename, {"name": new, "new_name": name}, "root").status_code == 200

    # A model without a policy may not take a name that holds one (it would be judged by that policy).
    plain = api.model("eve")
    refused(api.post(rename, {"name": plain, "new_name": new}, "root"), "rename.policy")


def test_creators_are_recorded_from_authentication(api):
    """Identities: runs, models and versions are recorded with the authenticated user, whatever the body says."""
    made = api.post("api/2.0/mlflow/runs/create", {"experiment_id": "0", "user_id": "rita"}, "eve")
    run_id = made.json()["run"]["info"]["run_id"]
    assert recorded_creator(api.store, f"run:{run_id}") == "eve"
    name = api.model("eve")
    assert recorded_creator(api.store, f"model:{name}") == "eve"
    assert recorded_creator(api.store, f"model:{name}/1") == "eve"
    version = api.store.audit_events(subject=f"model:{name}/1", action="identity.model_version_created")
    payload = json.loads(version["payload"].iloc[-1])
    assert payload["run_id"] and payload["source"].endswith("/model")
    assert recorded_creator(api.store, f"model:{name}/2") is None
    assert recorded_creator(api.store, "run:does-not-exist") is None
