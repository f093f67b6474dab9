"""Shared fixtures: a real MLflow SQLite store per test, and real data that ships offline."""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///:memory:")  # never the user's ./mlruns
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh SQLite tracking + registry store with artifacts under tmp_path, made current."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment_id = mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="session")
def arrests() -> pd.DataFrame:
    from sklego.datasets import load_arrests

    return load_arrests(as_frame=True)


ARRESTS_TARGET = "released"
ARRESTS_SENSITIVE = ["colour", "sex"]


def make_arrests_model(train: pd.DataFrame):
    """A real scikit-learn pipeline on the arrests features (categoricals one-hot encoded)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = [c for c in train.columns if c != ARRESTS_TARGET]
    categorical = [c for c in features if train[c].dtype == object]
    numeric = [c for c in features if c not in categorical]
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), categorical), (StandardScaler(), numeric)
        ),
        LogisticRegression(max_iter=1000),
    )
    return model.fit(train[features], train[ARRESTS_TARGET])


@pytest.fixture(scope="session")
def arrests_split(arrests):
    """(synthetic stand-in, real holdout, production) from the arrests data, seeded."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(arrests))
    third = len(arrests) // 3
    synthetic = arrests.iloc[order[:third]].reset_index(drop=True)
    real = arrests.iloc[order[third : 2 * third]].reset_index(drop=True)
    production = arrests.iloc[order[2 * third :]].drop(columns=[ARRESTS_TARGET]).reset_index(drop=True)
    return synthetic, real, production


@pytest.fixture(scope="session")
def arrests_model(arrests_split):
    synthetic, _, _ = arrests_split
    return make_arrests_model(synthetic)
