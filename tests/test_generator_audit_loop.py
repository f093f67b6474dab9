"""The generator audit end to end from the shell: a blind queue, sheets filled by simulated raters, the
results logged into a model's run beside validate's evidence (real MLflow SQLite store), held to a gate
policy and signed off; the terminal; bad input."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlflow_hitl
from conftest import ARRESTS_TARGET
from hitl_support import answer, leaking, log_sklearn_model, real_rows, resampled, simulated_answer
from mlflow_hitl.cli import cli
from mlflow_hitl.review import ReviewStore, generator_audit_inputs, queue_generator_audit
from test_gates import unmet


@pytest.fixture
def shell(tmp_path):
    """The CLI bound to a review store (and to ``tracking``, an MLflow store, when given), and a folder."""
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"

    def invoke(*args, user="maya", tracking=None, input=None):
        return CliRunner().invoke(
            cli,
            [*(("--tracking-uri", tracking) if tracking else ()), *args],
            env={"MLFLOW_HITL_USER": user, "MLFLOW_HITL_STORE_URI": store_uri},
            input=input,
        )

    return {"invoke": invoke, "store_uri": store_uri, "tmp": tmp_path}


def write_sets(folder, synthetic: pd.DataFrame, real: pd.DataFrame) -> tuple[str, str]:
    synthetic.to_csv(folder / "syn.csv", index=False)
    real.to_csv(folder / "real.csv", index=False)
    return str(folder / "syn.csv"), str(folder / "real.csv")


def label_through_sheets(shell, queue: str, *, spots_tell: bool) -> None:
    """Each rater exports the sheet, fills label, tags and comment as a simulated rater, imports it."""
    sheet_path = shell["tmp"] / "sheet.csv"
    exported = shell["invoke"]("review", "export", "--queue", queue, "--format", "csv", "-o", str(sheet_path))
    assert exported.exit_code == 0, exported.output
    for seed, rater in enumerate(("ann", "bob")):
        sheet = pd.read_csv(sheet_path)
        rng = np.random.default_rng(seed)
        answers = [simulated_answer(row, rng, spots_tell=spots_tell) for row in sheet.to_dict("records")]
        sheet["label"] = [a[0] for a in answers]
        sheet["tags"] = ["; ".join(a[1]) for a in answers]
        sheet["comment"] = [a[2] or "" for a in answers]
        filled = shell["tmp"] / f"{rater}.csv"
        sheet.to_csv(filled, index=False)
        imported = shell["invoke"]("review", "import", str(filled), "--queue", queue, "--rater", rater)
        assert imported.exit_code == 0 and imported.stdout.startswith("added "), imported.output


GATED = """
[checks.calibration]
max = { ece = 0.5 }

[checks.generator_audit]
max = { "*.human_auc" = 0.7 }

[[signoffs]]
check = "generator_audit"
role = "reviewer"
"""


def test_the_audit_lands_in_the_runs_evidence_and_a_gate_holds_the_version_to_it(
    shell, tracking_uri, arrests_model, arrests_split
):
    invoke = shell["invoke"]
    _, real_arrests, _ = arrests_split
    with mlflow.start_run() as run:  # the training run: its model, and validate's evidence
        log_sklearn_model(arrests_model, real_arrests)
        mlflow_hitl.validate(arrests_model, real=real_arrests, target=ARRESTS_TARGET, checks=["calibration"])
    run_id = run.info.run_id
    mlflow.register_model(f"runs:/{run_id}/model", "arrests")
    store = ReviewStore(shell["store_uri"])
    store.grant_role("root", "admin", actor="root")
    store.grant_role("rene", "reviewer", actor="root")
    policy = shell["tmp"] / "gated.toml"
    policy.write_text(GATED)
    assert invoke("policy", "set", "arrests", str(policy), user="root", tracking=tracking_uri).exit_code == 0

    def gate():
        args = ("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
        return invoke(*args, user="rita", tracking=tracking_uri)

    assert {"check.generator_audit", "signoff.generator_audit"} <= unmet(gate())

    # A generator that leaks a tell in one group: people spot it there, and the gate refuses.
    real = real_rows()
    syn, rl = write_sets(shell["tmp"], leaking(real), real)
    created = invoke(
        "queue", "create", "--kind", "generator-audit", "--synthetic", syn, "--real", rl, "--sensitive",
        "sex,race", "--per-group", "15", "--raters", "2", "--run-id", run_id, "--name", "ga",
        "--format", "json", tracking=tracking_uri,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["kind"] == "generator-audit"
    label_through_sheets(shell, "ga", spots_tell=True)
    result = invoke("generator-audit", "results", "ga", "--format", "json", tracking=tracking_uri)
    assert result.exit_code == 1, result.output  # failed
    audit = json.loads(result.stdout)
    assert audit["status"] == "failed" and audit["metrics"]["race.B.human_auc"] > 0.85
    assert audit["details"]["flagged"][0]["tags"]  # the reasons, read back from the sheets' tags column

    client = mlflow.MlflowClient()
    tags = client.get_run(run_id).data.tags
    assert tags["hitl.checks"] == "calibration=passed,generator_audit=failed"  # validate's evidence kept
    assert client.get_run(run_id).data.metrics["hitl.generator_audit.worst_group_human_auc"] > 0.85
    files = {f.path for f in client.list_artifacts(run_id, "hitl/generator_audit")}
    assert files == {f"hitl/generator_audit/{n}" for n in ("result.json", "groups.csv", "flagged.csv")}
    summary = mlflow.artifacts.load_dict(f"runs:/{run_id}/hitl/summary.json")
    assert set(summary["checks"]) == {"calibration", "generator_audit"}
    assert {"calibration/result.json", "generator_audit/groups.csv"} <= set(summary["manifest"])
    registrations = store.audit_events(subject=f"run:{run_id}", action="evidence.registered")
    assert len(registrations) == 2  # validate's, then the merged evidence's

    store.sign_off(run_id=run_id, check="generator_audit", user="rene", approve=True, note="seen")
    assert unmet(gate()) == {"check.generator_audit.*.human_auc <= 0.7"}

    # A generator people cannot tell from real passes, once its audit is signed off in turn.
    queue_generator_audit(
        store, "ga2", synthetic=resampled(real), real=real, sensitive=["race"], per_group=15, actor="maya"
    )
    answer(store, "ga2", spots_tell=False)
    text = invoke("generator-audit", "results", "ga2", "--run-id", run_id, tracking=tracking_uri)
    assert text.exit_code == 0, text.output
    assert "generator_audit: passed: people told synthetic from real rows with AUC" in text.stdout
    assert "race=B" in text.stdout
    assert unmet(gate()) == {"signoff.generator_audit"}  # the sign-off approved the earlier evidence
    store.sign_off(run_id=run_id, check="generator_audit", user="rene", approve=True)
    passed = gate()
    assert passed.exit_code == 0, passed.output
    store.close()


def test_the_terminal_asks_for_realism_and_reasons_and_shows_nothing_of_the_truth(shell):
    real = real_rows(300)
    syn, rl = write_sets(shell["tmp"], resampled(real, 200), real)
    options = ("--synthetic", syn, "--real", rl, "--sensitive", "sex", "--per-group", "5")
    created = shell["invoke"]("queue", "create", "--kind", "generator-audit", "--name", "ga", *options)
    assert created.exit_code == 0, created.output
    assert "generator audit of 20 rows" in created.stdout
    answers = "2\n1,4\nbed sheet pattern\n" + "1\n\n" + "q\n"
    labelled = shell["invoke"]("review", "label", "--queue", "ga", "--user", "ann", input=answers)
    assert labelled.exit_code == 0, labelled.output
    assert "[1] realistic" in labelled.stdout and "[2] not realistic" in labelled.stdout
    assert "[3] looks-like-a-real-person" in labelled.stdout
    assert "synthetic" not in labelled.stdout.lower() and "control" not in labelled.stdout.lower()
    store = ReviewStore(shell["store_uri"])
    _, judgements = generator_audit_inputs(store.queue_labels("ga"))
    store.close()
    assert judgements["label"].tolist() == ["not realistic", "realistic"]
    assert judgements.loc[0, "tags"] == ("implausible-combination", "other")
    assert judgements.loc[0, "note"] == "bed sheet pattern"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--sensitive": "sex,religion"}, "sensitive column 'religion' is not a column of the data"),
        ({"--per-group": "5000"}, "per_group 5000 is larger than group sex=F"),
        ({"empty": True}, "synthetic has no rows"),
        ({"--real": None}, "--kind generator-audit needs --real"),
    ],
    ids=["unknown-sensitive", "per-group-too-large", "empty-synthetic", "missing-real"],
)
def test_bad_input_is_one_line_and_exit_2(shell, change, message):
    real = real_rows(300)
    synthetic = real.head(0) if change.pop("empty", False) else resampled(real, 200)
    syn, rl = write_sets(shell["tmp"], synthetic, real)
    options = {"--synthetic": syn, "--real": rl, "--sensitive": "sex", "--per-group": "5"} | change
    flat = [part for option, value in options.items() if value is not None for part in (option, value)]
    result = shell["invoke"]("queue", "create", "--kind", "generator-audit", "--name", "ga", *flat)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    results = shell["invoke"]("generator-audit", "results", "nope", "--no-log")
    assert results.exit_code == 2 and "unknown queue 'nope'" in results.stderr
