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
logs the evidence to the same run. Run it with ``make demo`` (or ``python examples/arrests_demo.py``).
"""

from __future__ import annotations

import argparse
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


def split_real_data(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(generator source, labelled real holdout, unlabelled production) from the arrests data.

    Production rows are the newest years (2001-2002), so the model also meets time drift.
    """
    arrests = load_arrests(as_frame=True)
    production = arrests[arrests["year"] >= 2001].drop(columns=[TARGET]).reset_index(drop=True)
    past = arrests[arrests["year"] < 2001].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cut = int(len(past) * 0.6)
    return past.iloc[:cut].reset_index(drop=True), past.iloc[cut:].reset_index(drop=True), production


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


def train(synthetic: pd.DataFrame):
    features = CATEGORICAL + NUMERIC
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL), (StandardScaler(), NUMERIC)
        ),
        LogisticRegression(max_iter=1000),
    )
    return model.fit(synthetic[features], synthetic[TARGET])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="folder for the SQLite store and artifacts")
    args = parser.parse_args(argv)

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

    source, real, production = split_real_data()
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
        mlflow.sklearn.log_model(model, name="model", input_example=real[CATEGORICAL + NUMERIC].head(3))
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
    print(f"Open it:  mlflow ui --backend-store-uri {store}")
    print(f"Read first: {output / 'artifacts' / run.info.run_id / 'artifacts' / 'hitl' / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
