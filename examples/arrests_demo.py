"""End-to-end story: a model trained on too-clean, biased synthetic data, caught by mlflow-hitl.

Real data: the arrests data set that ships with scikit-lego (target ``released``; sensitive
``colour`` and ``sex``). A deliberately naive generator learns from part of it and makes a
synthetic training set with the three classic faults:

- too clean: numeric columns drawn from tidy class-conditional distributions whose classes are
  further apart than in reality, so the model learns to be sure of itself;
- amplified bias: the generator releases Black arrestees less often than its source did;
- leaked rows: a few percent of synthetic rows are verbatim copies of real ones.

A model is trained on the synthetic set and logged to a local SQLite MLflow store; then
``mlflow_hitl.validate`` checks it against held-out real rows (and newer production rows) and
logs the evidence to the same run.

Then the human loop: the model's least-confident production rows go to a blind queue, three
simulated reviewers of known quality label each one (one of them sloppy), Dawid-Skene finds the
consensus and spots the sloppy rater, an adjudicator settles the disagreements, a fairness reviewer
signs off (rejects) the bias audit, the verified labels are published as an immutable snapshot, and a
second model is trained with them, its lineage pointing at exactly those labels.

Run it with ``make demo`` (or ``python examples/arrests_demo.py``).
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklego.datasets import load_arrests

import mlflow_hitl

TARGET = "released"
SENSITIVE = ["colour", "sex"]
CATEGORICAL = ["colour", "sex", "employed", "citizen"]
NUMERIC = ["year", "age", "checks"]


def split_real_data(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """(generator source, labelled real holdout, unlabelled production, production's true labels).

    Production rows are the newest years (2001-2002), so the model also meets time drift. Their
    true labels are kept aside: only the simulated reviewers get to see them.
    """
    arrests = load_arrests(as_frame=True)
    newest = arrests[arrests["year"] >= 2001].reset_index(drop=True)
    past = arrests[arrests["year"] < 2001].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cut = int(len(past) * 0.6)
    return (
        past.iloc[:cut].reset_index(drop=True),
        past.iloc[cut:].reset_index(drop=True),
        newest.drop(columns=[TARGET]),
        newest[TARGET],
    )


def naive_generator(source: pd.DataFrame, n_rows: int, *, seed: int = 0) -> pd.DataFrame:
    """A synthetic set with the faults described in the module docstring."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(source[TARGET].to_numpy(), size=n_rows)
    synthetic = pd.DataFrame({TARGET: labels})
    for column in CATEGORICAL:  # class-conditional frequencies, independent otherwise
        for label in np.unique(labels):
            rows = synthetic[TARGET] == label
            values = source.loc[source[TARGET] == label, column]
            freq = values.value_counts(normalize=True)
            synthetic.loc[rows, column] = rng.choice(
                freq.index.to_numpy(), size=int(rows.sum()), p=freq.to_numpy()
            )
    for column in NUMERIC:  # tidy normal draws, classes pushed apart: "too clean"
        overall = source[column].std()
        for label in np.unique(labels):
            rows = synthetic[TARGET] == label
            values = source.loc[source[TARGET] == label, column]
            push = 0.6 * overall * (1 if label == "No" else -1) if column == "checks" else 0.0
            draws = rng.normal(values.mean() + push, 0.5 * values.std(), size=int(rows.sum()))
            synthetic.loc[rows, column] = np.clip(np.round(draws), source[column].min(), source[column].max())
    synthetic[NUMERIC] = synthetic[NUMERIC].astype("int64")
    # Amplified bias: a third of released Black arrestees become not released.
    black_released = np.flatnonzero((synthetic["colour"] == "Black") & (synthetic[TARGET] == "Yes"))
    flipped = rng.choice(black_released, size=len(black_released) // 3, replace=False)
    synthetic.loc[flipped, TARGET] = "No"
    # Leaked rows: 3% verbatim copies of real source rows.
    leaked = source.sample(n=int(0.03 * n_rows), random_state=seed)
    synthetic = pd.concat([synthetic.iloc[: n_rows - len(leaked)], leaked], ignore_index=True)
    return synthetic[source.columns].sample(frac=1.0, random_state=seed).reset_index(drop=True)


def train(rows: pd.DataFrame, sample_weight: np.ndarray | None = None):
    features = CATEGORICAL + NUMERIC
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL), (StandardScaler(), NUMERIC)
        ),
        LogisticRegression(max_iter=1000),
    )
    return model.fit(rows[features], rows[TARGET], logisticregression__sample_weight=sample_weight)


# Simulated reviewers: the share of items each labels correctly.
REVIEWERS = {"alice": 0.93, "bob": 0.9, "sam": 0.6}


def human_review(model, run_id: str, production: pd.DataFrame, truth: pd.Series, *, seed: int = 0) -> str:
    """Queue, label, agree, adjudicate, sign off, publish. Returns the queue's name."""
    from mlflow_hitl.adapter.review import open_store, queue_from_model
    from mlflow_hitl.review import queue_consensus

    rng = np.random.default_rng(seed)
    store = open_store()  # beside the MLflow store: demo-output/hitl.db
    name = f"arrests-review-{run_id[:8]}"
    queue = queue_from_model(
        store,
        name,
        data=production,
        model=model,
        actor="maya",
        size=120,
        raters_per_item=3,
        blind=True,
        run_id=run_id,
        group_column="colour",
    )
    print(f"\nqueue {name}: {len(store.items(name))} least-confident production rows, 3 raters each, blind")

    for reviewer, accuracy in REVIEWERS.items():
        while (item := store.next_item(name, user=reviewer)) is not None:
            right = truth.iloc[int(item.row_key)]
            wrong = next(c for c in queue.classes if c != right)
            store.annotate(
                name,
                position=item.position,
                user=reviewer,
                label=right if rng.random() < accuracy else wrong,
                source="demo",
            )

    state = queue_consensus(store, name, method="dawid-skene")
    stats = state.agreement
    print(
        f"consensus (Dawid-Skene): Fleiss kappa {stats.fleiss_kappa:.2f}, Krippendorff alpha "
        f"{stats.krippendorff_alpha:.2f}; {len(state.pending)} item(s) to adjudicate"
    )
    for rater, row in state.rater_quality.iterrows():
        print(
            f"  {rater:<6} estimated accuracy {row['estimated_accuracy']:.2f} (simulated {REVIEWERS[rater]:.2f})"
        )

    if store.roles("root").empty:
        store.grant_role("root", "admin", actor="root")  # the first admin appoints themselves (audited)
        store.grant_role("carol", "adjudicator", actor="root")
        store.grant_role("dana", "fairness-reviewer", actor="root")
    for position in state.pending:
        row_key = int(next(i.row_key for i in store.items(name) if i.position == position))
        store.adjudicate(
            name, position=position, user="carol", label=truth.iloc[row_key], note="checked the file"
        )
    store.sign_off(
        run_id=run_id,
        check="fairness",
        user="dana",
        approve=False,
        note="the synthetic set releases Black arrestees far less often than the real data",
    )

    record = mlflow_hitl.publish_labels(store, name, actor="maya", method="dawid-skene", label_column=TARGET)
    verified = queue_consensus(store, name, method="dawid-skene").verified
    accuracy = (verified["label"] == truth.iloc[verified["row_key"].astype(int)].to_numpy()).mean()
    print(
        f"published snapshot {record['id']}: {record['n_items']} verified labels, "
        f"{accuracy:.0%} match the truth (the sloppy rater alone: {REVIEWERS['sam']:.0%})"
    )
    check = store.verify_audit()
    print(f"audit chain: {'intact' if check.ok else 'BROKEN'}, {check.n_events} events")
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="folder for the SQLite store and artifacts")
    args = parser.parse_args(argv)

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow hints that integer columns cannot hold missing values; this data has none.
    warnings.filterwarnings(
        "ignore", message=r"(?s).*Inferred schema contains integer column", category=UserWarning
    )
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{output / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("hitl-demo")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("hitl-demo", artifact_location=(output / "artifacts").as_uri())
    )

    source, real, production, production_truth = split_real_data()
    # Numbers as floats in the signature, so rows with missing values still pass MLflow's schema check.
    example = real[CATEGORICAL + NUMERIC].head(3).astype({c: "float64" for c in NUMERIC})
    synthetic = naive_generator(source, n_rows=len(source))
    print(
        f"real data: {len(source)} rows for the generator, {len(real)} labelled holdout, {len(production)} production"
    )
    print(
        f"synthetic: {len(synthetic)} rows; released rate for Black arrestees "
        f"{(synthetic[synthetic.colour == 'Black'][TARGET] == 'Yes').mean():.2f} synthetic vs "
        f"{(source[source.colour == 'Black'][TARGET] == 'Yes').mean():.2f} real"
    )

    with mlflow.start_run(experiment_id=experiment_id, run_name="trained-on-synthetic") as run:
        model = train(synthetic)
        mlflow.sklearn.log_model(model, name="model", input_example=example)
        mlflow.log_input(
            mlflow.data.from_pandas(synthetic, name="synthetic-arrests", targets=TARGET), context="training"
        )
        mlflow.log_input(
            mlflow.data.from_pandas(real, name="real-holdout", targets=TARGET), context="validation"
        )
        result = mlflow_hitl.validate(
            model,
            real=real,
            target=TARGET,
            synthetic=synthetic,
            production=production,
            sensitive_features=SENSITIVE,
        )

    print(f"\nHITL status: {result.status.value}")
    for name, check in result.checks.items():
        print(f"  {name:<12} {check.status.value:<22} {check.summary}")
    for name, reason in result.skipped.items():
        print(f"  {name:<12} {'skipped':<22} {reason}")
    print(f"\nEvidence logged to run {run.info.run_id} (metrics hitl.*, artifacts hitl/).")

    queue_name = human_review(model, run.info.run_id, production, production_truth)

    with mlflow.start_run(experiment_id=experiment_id, run_name="retrained-with-verified-labels") as retrain:
        verified = mlflow_hitl.verified_labels(queue_name)  # logged as this run's input: the lineage
        combined = pd.concat([synthetic, verified[synthetic.columns]], ignore_index=True)
        weights = np.r_[
            np.ones(len(synthetic)), np.full(len(verified), 5.0)
        ]  # real, verified rows count more
        retrained = train(combined, sample_weight=weights)
        mlflow.sklearn.log_model(retrained, name="model", input_example=example)
        again = mlflow_hitl.validate(
            retrained,
            real=real,
            target=TARGET,
            sensitive_features=SENSITIVE,
            checks=["calibration", "fairness"],
        )
    before, after = result.checks["calibration"].metrics, again.checks["calibration"].metrics
    print(f"\nretrained with {len(verified)} human-verified rows (run {retrain.info.run_id}):")
    for metric in ("accuracy", "ece", "overconfidence_error"):
        print(f"  {metric:<22} {before[metric]:.3f} -> {after[metric]:.3f}")

    print(f"\nOpen it:  mlflow ui --backend-store-uri {store}")
    print(f"Read first: {output / 'artifacts' / run.info.run_id / 'artifacts' / 'hitl' / 'report.html'}")
    print(f"Audit it:  mlflow-hitl --tracking-uri {store} audit verify")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
