"""Registry gates on a real MLflow SQLite store: policy, gate check, promotion, the registry-store plugin."""

import json
from pathlib import Path

import mlflow
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow.exceptions import MlflowException

import mlflow_hitl
from conftest import ARRESTS_SENSITIVE, ARRESTS_TARGET, LENIENT_POLICY, log_run_with_evidence
from mlflow_hitl.cli import cli
from mlflow_hitl.review import ReviewStore


@pytest.fixture
def registered(tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch):
    """Version 1 of 'arrests' with its HITL evidence, a review store, and a CLI bound to both."""
    synthetic, real, _ = arrests_split
    run_id = log_run_with_evidence(arrests_model, synthetic, real)
    mlflow.register_model(f"runs:/{run_id}/model", "arrests")
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)
    store = ReviewStore(store_uri)
    store.grant_role("root-admin", "admin", actor="root-admin")
    store.grant_role("dana", "fairness-reviewer", actor="root-admin")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(LENIENT_POLICY)

    def invoke(*args, user="rita"):
        return CliRunner().invoke(
            cli,
            ["--tracking-uri", tracking_uri, *args],
            env={"MLFLOW_HITL_USER": user, "MLFLOW_HITL_STORE_URI": store_uri},
        )

    author = mlflow.MlflowClient().get_run(run_id).info.user_id
    return {
        "run_id": run_id,
        "store": store,
        "invoke": invoke,
        "policy": policy_file,
        "author": author,
        "tracking_uri": tracking_uri,
        "model": arrests_model,
        "data": arrests_split,
    }


def unmet(result):
    return {r["name"] for r in json.loads(result.stdout)["requirements"] if not r["met"]}


def test_the_default_policy_blocks_and_lists_what_is_missing(registered):
    result = registered["invoke"](
        "gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json"
    )
    assert result.exit_code == 1, result.output
    missing = unmet(result)
    assert "signoff.fairness" in missing
    assert any(name.startswith("check.") for name in missing)


def test_blocked_then_signed_off_then_promoted(registered):
    invoke = registered["invoke"]
    assert invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin").exit_code == 0
    refused = invoke("gate", "promote", "arrests", "1", "--alias", "champion", "--format", "json")
    assert refused.exit_code == 1
    assert unmet(refused) == {"signoff.fairness"}
    with pytest.raises(MlflowException):
        mlflow.MlflowClient().get_model_version_by_alias("arrests", "champion")

    registered["store"].sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    check = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert check.exit_code == 0, check.output
    decision = json.loads(check.stdout)
    assert decision["passed"] is True and decision["evidence"]["run_id"] == registered["run_id"]

    promoted = invoke("gate", "promote", "arrests", "1", "--alias", "champion")
    assert promoted.exit_code == 0, promoted.output
    assert str(mlflow.MlflowClient().get_model_version_by_alias("arrests", "champion").version) == "1"
    tags = mlflow.MlflowClient().get_model_version("arrests", "1").tags
    assert json.loads(tags["hitl.gate.alias.champion"])["passed"] is True
    actions = registered["store"].audit_events(subject="model:arrests")["action"].tolist()
    assert actions == ["policy.set", "promotion.refused", "gate.check", "promotion.granted"]
    assert registered["store"].verify_audit().ok


def test_the_author_cannot_sign_off_or_promote(registered):
    invoke, store, author = registered["invoke"], registered["store"], registered["author"]
    invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    store.grant_role(author, "fairness-reviewer", actor="root-admin")
    store.sign_off(run_id=registered["run_id"], check="fairness", user=author, approve=True)
    assert "signoff.fairness" in unmet(
        invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    )
    store.sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    by_author = invoke(
        "gate", "promote", "arrests", "1", "--alias", "champion", "--format", "json", user=author
    )
    assert by_author.exit_code == 1 and unmet(by_author) == {"duties.promoter"}


def test_tampering_with_evidence_or_the_audit_trail_blocks_again(registered):
    invoke, store = registered["invoke"], registered["store"]
    invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    store.sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    assert invoke("gate", "check", "models:/arrests/1", "--target", "champion").exit_code == 0

    artifact_root = Path(
        mlflow.MlflowClient().get_run(registered["run_id"]).info.artifact_uri.replace("file://", "")
    )
    result_file = artifact_root / "hitl" / "calibration" / "result.json"
    original = result_file.read_text()
    result_file.write_text(original.replace('"status": "failed"', '"status": "passed"') + " ")
    blocked = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert blocked.exit_code == 1 and "evidence.artifacts_intact" in unmet(blocked)
    assert "calibration/result.json" in blocked.stdout
    result_file.write_text(original)

    with sa.create_engine(store.url).begin() as conn:
        conn.execute(sa.text("UPDATE hitl_audit_events SET actor = 'mallory' WHERE seq = 2"))
    blocked = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert blocked.exit_code == 1 and "audit.intact" in unmet(blocked)


def test_a_rewritten_sign_off_is_not_evidence_even_between_full_walks(registered):
    invoke, store = registered["invoke"], registered["store"]
    invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    signoff = store.sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    passed = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert passed.exit_code == 0, passed.output
    assert store.verify_audit().head_seq > signoff["audit_seq"]  # a full walk past the sign-off
    # Someone edits the sign-off's event and hides the edit from the change counter: the gate's next
    # incremental walk starts after it and cannot see it, but the sign-off's own event is re-hashed.
    with sa.create_engine(store.url).begin() as conn:
        changes = conn.execute(sa.text("SELECT changes FROM hitl_chain_head")).scalar_one()
        conn.execute(
            sa.text("UPDATE hitl_audit_events SET time = '2020-01-01T00:00:00.000000Z' WHERE seq = :s"),
            {"s": signoff["audit_seq"]},
        )
        conn.execute(sa.text("UPDATE hitl_chain_head SET changes = :c"), {"c": changes})
    blocked = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert blocked.exit_code == 1 and unmet(blocked) == {"signoff.fairness"}
    requirements = {r["name"]: r["detail"] for r in json.loads(blocked.stdout)["requirements"]}
    assert "walked from seq" in requirements["audit.intact"]
    assert invoke("audit", "verify").exit_code == 1  # a full walk sees the edit at once


def test_the_registry_store_plugin_refuses_plain_mlflow_calls(registered, monkeypatch):
    monkeypatch.setenv("MLFLOW_HITL_USER", "rita")  # the plugin's acting user: not the run's author
    registered["invoke"]("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    client = mlflow.MlflowClient(registry_uri="hitl+" + registered["tracking_uri"])
    with pytest.raises(MlflowException, match="signoff.fairness") as refused:
        client.set_registered_model_alias("arrests", "champion", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|written by mlflow-hitl only"):
        client.set_model_version_tag("arrests", "1", "hitl.gate.alias.champion", '{"passed": true}')
    with pytest.raises(MlflowException, match="written by mlflow-hitl only"):
        client.set_registered_model_tag("arrests", "hitl.policy_hash", "forged")
    with pytest.raises(MlflowException, match="signoff.fairness"):
        client.transition_model_version_stage("arrests", "1", "Production")
    client.set_registered_model_alias("arrests", "candidate", "1")  # not protected
    client.set_model_version_tag("arrests", "1", "team", "fraud")  # not a hitl.* tag
    assert str(client.get_model_version_by_alias("arrests", "candidate").version) == "1"

    registered["store"].sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    client.set_registered_model_alias("arrests", "champion", "1")
    assert str(client.get_model_version_by_alias("arrests", "champion").version) == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["gate", "check", "models:/arrests/9", "--target", "champion"],
            "unknown model version 'arrests' version 9",
        ),
        (["gate", "check", "models:/nope/1", "--target", "champion"], "unknown model version 'nope'"),
        (["gate", "check", "runs:/x/model", "--target", "champion"], "expected models:/<name>/<version>"),
        (["gate", "promote", "arrests", "1"], "give exactly one promotion target"),
        (["policy", "set", "nope", "{policy}"], "unknown registered model 'nope'"),
        (["policy", "set", "arrests", "{bad_policy}"], "line 3"),
        (["policy", "set", "arrests", "missing.toml"], "does not exist"),
    ],
)
def test_bad_input_exits_2(registered, tmp_path, args, message):
    bad = tmp_path / "bad.toml"
    bad.write_text('[protect]\naliases = ["champion"]\nmystery = 1\n')
    args = [a.format(policy=registered["policy"], bad_policy=bad) for a in args]
    result = registered["invoke"](*args, user="root-admin")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_only_admins_set_policies(registered):
    result = registered["invoke"]("policy", "set", "arrests", str(registered["policy"]), user="rita")
    assert result.exit_code == 2 and "needs the 'admin' role" in result.stderr


def test_forged_signoffs_and_relogged_metrics_are_not_evidence(registered):
    invoke, store = registered["invoke"], registered["store"]
    invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    head_seq, head_hash = store.audit_head()
    with sa.create_engine(store.url).begin() as conn:  # a sign-off row with no event of its own in the chain
        conn.execute(
            sa.text(
                "INSERT INTO hitl_signoffs (run_id, check_name, user, role, decision, note, audit_seq, audit_hash,"
                " created_at) VALUES (:run, 'fairness', 'dana', 'fairness-reviewer', 'approve', NULL, :seq, :hash,"
                " '2026-01-01T00:00:00.000000Z')"
            ),
            {"run": registered["run_id"], "seq": head_seq, "hash": head_hash},
        )
    assert store.verify_audit().ok  # the chain itself is untouched...
    result = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert "signoff.fairness" in unmet(result)  # ...but the forged row counts for nothing

    store.sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    mlflow.MlflowClient().log_metric(
        registered["run_id"], "hitl.calibration.ece", 0.9
    )  # re-logged after the fact
    passed = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    assert passed.exit_code == 0  # the gate reads the manifest-pinned result.json, not the run's metrics


def test_lineage_traces_the_version_to_people_and_decisions(registered, tmp_path):
    invoke, store = registered["invoke"], registered["store"]
    invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    store.sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True, note="fine")
    assert invoke("gate", "promote", "arrests", "1", "--alias", "champion").exit_code == 0

    tree = invoke("lineage", "models:/arrests/1")
    assert tree.exit_code == 0, tree.output
    assert (
        "aliases=champion" in tree.stdout and "fairness: approve by dana (fairness-reviewer)" in tree.stdout
    )
    assert "promotion.granted alias:champion by rita: passed" in tree.stdout
    assert "audit chain: intact" in tree.stdout

    assert "validated on real: " in tree.stdout and "validated on synthetic: " in tree.stdout

    data = json.loads(invoke("lineage", "models:/arrests/1", "--format", "json").stdout)
    assert data["run"]["run_id"] == registered["run_id"] and data["run"]["author"] == registered["author"]
    synthetic, real, _ = registered["data"]
    recomputed = mlflow_hitl.validate(
        registered["model"],
        real=real,
        target=ARRESTS_TARGET,
        synthetic=synthetic,
        sensitive_features=ARRESTS_SENSITIVE,
        checks=["calibration"],
        log=False,
    ).details
    assert data["run"]["validated_on"] == {
        role: {"rows": recomputed["rows"][role], "fingerprint": recomputed["fingerprints"][role]}
        for role in ("real", "synthetic")
    }
    assert data["model"]["policy"]["version"] == 1
    assert [s["in_audit_chain"] for s in data["signoffs"]] == [True]
    assert [g["action"] for g in data["gate_decisions"]] == ["promotion.granted"]

    page = tmp_path / "lineage.html"
    assert invoke("lineage", "models:/arrests/1", "--format", "html", "-o", str(page)).exit_code == 0
    text = page.read_text()
    assert "<h2>Sign-offs</h2>" in text and text.count("data:image/png;base64,") >= 2

    artifact_root = Path(
        mlflow.MlflowClient().get_run(registered["run_id"]).info.artifact_uri.replace("file://", "")
    )
    (artifact_root / "hitl" / "calibration" / "reliability.png").unlink()
    missing_plot = invoke("lineage", "models:/arrests/1", "--format", "json")
    assert missing_plot.exit_code == 1 and "Traceback" not in missing_plot.output
    assert any(
        "calibration/reliability.png" in p for p in json.loads(missing_plot.stdout)["evidence_problems"]
    )

    with sa.create_engine(store.url).begin() as conn:
        conn.execute(sa.text("DELETE FROM hitl_audit_events WHERE seq = 3"))
    broken = invoke("lineage", "models:/arrests/1")
    assert broken.exit_code == 1 and "audit chain: BROKEN at event 3" in broken.stdout


def test_prompts_share_the_alias_api_and_are_not_gated(tracking_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", f"sqlite:///{tmp_path / 'hitl.db'}")
    mlflow.set_registry_uri("hitl+" + tracking_uri)
    prompt = mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}")
    # "champion" is a protected alias by default; prompts must still be able to take it.
    mlflow.genai.set_prompt_alias("greeting", alias="champion", version=prompt.version)
    assert mlflow.genai.load_prompt("prompts:/greeting@champion").version == prompt.version


def test_the_version_page_reads_the_verdict_with_its_reasons_and_the_release_page(registered):
    invoke = registered["invoke"]
    invoke("policy", "set", "arrests", str(registered["policy"]), user="root-admin")
    assert invoke("gate", "promote", "arrests", "1", "--alias", "champion").exit_code == 1
    tags = mlflow.MlflowClient().get_model_version("arrests", "1").tags
    assert json.loads(tags["hitl.gate.alias.champion"])["passed"] is False  # tools read this one
    text = tags["hitl.gate.alias.champion.summary"]
    assert text.startswith("blocked: 1 unmet — signoff.fairness (")
    assert text.endswith("details: /hitl/release?model=arrests&version=1")

    registered["store"].sign_off(run_id=registered["run_id"], check="fairness", user="dana", approve=True)
    assert invoke("gate", "promote", "arrests", "1", "--alias", "champion").exit_code == 0
    text = mlflow.MlflowClient().get_model_version("arrests", "1").tags["hitl.gate.alias.champion.summary"]
    assert text.startswith("allowed: all ") and "requirements met" in text


def test_the_gate_judges_metrics_the_run_does_not_log_from_the_verified_results(registered, tmp_path):
    # Only headline metrics are MLflow metrics; a policy may bound any metric of result.json.
    run = mlflow.MlflowClient().get_run(registered["run_id"])
    assert "hitl.calibration.log_loss" not in run.data.metrics
    policy = tmp_path / "log_loss.toml"
    policy.write_text(
        '[protect]\naliases = ["champion"]\n\n[checks.calibration]\nmax = { log_loss = 0.001 }\n'
    )
    invoke = registered["invoke"]
    assert invoke("policy", "set", "arrests", str(policy), user="root-admin").exit_code == 0
    result = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
    bound = next(r for r in json.loads(result.stdout)["requirements"] if "log_loss" in r["name"])
    assert not bound["met"] and bound["detail"].startswith("log_loss = ")
