"""Ways around the guard found by attacking the server, each now refused, on SQLite and PostgreSQL.

A "prompt" whose version serves model files, aliases that pass for protected ones, and MLflow routes
that write the registry in the server's own process: as the engineer ``eve`` (MANAGE on every
model) and as MLflow's admin. The gate never passes here (no evidence is logged).
"""

import json

import pytest

from mlflow_hitl.adapter.routes import INDIRECT

from .conftest import BACKENDS, refused

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

ALIAS = "api/2.0/mlflow/registered-models/alias"
PROMPT = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
# The source MLflow's client gives prompt versions (mlflow.prompt.constants): a prompt serves no model files.
PROMPT_SOURCE = "dummy-source"


def _prompt(api, user, source):
    name = api.fresh_name("prompt")
    made = api.post("api/2.0/mlflow/registered-models/create", {"name": name, "tags": PROMPT}, user)
    assert made.status_code == 200, made.text
    tags = PROMPT + [{"key": "mlflow.prompt.text", "value": "Hi"}] if source == PROMPT_SOURCE else []
    version = api.post(
        "api/2.0/mlflow/model-versions/create", {"name": name, "source": source, "tags": tags}, user
    )
    assert version.status_code == 200, version.text
    return name


@pytest.mark.parametrize("user", ["eve", "admin"])
def test_a_prompt_whose_version_serves_model_files_is_gated(api, user):
    """Created with the prompt flag, no run, but a model's files as source: a model, not a prompt."""
    for source in ("s3://bucket/model", "gs://bucket/model"):
        name = _prompt(api, user, source)
        refused(api.post(ALIAS, {"name": name, "alias": "champion", "version": "1"}, user))
        stage = {"name": name, "version": "1", "stage": "Production", "archive_existing_versions": True}
        refused(api.post("api/2.0/mlflow/model-versions/transition-stage", stage, user))
        assert api.alias_version(name, "champion") is None
        assert api.events("guard.exempt", f"model:{name}").empty
        refusals = api.events("promotion.refused", f"model:{name}")
        assert {json.loads(p)["target"] for p in refusals["payload"]} == {
            "alias:champion",
            "stage:Production",
        }
    # A real prompt version (MLflow's placeholder source) stays exempt, audited.
    prompt = _prompt(api, user, PROMPT_SOURCE)
    assert api.post(ALIAS, {"name": prompt, "alias": "champion", "version": "1"}, user).status_code == 200
    assert list(api.events("guard.exempt", f"model:{prompt}")["actor"]) == [user]


@pytest.mark.parametrize("user", ["eve", "admin"])
def test_aliases_that_pass_for_protected_ones_are_refused(api, user):
    """Full-width, dotless-i and dotted-capital-I look-alikes are other aliases to MLflow: refused, audited."""
    name = api.model(user)
    for alias in ("ｃhampion", "champıon", "CHAMPİON", "prodｕction"):
        refused(api.post(ALIAS, {"name": name, "alias": alias, "version": "1"}, user), "alias.name")
        assert api.alias_version(name, alias) is None
    rules = [json.loads(p)["rule"] for p in api.events("guard.refused", f"model:{name}")["payload"]]
    assert rules == ["alias.name"] * 4
    # A plain alias nobody protects is still set freely.
    assert api.post(ALIAS, {"name": name, "alias": "candidate", "version": "1"}, user).status_code == 200


def test_the_ui_demo_routes_that_write_the_registry_in_process_are_refused(api):
    """MLflow's demo data sets (and deletes) the protected ``production`` alias through its own client."""
    for user in ("eve", "admin"):
        for route in ("ajax-api/3.0/mlflow/demo/generate", "ajax-api/3.0/mlflow/demo/delete"):
            response = api.call("POST", route, user, json={"features": ["prompts"]})
            if (user, route[-6:]) == ("eve", "delete"):  # basic auth itself refuses it to non-admins
                assert response.status_code == 403, response.text
            else:
                refused(response, "route.indirect")
    demo = {"name": "mlflow-demo.prompts.customer-support"}
    assert api.call("GET", "api/2.0/mlflow/registered-models/get", "admin", params=demo).status_code == 404
    audited = api.events("guard.refused", "route:/ajax-api/3.0/mlflow/demo")
    assert {"eve", "admin"} <= set(audited["actor"])


def test_every_indirect_writer_is_an_mlflow_route():
    """The refused handlers exist under these names in the installed MLflow (a rename would unguard them)."""
    from mlflow.server.handlers import get_endpoints

    names = {
        handler.__name__
        for _, handler, _ in get_endpoints()
        if handler.__module__ == "mlflow.server.handlers"
    }
    assert names >= INDIRECT, INDIRECT - names
