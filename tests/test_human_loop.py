"""The whole human loop on a real MLflow SQLite store: queue → labels → consensus → snapshot → retrain.

Driven through the CLI (CliRunner, interactive prompts answered on stdin) and the Python API.
"""

import json
import warnings
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner

import mlflow_hitl
from conftest import ARRESTS_TARGET
from hitl_support import log_model_run
from mlflow_hitl.cli import cli
from mlflow_hitl.errors import InputError, NotFoundError
from mlflow_hitl.review import ReviewStore


@pytest.fixture
def loop(tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch, store_url):
    """A trained model's run, production rows on disk, and a review store: a SQLite file, then PostgreSQL."""
    _, real, production = arrests_split
    run_id = log_model_run(arrests_model, real)
    data = tmp_path / "prod.csv"
    production.head(400).to_csv(data, index=False)
    store_uri = store_url
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)

    def invoke(*args, input=None, user="eve"):
        return CliRunner().invoke(
            cli,
            ["--tracking-uri", tracking_uri, *args],
            input=input,
            env={"MLFLOW_HITL_USER": user, "MLFLOW_HITL_STORE_URI": store_uri},
        )

    return {
        "run_id": run_id,
        "data": data,
        "store_uri": store_uri,
        "invoke": invoke,
        "production": production.head(400),
    }


def create_queue(loop, *options):
    """``mlflow-hitl queue create`` over the loop's run and production rows."""
    return loop["invoke"](
        "queue", "create", "--run-id", loop["run_id"], "--data", str(loop["data"]), *options
    )


def test_default_store_sits_beside_a_sqlite_tracking_store(tracking_uri, monkeypatch):
    from mlflow_hitl.adapter.review import default_store_uri

    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    assert default_store_uri() == tracking_uri.replace("mlflow.db", "hitl.db")
    assert default_store_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(InputError, match="tracking store is remote"):
        default_store_uri("http://127.0.0.1:5000")


def test_queue_create_picks_the_least_confident_rows_blind(loop, arrests_model):
    result = create_queue(
        loop, "--size", "30", "--raters", "3", "--blind", "--name", "al-1", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["items"] == 30 and payload["labels_needed"] == 90
    store = ReviewStore(loop["store_uri"])
    items = store.items("al-1")
    assert all(i.prediction is None for i in items)  # blind
    features = list(arrests_model.feature_names_in_)
    confidence = arrests_model.predict_proba(loop["production"][features]).max(axis=1)
    picked = [int(i.row_key) for i in items if i.reason == "least-confidence"]
    others = sorted(set(range(len(confidence))) - {int(i.row_key) for i in items})
    assert confidence[picked].max() <= confidence[others].min() + 1e-12


def test_interactive_labelling_skips_comments_and_quits(loop):
    create_queue(loop, "--size", "3", "--random-share", "0", "--name", "al-2")
    # item 0: a wrong answer, then "Yes"; item 1: a comment, then class number 1 ("No"); item 2: skip; then none left.
    result = loop["invoke"](
        "review", "label", "--queue", "al-2", input="Maybe\nYes\nc\nlooks odd\n1\ns\n", user="alice"
    )
    assert result.exit_code == 0, result.output
    assert "'Maybe' is not a class" in result.output
    assert "model says" in result.output  # not blind: the prediction is shown
    assert "alice labelled 2 item(s)" in result.output
    labels = ReviewStore(loop["store_uri"]).annotations("al-2")
    assert labels[["item", "rater", "label", "comment", "source"]].values.tolist() == [
        [0, "alice", "Yes", None, "terminal"],
        [1, "alice", "No", "looks odd", "terminal"],
    ]


def test_whole_loop_to_retraining_with_lineage(loop, arrests_model):
    invoke = loop["invoke"]
    assert create_queue(loop, "--size", "12", "--raters", "3", "--name", "al-3").exit_code == 0
    store = ReviewStore(loop["store_uri"])
    votes = {"alice": "Yes", "bob": "Yes", "carol": "No"}
    for item in store.items("al-3"):
        for user, label in votes.items():
            # item 0 gets a 1-1-1 style split: everyone disagrees → adjudication
            label = ["Yes", "No", "Yes"][list(votes).index(user)] if item.position == 0 else label
            store.annotate("al-3", position=item.position, user=user, label=label)
    result = invoke("consensus", "--queue", "al-3", "--min-agreement", "0.7", "--format", "json")
    summary = json.loads(result.stdout)
    assert summary["verified_items"] == 0 and len(summary["pending_adjudication"]) == 12  # every item is 2-1

    assert invoke("roles", "grant", "root", "admin", user="root").exit_code == 0
    assert invoke("roles", "grant", "dave", "adjudicator", user="root").exit_code == 0
    refused = invoke(
        "review", "adjudicate", "--queue", "al-3", "--min-agreement", "0.7", input="Yes\n\n", user="mallory"
    )
    assert refused.exit_code == 2 and "needs the 'adjudicator' role" in refused.stderr
    answers = "Yes\nclear\n" + "q\n"
    assert (
        invoke(
            "review", "adjudicate", "--queue", "al-3", "--min-agreement", "0.7", input=answers, user="dave"
        ).exit_code
        == 0
    )

    published = invoke(
        "labels", "publish", "--queue", "al-3", "--label-column", ARRESTS_TARGET, "--format", "json"
    )
    assert published.exit_code == 0, published.output
    record = json.loads(published.stdout)
    assert record["n_items"] == 12 and record["run_id"] == loop["run_id"]
    again = json.loads(
        invoke(
            "labels", "publish", "--queue", "al-3", "--label-column", ARRESTS_TARGET, "--format", "json"
        ).stdout
    )
    assert again["id"] == record["id"] and again["republished"] is False

    run = mlflow.MlflowClient().get_run(loop["run_id"])
    inputs = [(d.dataset.name, {t.key: t.value for t in d.tags}) for d in run.inputs.dataset_inputs]
    assert ("hitl-verified-al-3", {"mlflow.data.context": "hitl-verified-labels"}) in inputs
    assert run.data.tags["hitl.labels.al-3"] == record["id"]

    with mlflow.start_run() as retrain:
        verified = mlflow_hitl.verified_labels("al-3", store=store)
        features = list(arrests_model.feature_names_in_)
        assert set(features) <= set(verified.columns)
        assert verified.loc[verified["hitl_item"] == 0, ARRESTS_TARGET].item() == "Yes"
        assert (verified.loc[verified["hitl_item"] != 0, ARRESTS_TARGET] == "Yes").all()
        assert verified.loc[verified["hitl_item"] == 0, "hitl_source"].item() == "adjudicated"
    lineage = mlflow.MlflowClient().get_run(retrain.info.run_id).inputs.dataset_inputs
    assert [d.dataset.digest for d in lineage] == [record["id"]]

    assert invoke("audit", "verify").exit_code == 0
    actions = json.loads(invoke("audit", "log", "--subject", "queue:al-3", "--format", "json").stdout)
    assert [a["action"] for a in actions].count("annotation.create") == 36
    assert actions[-1]["action"] == "snapshot.publish"


def test_a_snapshot_edited_after_publication_is_refused(loop, tmp_path):
    create_queue(loop, "--size", "2", "--random-share", "0", "--name", "al-4")
    store = ReviewStore(loop["store_uri"])
    for position in (0, 1):
        store.annotate("al-4", position=position, user="alice", label="No")
    stages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = mlflow_hitl.publish_labels(
            store, "al-4", actor="eve", progress=lambda *step: stages.append(step)
        )
    assert stages == [(1, 4), (2, 4), (3, 4), (4, 4)]  # read, consensus, logged, recorded
    # The rows' integer columns: MLflow's hint about model signatures does not concern a labels snapshot.
    assert not [w for w in caught if "Inferred schema contains integer column" in str(w.message)]
    artifact_dir = Path(
        mlflow.MlflowClient().get_run(loop["run_id"]).info.artifact_uri.replace("file://", "")
    )
    labels_file = artifact_dir / record["artifact_path"] / "labels.csv"
    labels_file.write_text(labels_file.read_text().replace(",No,", ",Yes,"))
    with pytest.raises(InputError, match=f"snapshot {record['id']}: labels.csv was altered"):
        mlflow_hitl.verified_labels("al-4", store=store, log_input=False)


def test_signoff_needs_the_role_and_audit_detects_tampering(loop):
    invoke = loop["invoke"]
    denied = invoke("signoff", "--run-id", loop["run_id"], "--check", "fairness", "--approve", user="dana")
    assert denied.exit_code == 2 and "needs the 'fairness-reviewer' role" in denied.stderr
    invoke("roles", "grant", "root", "admin", user="root")
    invoke("roles", "grant", "dana", "fairness-reviewer", user="root")
    ok = invoke(
        "signoff", "--run-id", loop["run_id"], "--check", "fairness", "--approve", "--note", "ok", user="dana"
    )
    assert ok.exit_code == 0 and "dana (fairness-reviewer) approved fairness" in ok.output
    no = invoke(
        "signoff", "--run-id", loop["run_id"], "--check", "fairness", "--reject", "--note", "no", user="dana"
    )
    assert no.exit_code == 0 and "dana (fairness-reviewer) rejected fairness" in no.output
    assert (
        invoke("signoff", "--run-id", "nope", "--check", "fairness", "--approve", user="dana").exit_code == 2
    )

    import sqlalchemy as sa

    with sa.create_engine(loop["store_uri"]).begin() as conn:
        conn.execute(sa.text("UPDATE hitl_audit_events SET actor = 'mallory' WHERE seq = 2"))
    broken = invoke("audit", "verify")
    assert broken.exit_code == 1
    assert "BROKEN at event 2" in broken.output


def test_unknown_queue_and_missing_snapshot_are_clear(loop):
    result = loop["invoke"]("consensus", "--queue", "nope")
    assert result.exit_code == 2 and "unknown queue 'nope'" in result.stderr
    store = ReviewStore(loop["store_uri"])
    with pytest.raises(NotFoundError, match="unknown queue 'nope'"):
        mlflow_hitl.verified_labels("nope", store=store)


def test_audit_export_writes_jsonl_and_logs_it_to_a_run(loop, tmp_path):
    loop["invoke"]("roles", "grant", "root", "admin", user="root")
    out = tmp_path / "audit.jsonl"
    result = loop["invoke"]("audit", "export", "-o", str(out), "--run-id", loop["run_id"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["action"] for e in events] == ["role.grant"] and len(events[0]["hash"]) == 64
    listed = [f.path for f in mlflow.MlflowClient().list_artifacts(loop["run_id"], "hitl/audit")]
    assert listed == ["hitl/audit/audit.jsonl"]
    assert isinstance(pd.read_json(out, lines=True), pd.DataFrame)


def test_label_studio_and_csv_round_trips_through_the_cli(loop, tmp_path):
    invoke = loop["invoke"]
    create_queue(loop, "--size", "4", "--raters", "2", "--blind", "--name", "ls-1")
    tasks_file = tmp_path / "tasks.json"
    assert (
        invoke(
            "review", "export", "--queue", "ls-1", "--format", "label-studio", "-o", str(tasks_file)
        ).exit_code
        == 0
    )
    tasks = json.loads(tasks_file.read_text())
    assert len(tasks) == 4 and not any("predictions" in task for task in tasks)  # blind: no model output
    config = invoke("review", "export", "--queue", "ls-1", "--format", "label-studio-config")
    assert "<Choices" in config.stdout and 'value="Yes"' in config.stdout

    def annotation(annotation_id, user, label, cancelled=False):
        return {
            "id": annotation_id,
            "completed_by": {"id": user, "email": f"rater{user}@example.org"},
            "was_cancelled": cancelled,
            "result": [
                {"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": [label]}}
            ],
        }

    for n, task in enumerate(tasks):
        task["annotations"] = [
            annotation(10 * n + 1, 1, "Yes"),
            annotation(10 * n + 2, 2, "No"),
            annotation(10 * n + 3, 3, "No", cancelled=True),
        ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    first = json.loads(invoke("review", "import", str(export), "--queue", "ls-1", "--format", "json").stdout)
    assert first == {"added": 8, "unchanged": 0, "ignored": 4}
    again = json.loads(invoke("review", "import", str(export), "--queue", "ls-1", "--format", "json").stdout)
    assert again == {"added": 0, "unchanged": 8, "ignored": 4}
    raters = ReviewStore(loop["store_uri"]).annotations("ls-1")["rater"].unique().tolist()
    assert raters == ["rater1@example.org", "rater2@example.org"]

    tasks[0]["annotations"][0]["result"][0]["value"]["choices"] = ["Perhaps"]
    export.write_text(json.dumps(tasks))
    bad = invoke("review", "import", str(export), "--queue", "ls-1")
    assert bad.exit_code == 2 and "'Perhaps' is not one of the queue's classes" in bad.stderr

    create_queue(loop, "--size", "3", "--random-share", "0", "--name", "sheet-1")
    sheet = tmp_path / "sheet.csv"
    invoke("review", "export", "--queue", "sheet-1", "--format", "csv", "-o", str(sheet))
    frame = pd.read_csv(sheet)
    frame["label"] = ["Yes", "No", None]  # the reviewer filled in two rows
    frame.to_csv(sheet, index=False)
    result = invoke(
        "review", "import", str(sheet), "--queue", "sheet-1", "--rater", "erin", "--format", "json"
    )
    assert json.loads(result.stdout) == {"added": 2, "unchanged": 0, "ignored": 1}
    assert invoke("audit", "verify").exit_code == 0


def test_a_queue_straight_from_a_validation(tracking_uri, tmp_path, arrests_model, arrests_split):
    from mlflow_hitl.review import queue_from_validation

    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        result = mlflow_hitl.validate(arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"])
    assert "scored" not in result.to_dict() and result.scored.y_prob.shape == (len(real), 2)
    store = ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}")
    queue = queue_from_validation(
        store, "recheck", result, size=20, actor="maya", raters_per_item=2, random_share=0
    )
    assert queue.run_id == run.info.run_id and queue.raters_per_item == 2
    confidence = result.scored.y_prob.max(axis=1)
    picked = sorted(int(i.row_key) for i in store.items("recheck"))
    assert confidence[picked].max() <= sorted(confidence)[19] + 1e-12  # the 20 least confident real rows


@pytest.mark.parametrize(
    "uri, source_type, described",
    [
        ("mlflow-artifacts:/0/r/artifacts/hitl/labels.csv", "artifact_uri", "uri"),
        ("mlflow-artifacts://host:5000/0/r/artifacts/labels.csv", "artifact_uri", "uri"),
        ("runs:/r/hitl/labels.csv", "artifact_uri", "uri"),
        ("http://host/api/2.0/mlflow-artifacts/artifacts/0/r/labels.csv", "http", "url"),
        ("file:///srv/mlruns/0/r/artifacts/labels.csv", "local", "uri"),
        ("s3://bucket/0/r/artifacts/labels.csv", "s3", "uri"),
    ],
)
def test_every_artifact_uri_a_server_hands_out_is_a_dataset_source(uri, source_type, described):
    # MLflow's own source where it has one; else the URI recorded as text rather than no lineage at all.
    from mlflow_hitl.adapter.artifact_source import artifact_source

    source = artifact_source(uri)
    assert (source._get_source_type(), source.to_dict()) == (source_type, {described: uri})
