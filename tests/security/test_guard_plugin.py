"""The same rules in the ``hitl+`` registry plugin (local mode), with the acting OS user as actor."""

import json

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlflow_hitl.adapter.identity import recorded_creator
from mlflow_hitl.review import ReviewStore

from .conftest import GOLD_POLICY, OPEN_POLICY

pytestmark = pytest.mark.security


@pytest.fixture
def local(tracking_uri, tmp_path, monkeypatch):
    """A ``hitl+`` registry client acting as eve, a review store, and a model with one version made through it."""
    from mlflow_hitl.gate import parse_policy, policy_hash

    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)
    monkeypatch.setenv("MLFLOW_HITL_USER", "eve")
    store = ReviewStore(store_uri)
    store.grant_role("root", "admin", actor="root")
    store.grant_role("rita", "release-manager", actor="root")
    client = mlflow.MlflowClient(registry_uri="hitl+" + tracking_uri)
    with mlflow.start_run() as run:
        pass
    client.create_registered_model("fraud")
    client.create_model_version("fraud", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)

    def set_policy(name, text):
        store.set_policy(name, policy=text, policy_hash=policy_hash(parse_policy(text)), actor="root")

    return {"client": client, "store": store, "set_policy": set_policy, "uri": "hitl+" + tracking_uri}


def _refused(call, rule):
    with pytest.raises(MlflowException, match=f"rule {rule}") as refused:
        call()
    assert refused.value.error_code == "PERMISSION_DENIED"


def test_the_plugin_applies_the_server_rules(local, monkeypatch):
    client, store = local["client"], local["store"]
    assert recorded_creator(store, "model:fraud/1") == "eve"  # the acting user, recorded by the plugin
    _refused(lambda: client.create_registered_model("x", tags={"HITL.gate.alias.champion": "{}"}), "tag.hitl")
    _refused(
        lambda: client.create_model_version("fraud", "s3://b/m", tags={"hitl.policy_hash": "x"}), "tag.hitl"
    )
    _refused(
        lambda: client.set_registered_model_tag("fraud", "mlflow.prompt.is_prompt", "true"), "tag.prompt_flag"
    )
    with pytest.raises(MlflowException, match="Champion|champion.*blocked"):
        client.set_registered_model_alias("fraud", "Champion", "1")  # the strict default policy, any case

    local["set_policy"]("fraud", OPEN_POLICY)
    client.set_registered_model_alias("fraud", "champion", "1")
    local["set_policy"]("fraud", GOLD_POLICY)
    _refused(lambda: client.delete_registered_model_alias("fraud", "CHAMPION"), "alias.delete")
    _refused(lambda: client.delete_model_version("fraud", "1"), "version.delete")
    _refused(lambda: client.rename_registered_model("fraud", "fraud2"), "rename.policy")
    assert set(store.audit_events(action="guard.refused")["actor"]) == {"eve"}

    monkeypatch.setenv("MLFLOW_HITL_USER", "root")
    client.rename_registered_model("fraud", "fraud2")
    assert store.policy("fraud2")["policy_hash"] == store.policy("fraud")["policy_hash"]
    assert recorded_creator(store, "model:fraud2/1") == "eve"
    monkeypatch.setenv("MLFLOW_HITL_USER", "rita")
    client.delete_registered_model_alias("fraud2", "champion")
    granted = store.audit_events(action="guard.granted", subject="model:fraud2")
    assert list(granted["actor"]) == ["rita"]
    assert json.loads(granted["payload"].iloc[0])["role"] == "release-manager"


def test_prompts_are_exempt_only_as_created(local):
    client, store = local["client"], local["store"]
    mlflow.set_registry_uri(local["uri"])
    prompt = mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}")
    mlflow.genai.set_prompt_alias("greeting", alias="champion", version=prompt.version)
    assert list(store.audit_events(action="guard.exempt", subject="model:greeting")["actor"]) == ["eve"]
    # The prompt flag cannot be given to a model later, and a version tag does not make it a prompt.
    _refused(
        lambda: client.set_model_version_tag("fraud", "1", "mlflow.prompt.is_prompt", "true"),
        "tag.prompt_flag",
    )
    with pytest.raises(MlflowException, match="blocked"):
        client.set_registered_model_alias("fraud", "champion", "1")
    # Nor is a prompt with a stored policy exempt.
    local["set_policy"]("greeting", GOLD_POLICY)
    with pytest.raises(MlflowException, match="blocked|rule gate.unavailable"):
        mlflow.genai.set_prompt_alias("greeting", alias="gold", version=prompt.version)
