"""The examples run as written, on real MLflow SQLite and review stores (the demo has tests/test_story.py)."""

import importlib.util
import json
from pathlib import Path

import mlflow

import mlflow_hitl
from mlflow_hitl.adapter.lineage import lineage
from mlflow_hitl.review import ReviewStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    """examples/<name>.py as a module (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_close_the_loop_production_labels_reach_the_next_versions_lineage_and_dossier(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    loop = load_example("close_the_loop")
    account = loop.run_alone(tmp_path / "loop")
    served, queue = account["served"], account["queue"]
    store = ReviewStore(f"sqlite:///{tmp_path / 'loop' / 'hitl.db'}")

    # Serving routed exactly the uncertain rows and the random controls, within the day's budget.
    items = store.items(queue)
    routing = account["routing"]
    assert routing["appended"] == len(items) == 80 and routing["over_budget"] > 0
    assert routing["rows"] == 1488 and sum(routing["dropped_by_cause"].values()) == 0
    for item in items:
        assert item.reason == "random-control" or (
            item.reason == "least-confidence" and item.confidence < 0.7
        )
    assert store.queue(queue).run_id == served["run_id"]  # the queue belongs to the served version's run

    # The verified labels are published and retrain the next version.
    assert account["snapshot"]["n_items"] == 80
    assert int(account["version"]) == int(served["version"]) + 1

    # Its lineage reaches the production queue, its raters, the adjudications and the served run's sign-offs.
    (trained_on,) = account["lineage"]["training_labels"]
    assert trained_on["queue"] == queue and trained_on["run_id"] == served["run_id"]
    assert trained_on["raters"] == ["alice", "bob"] and trained_on["labels"] == 2 * trained_on["n_items"]
    assert {a["user"] for a in trained_on["adjudications"]} == {"carol"}
    assert [(s["check_name"], s["decision"], s["user"]) for s in trained_on["signoffs"]] == [
        ("fairness", "approve", "dana")
    ]
    # The dossier an auditor keeps says the same, and its seal holds.
    dossier = account["dossier"]
    data = json.loads((dossier.path / "dossier.json").read_text())
    assert [(s["queue"], s["run_id"]) for s in data["training_labels"]] == [(queue, served["run_id"])]
    # The served version's own run, where the snapshot was published, did not train on it: its queue.
    served_lineage = lineage("arrests", served["version"], store=store, plots=False)
    assert queue in {q["name"] for q in served_lineage["queues"]}
    assert queue not in {s["queue"] for s in served_lineage["training_labels"]}
    assert "sign-offs of run" in (dossier.path / "index.html").read_text().lower()
    assert mlflow_hitl.verify_dossier(dossier.path).ok
    assert account["audit"].ok

    # The retrained version's report shows the gate's bounds, from the registered model's (default) policy.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'loop' / 'mlflow.db'}")
    report = mlflow.artifacts.download_artifacts(
        run_id=account["run_id"], artifact_path="hitl/report.html", dst_path=str(tmp_path / "dl")
    )
    assert "the default policy (arrests has none of its own)" in Path(report).read_text()
