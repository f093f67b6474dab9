"""The whole story, end to end on a real MLflow SQLite store: the demo's outcomes, and the CLI a team would use."""

import importlib.util
import json
from pathlib import Path

import mlflow
import sqlalchemy as sa
from click.testing import CliRunner

import mlflow_hitl
from conftest import ARRESTS_SENSITIVE, ARRESTS_TARGET
from hitl_support import log_sklearn_model
from mlflow_hitl.cli import cli
from mlflow_hitl.review import ReviewStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_demo():
    """examples/arrests_demo.py as a module (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("arrests_demo", EXAMPLES / "arrests_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_refuses_the_faulty_model_for_its_faults_then_promotes_the_fixed_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HITL_USER", "maya")
    story = load_demo().run_story(tmp_path / "demo-output")
    first, second = story["first"], story["second"]

    # Version 1 is refused for what the generator did: overconfidence, amplified bias, leaked rows, too clean;
    # and by people: the fairness reviewer rejected it, nobody released it.
    unmet = {r.name: r.detail for r in first["decision"].unmet()}
    assert not first["decision"].passed
    assert {
        "check.calibration.ece <= 0.05",
        "check.calibration.overconfidence_error <= 0.05",
        "check.fairness.*.bias_amplification <= 0.1",
        "check.generator.exact_copy_excess <= 0.02",
        "check.generator.c2st_auc <= 0.75",
        "signoff.fairness",
        "signoff.release",
    } <= set(unmet)
    assert "colour.bias_amplification" in unmet["check.fairness.*.bias_amplification <= 0.1"]
    assert "rejected by dana" in unmet["signoff.fairness"]
    # Domain experts audited the naive generator before that: they tell its rows from real ones.
    audit = story["generator_audit"]
    assert audit.metrics["human_auc_ci_low"] > 0.5 and audit.status.value != "passed"
    first_files = mlflow.artifacts.list_artifacts(
        run_id=first["run_id"], artifact_path="hitl/generator_audit"
    )
    assert first_files, "the audit is logged beside validate's evidence in version 1's run"

    # Version 2 meets every evidence bound for real (same policy), waits only for people, then is promoted.
    assert {r.name for r in second["waiting"].unmet()} == {"signoff.fairness", "signoff.release"}
    assert second["decision"].passed and not second["decision"].unmet()
    metrics = second["result"].checks
    assert metrics["calibration"].metrics["ece"] <= 0.05
    assert max(v for k, v in metrics["fairness"].metrics.items() if k.endswith(".bias_amplification")) <= 0.1
    assert (
        metrics["generator"].metrics["exact_copy_share"]
        < metrics["generator"].metrics["real_duplicate_share"]
    )
    # Its privacy pass rests on a blind spot the team accepted on the record, and the policy bounds it.
    generator = metrics["generator"]
    assert generator.status.value == "passed" and generator.thresholds["max_undetectable_excess"] == 0.05
    assert 0.02 < generator.metrics["exact_copy_min_detectable_excess"] <= 0.05
    assert "check.generator.exact_copy_min_detectable_excess <= 0.05" in {
        r.name for r in second["decision"].requirements
    }
    mlflow.set_tracking_uri(story["tracking_uri"])
    champion = mlflow.MlflowClient().get_model_version_by_alias("arrests", "champion")
    assert str(champion.version) == second["version"] == "2"

    # Its lineage reaches the queue, the raters, the adjudications and the sign-offs through the snapshot.
    (trained_on,) = story["lineage"]["training_labels"]
    assert trained_on["queue"] == story["queue"] and trained_on["run_id"] == first["run_id"]
    assert (
        trained_on["raters"] == ["alice", "bob", "sam"] and trained_on["labels"] == 3 * trained_on["n_items"]
    )
    assert trained_on["adjudications"] and {a["user"] for a in trained_on["adjudications"]} == {"carol"}
    assert [(s["check_name"], s["decision"], s["user"]) for s in trained_on["signoffs"]] == [
        ("fairness", "reject", "dana")
    ]
    assert [(s["check_name"], s["user"]) for s in story["lineage"]["signoffs"]] == [
        ("fairness", "dana"),
        ("release", "rita"),
    ]
    assert [g["action"] for g in story["lineage"]["gate_decisions"]] == ["gate.check", "promotion.granted"]
    assert story["audit"].ok

    # 6. The loop closes: the champion's uncertain production rows, labelled, retrain version 3, whose lineage
    # and dossier reach the production queue, its raters and the champion's sign-offs.
    loop = story["loop"]
    assert loop["version"] == "3" and loop["routing"]["appended"] == loop["snapshot"]["n_items"] == 80
    (production,) = loop["lineage"]["training_labels"]
    assert production["queue"] == loop["queue"] and production["run_id"] == second["run_id"]
    assert production["raters"] == ["alice", "bob"] and production["adjudications"]
    assert [(s["check_name"], s["decision"], s["user"]) for s in production["signoffs"]] == [
        ("fairness", "approve", "dana"),
        ("release", "approve", "rita"),
    ]
    assert mlflow_hitl.verify_dossier(loop["dossier"].path).ok
    # The champion's own evidence still passes its gate with the production snapshot in its run.
    from mlflow_hitl.adapter.gate import check_gate
    from mlflow_hitl.adapter.review import open_store

    assert check_gate("arrests", "2", "alias:champion", store=open_store(), actor="rita").passed

    # Version 2's report shows the demo policy's own bounds beside each check, and where they came from.
    report = (
        tmp_path / "demo-output" / "artifacts" / second["run_id"] / "artifacts" / "hitl" / "report.html"
    ).read_text()
    assert "<code>exact_copy_excess &lt;= 0.02</code></td><td>✅</td>" in report
    assert "<code>*.bias_amplification &lt;= 0.1</code></td><td>✅</td>" in report
    assert "policy of arrests v1, set by root" in report

    # The CLI examples' data are on disk.
    data = tmp_path / "demo-output" / "data"
    assert {"real.csv", "synthetic.csv", "production.csv"} <= {p.name for p in data.iterdir()}


POLICY = """
[protect]
aliases = ["champion"]
[checks.calibration]
max = { ece = 0.5 }
[checks.fairness]
max = { "*.demographic_parity_difference" = 0.9 }
[[signoffs]]
check = "fairness"
role = "fairness-reviewer"
count = 1
[review]
min_verified_items = 10
[duties]
separate = true
"""


def test_validate_review_sign_off_promote_trace_and_catch_tampering(
    tracking_uri, tmp_path, arrests_model, arrests_split
):
    synthetic, real, production = arrests_split
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"

    def run(*args, user="maya", input=None):
        result = CliRunner().invoke(
            cli,
            ["--tracking-uri", tracking_uri, *args],
            input=input,
            env={"MLFLOW_HITL_USER": user, "MLFLOW_HITL_STORE_URI": store_uri},
        )
        assert "Traceback" not in result.output
        return result

    # The ML engineer trains, validates and registers.
    with mlflow.start_run() as training:
        log_sklearn_model(arrests_model, real)
        mlflow_hitl.validate(
            arrests_model,
            real=real,
            target=ARRESTS_TARGET,
            synthetic=synthetic,
            sensitive_features=ARRESTS_SENSITIVE,
            checks=["calibration", "fairness"],
            config={"fairness": {"n_bootstrap": 50}},
        )
    mlflow.register_model(f"runs:/{training.info.run_id}/model", "arrests")
    author = mlflow.MlflowClient().get_run(training.info.run_id).info.user_id

    # An admin sets the policy and the roles.
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    assert run("roles", "grant", "root", "admin", user="root").exit_code == 0
    assert run("roles", "grant", "dana", "fairness-reviewer", user="root").exit_code == 0
    assert run("roles", "grant", "carol", "adjudicator", user="root").exit_code == 0
    assert run("policy", "set", "arrests", str(policy), user="root").exit_code == 0

    # The release manager is refused, with the reasons.
    blocked = run("gate", "promote", "arrests", "1", "--alias", "champion", "--format", "json", user="rita")
    assert blocked.exit_code == 1
    assert {r["name"] for r in json.loads(blocked.stdout)["requirements"] if not r["met"]} == {
        "signoff.fairness",
        "review.verified_items",
    }

    # Reviewers label the model's least-confident production rows; consensus; adjudication; snapshot.
    data = tmp_path / "prod.csv"
    production.head(300).to_csv(data, index=False)
    assert (
        run(
            "queue",
            "create",
            "--run-id",
            training.info.run_id,
            "--data",
            str(data),
            "--size",
            "12",
            "--raters",
            "3",
            "--blind",
            "--name",
            "story",
        ).exit_code
        == 0
    )
    store = ReviewStore(store_uri)
    for item in store.items("story"):
        for user, label in (
            ("alice", "Yes"),
            ("bob", "Yes"),
            ("erin", "No" if item.position == 0 else "Yes"),
        ):
            store.annotate("story", position=item.position, user=user, label=label)
    summary = json.loads(
        run("consensus", "--queue", "story", "--min-agreement", "0.7", "--format", "json").stdout
    )
    assert summary["pending_adjudication"] == [0]
    assert (
        run(
            "review",
            "adjudicate",
            "--queue",
            "story",
            "--min-agreement",
            "0.7",
            input="Yes\nagreed\n",
            user="carol",
        ).exit_code
        == 0
    )
    published = json.loads(
        run("labels", "publish", "--queue", "story", "--min-agreement", "0.7", "--format", "json").stdout
    )
    assert published["n_items"] == 12

    # A second person signs off the fairness audit; the author could not have.
    assert (
        run(
            "signoff",
            "--run-id",
            training.info.run_id,
            "--check",
            "fairness",
            "--approve",
            "--note",
            "ok",
            user="dana",
        ).exit_code
        == 0
    )
    assert author != "dana"

    # Now the gate passes and the promotion goes through.
    promoted = run("gate", "promote", "arrests", "1", "--alias", "champion", user="rita")
    assert promoted.exit_code == 0, promoted.output
    assert str(mlflow.MlflowClient().get_model_version_by_alias("arrests", "champion").version) == "1"

    # The auditor sees every link and an intact chain.
    trace = json.loads(run("lineage", "models:/arrests/1", "--format", "json").stdout)
    assert trace["model"]["aliases"] == ["champion"]
    assert [q["name"] for q in trace["queues"]] == ["story"]
    assert trace["queues"][0]["snapshots"][0]["id"] == published["id"]
    assert {"alice", "bob", "erin"} <= set(trace["queues"][0]["snapshots"][0]["raters"])
    assert any(
        d["context"] == "hitl-verified-labels" and d["digest"] == published["id"] for d in trace["datasets"]
    )
    assert [s["user"] for s in trace["signoffs"]] == ["dana"]
    assert [g["action"] for g in trace["gate_decisions"]] == ["promotion.refused", "promotion.granted"]
    assert trace["audit"]["ok"] and not trace["evidence_problems"]

    # Someone rewrites history: the gate blocks again and says why.
    with sa.create_engine(store_uri).begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE hitl_audit_events SET payload = replace(payload, 'No', 'Yes') "
                "WHERE action = 'annotation.create' AND actor = 'erin'"
            )
        )
    again = run("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json", user="rita")
    assert again.exit_code == 1
    unmet = {r["name"]: r["detail"] for r in json.loads(again.stdout)["requirements"] if not r["met"]}
    assert "audit.intact" in unmet and "altered" in unmet["audit.intact"]
    assert run("audit", "verify").exit_code == 1
