"""The command line's edges as a person meets them: strict JSON, usage errors, clamped requests, warnings."""

import json

import mlflow
import pytest
from click.testing import CliRunner

from mlflow_hitl.cli import cli
from mlflow_hitl.review import ReviewStore, queue_consensus


def _refuse(constant):
    raise AssertionError(f"{constant} is not JSON")


def strict_json(text):
    """``text`` parsed as strict JSON: ``NaN`` or ``Infinity`` fail the test."""
    return json.loads(text, parse_constant=_refuse)


@pytest.fixture
def loop(tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch):
    """A model's run, 60 production rows on disk, a SQLite review store and a CLI bound to them."""
    _, real, production = arrests_split
    features = list(arrests_model.feature_names_in_)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(arrests_model, name="model", input_example=real[features].head(2))
    data = tmp_path / "prod.csv"
    production.head(60).to_csv(data, index=False)
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)

    def invoke(*args, user="eve", input=None):
        return CliRunner().invoke(
            cli,
            ["--tracking-uri", tracking_uri, *args],
            input=input,
            env={"MLFLOW_HITL_USER": user, "MLFLOW_HITL_STORE_URI": store_uri},
        )

    def create_queue(name, *options):
        return invoke(
            "queue", "create", "--run-id", run.info.run_id, "--data", str(data), "--name", name, *options
        )

    return {
        "run_id": run.info.run_id,
        "invoke": invoke,
        "create_queue": create_queue,
        "store": ReviewStore(store_uri),
        "tmp_path": tmp_path,
    }


def test_consensus_json_is_strict_json_with_null_for_what_cannot_be_computed(loop):
    assert loop["create_queue"]("q", "--size", "4", "--raters", "2").exit_code == 0
    store = loop["store"]
    for item in store.items("q"):
        store.annotate("q", position=item.position, user="alice", label="Yes")
    result = loop["invoke"]("consensus", "--queue", "q", "--format", "json")
    assert result.exit_code == 0, result.output
    # Without gold items or a second rater, the accuracies cannot be computed: NaN in pandas, null in JSON.
    assert queue_consensus(store, "q").rater_quality["gold_accuracy"].isna().all()
    payload = strict_json(result.stdout)
    assert payload["rater_quality"][0]["gold_accuracy"] is None
    assert payload["rater_quality"][0]["n_labels"] == 4
