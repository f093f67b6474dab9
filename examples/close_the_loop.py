"""Closing the loop: production's uncertain cases, labelled by people, train the next version.

1. Serve: a registered version is wrapped with ``mlflow_hitl.serving.log_routed_model``, so that scoring
   production rows answers exactly as before and, off the request path, routes the rows it is unsure
   about (plus a small random control share, within a daily budget) to the queue ``arrests-production``.
2. People: two reviewers label each routed row, an adjudicator settles their disagreements, and the
   verified labels are published as an immutable snapshot in the served version's run.
3. Retrain: the next version trains on the synthetic rows plus those verified labels
   (``mlflow_hitl.verified_labels`` logs the snapshot as an input of the training run); it is
   registered, then validated, so its report shows the gate policy's bounds.
4. Lineage: the new version's lineage reaches the production queue, its raters, the adjudications and
   the served version's sign-offs through the snapshot; its dossier holds the same for auditors.

``close_the_loop`` is the step ``examples/arrests_demo.py`` runs on its champion. Run alone
(``python examples/close_the_loop.py``), this script first trains and registers a version of its own on
the demo's honest synthetic data, with a fairness reviewer's sign-off, then closes the loop on it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import sklearn

import mlflow_hitl
import mlflow_hitl.serving


def _demo() -> Any:
    """examples/arrests_demo.py (its data, generators and training), loaded by path: examples are scripts."""
    if "arrests_demo" in sys.modules:
        return sys.modules["arrests_demo"]
    spec = importlib.util.spec_from_file_location("arrests_demo", Path(__file__).with_name("arrests_demo.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["arrests_demo"] = module
    spec.loader.exec_module(module)
    return module


QUEUE = "arrests-production"
# Simulated reviewers of the production queue: the share of items each labels correctly.
REVIEWERS = {"alice": 0.93, "bob": 0.9}
ADJUDICATOR = "carol"


def serve(model_uri: str, requests: pd.DataFrame, *, experiment_id: str, spool_dir: Path) -> dict[str, Any]:
    """Wrap ``model_uri`` so that it routes its uncertain rows, score ``requests`` through it in small
    batches as a service would, and return what routing did (``routing_stats``)."""
    with (
        mlflow.start_run(experiment_id=experiment_id, run_name="routed-for-production"),
        warnings.catch_warnings(),
    ):
        # MLflow's hints for hand-written pyfuncs (type hints, an input example); the routed model takes
        # the wrapped model's signature instead.
        warnings.filterwarnings("ignore", message=r"(?s).*(Add type hints|An input example was not provided)")
        info = mlflow_hitl.serving.log_routed_model(
            model_uri,
            queue=QUEUE,
            strategy="least-confidence",
            threshold=0.7,  # a row whose top class probability is below 0.7 goes to people
            budget="80/day",  # what two reviewers can label today
            control_share=0.02,  # plus 2% of all rows at random, to measure accuracy on all traffic
            id_column="request_id",  # the clients' own ids: a retried request is queued once
            raters_per_item=len(REVIEWERS),
            spool_dir=str(spool_dir),
        )
    routed = mlflow.pyfunc.load_model(info.model_uri)
    for start in range(0, len(requests), 100):
        routed.predict(requests.iloc[start : start + 100])
    wrapper = routed.unwrap_python_model()
    wrapper.flush()
    return wrapper.routing_stats()


def label(store, truth: pd.Series, *, actor: str, seed: int = 0) -> dict[str, Any]:
    """The reviewers label the queue, the adjudicator settles disagreements; publish the verified labels."""
    from mlflow_hitl.review import queue_consensus

    demo = _demo()
    demo.simulated_labels(store, QUEUE, truth, REVIEWERS, seed=seed, source="close-the-loop")
    state = queue_consensus(store, QUEUE, method="majority")
    for position in state.pending:
        row_key = next(i.row_key for i in store.items(QUEUE) if i.position == position)
        store.adjudicate(
            QUEUE, position=position, user=ADJUDICATOR, label=truth.loc[int(row_key)], note="checked the file"
        )
    return mlflow_hitl.publish_labels(store, QUEUE, actor=actor, method="majority", label_column=demo.TARGET)


def train_version(
    store,
    model_name: str,
    *,
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    production: pd.DataFrame,
    experiment_id: str,
    queue: str | None = QUEUE,
) -> tuple[str, str, Any]:
    """Train on ``synthetic`` plus the verified labels of ``queue`` (``None``: none), register, validate.

    Returns ``(version, run id, validation result)``. Registered before it is validated, so the
    report already shows the gate policy's bounds (``hitl/report.html``).
    """
    demo = _demo()
    name = "trained-on-synthetic" if queue is None else "retrained-with-production-labels"
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        rows, weights = synthetic, None
        if queue is not None:
            verified = mlflow_hitl.verified_labels(queue, store=store)  # logged as an input: the lineage
            rows = pd.concat([synthetic, verified[synthetic.columns]], ignore_index=True)
            weights = np.r_[np.ones(len(synthetic)), np.full(len(verified), 5.0)]
        mlflow.log_input(
            mlflow.data.from_pandas(synthetic, name="synthetic", targets=demo.TARGET), context="training"
        )
        model = demo.train(rows, sample_weight=weights)
        example = real[demo.CATEGORICAL + demo.NUMERIC].head(3).astype({c: "float64" for c in demo.NUMERIC})
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # named: inference costs ~10 s
            registered_model_name=model_name,
        )
        result = mlflow_hitl.validate(
            model,
            real=real,
            target=demo.TARGET,
            synthetic=synthetic,
            production=production,
            sensitive_features=demo.SENSITIVE,
            registered_model_name=model_name,  # the report shows its gate's bounds
            config=demo.VALIDATION_CONFIG,  # the same accepted privacy blind spot
        )
    version = str(logged.registered_model_version)
    print(f"\n{name}: HITL status {result.status.value}, registered as {model_name} version {version}")
    for check_name, check in result.checks.items():
        print(f"  {check_name:<12} {check.status.value:<22} {check.summary}")
    return version, run.info.run_id, result


def close_the_loop(
    store,
    model_name: str,
    version: str,
    *,
    production: pd.DataFrame,
    truth: pd.Series,
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    experiment_id: str,
    output: Path,
    actor: str,
) -> dict[str, Any]:
    """Serve ``model_name`` version ``version`` on ``production`` (whose true labels, ``truth``, only the
    simulated reviewers see), label, retrain, and trace the new version. Returns what happened."""
    from mlflow_hitl.adapter.lineage import lineage, render_tree

    demo = _demo()
    # As a client sends them: numbers as JSON numbers (the signature's doubles), and its own request ids.
    requests = production.astype({c: "float64" for c in demo.NUMERIC}).assign(
        request_id=production.index.astype(str)
    )
    stats = serve(
        f"models:/{model_name}/{version}", requests, experiment_id=experiment_id, spool_dir=output / "spool"
    )
    print(
        f"\n{model_name} version {version} served {stats['rows']} production rows through the routed model: "
        f"{stats['appended']} queued in {QUEUE} ({stats['control']} random controls), "
        f"{stats['over_budget']} over today's budget, {sum(stats['dropped_by_cause'].values())} dropped"
    )
    record = label(store, truth, actor=actor)
    print(
        f"{' and '.join(REVIEWERS)} labelled them, {ADJUDICATOR} settled the disagreements; "
        f"snapshot {record['id']}: {record['n_items']} verified production labels"
    )
    new_version, run_id, result = train_version(
        store, model_name, synthetic=synthetic, real=real, production=production, experiment_id=experiment_id
    )
    trace = lineage(model_name, new_version, store=store)
    print(f"lineage of {model_name} version {new_version}:")
    print(render_tree(trace), end="")
    folder = mlflow_hitl.dossier(
        f"models:/{model_name}/{new_version}",
        output / f"dossier-{model_name}-{new_version}",
        store=store,
        force=True,
    )
    print(f"its dossier: {folder.path}")
    return {
        "queue": QUEUE,
        "routing": stats,
        "snapshot": record,
        "version": new_version,
        "run_id": run_id,
        "result": result,
        "lineage": trace,
        "dossier": folder,
    }


def run_alone(output: Path) -> dict[str, Any]:
    """Alone: a version of its own (honest synthetic data, a fairness sign-off), then the loop on it.

    Returns :func:`close_the_loop`'s account, plus ``served`` (the served version and its run) and ``audit``.
    """
    from mlflow_hitl.adapter.review import open_store

    demo = _demo()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ["MLFLOW_HITL_USER"] = demo.ENGINEER
    warnings.filterwarnings(
        "ignore", message=r"(?s).*Inferred schema contains integer column", category=UserWarning
    )
    output.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{output / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name("hitl-loop")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("hitl-loop", artifact_location=(output / "artifacts").as_uri())
    )
    data = demo.demo_data()
    store = open_store()  # beside the MLflow store: hitl.db
    demo.appoint_people(store)
    synthetic, real = data["synthetic_fixed"], data["real"]
    version, run_id, _ = train_version(
        store,
        demo.MODEL_NAME,
        synthetic=synthetic,
        real=real,
        production=data["production"],
        experiment_id=experiment_id,
        queue=None,
    )
    store.sign_off(
        run_id=run_id, check="fairness", user="dana", approve=True, note="no bias added by the generator"
    )
    account = close_the_loop(
        store,
        demo.MODEL_NAME,
        version,
        production=data["production"],
        truth=data["production_truth"][demo.TARGET],
        synthetic=synthetic,
        real=real,
        experiment_id=experiment_id,
        output=output,
        actor=demo.ENGINEER,
    )
    return {**account, "served": {"version": version, "run_id": run_id}, "audit": store.verify_audit()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="loop-output", help="folder for the SQLite stores and artifacts")
    account = run_alone(Path(parser.parse_args(argv).output).resolve())
    print(f"\naudit chain: {'intact' if account['audit'].ok else 'BROKEN'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
