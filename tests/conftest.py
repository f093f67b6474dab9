"""Shared fixtures: a real MLflow SQLite store per test, and real data that ships offline."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from hitl_support import (  # noqa: F401 (the tests import these from here)
    ARRESTS_SENSITIVE,
    ARRESTS_TARGET,
    FAST,
    LENIENT_POLICY,
    free_port,
    log_run_with_evidence,
    make_arrests_model,
    mlflow_state_restored,
    postgres_database,
    shared_server,
    split_arrests,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///:memory:")  # never the user's ./mlruns
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture(autouse=True)
def _mlflow_state_restored():
    """No test leaves MLflow pointed at its store or server for the next one."""
    with mlflow_state_restored():
        yield


@pytest.fixture(autouse=True)
def _fresh_reuse_store():
    """Each test computes its own data-only checks: a result stored by an earlier test is not reused."""
    from mlflow_hitl import _reuse

    _reuse.clear()


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, its schema created by MLflow's own migrations once for the session.

    Migrating a new store costs about a second of CPU, and a hundred tests each want a fresh one: they get
    a copy of this file, the database MLflow itself leaves after creating a store (its ``Default``
    experiment's artifacts under this folder; the tests log to an experiment of their own).
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("empty-mlflow-store")
    store = SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri())
    store.engine.dispose()
    return folder / "mlflow.db"


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch, empty_mlflow_db):
    """A fresh SQLite tracking + registry store with artifacts under tmp_path, made current."""
    shutil.copyfile(empty_mlflow_db, tmp_path / "mlflow.db")
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


@pytest.fixture(scope="session")
def arrests_split(arrests):
    """(synthetic stand-in, real holdout, production) from the arrests data, seeded."""
    return split_arrests(arrests)


@pytest.fixture(scope="session")
def arrests_model(arrests_split):
    synthetic, _, _ = arrests_split
    return make_arrests_model(synthetic)


# -- a real PostgreSQL server, started by the tests ---------------------------------------------


def _pg_binary(name: str) -> str:
    import glob
    import shutil

    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed; .ci/run installs it (apt-get install postgresql)"
        )
    return found


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on 127.0.0.1 and a free port, for the whole session.

    initdb refuses to run as root, so as root the server runs as the ``postgres`` user.
    """
    import shutil
    import subprocess
    import tempfile

    base = tempfile.mkdtemp(prefix="hitl-pg-")
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), free_port()
    subprocess.run(
        [*as_owner, _pg_binary("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -h 127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run(
        [
            *as_owner,
            _pg_binary("pg_ctl"),
            "-D",
            data,
            "-o",
            options,
            "-l",
            os.path.join(base, "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        subprocess.run(
            [*as_owner, _pg_binary("pg_ctl"), "-D", data, "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server, dropped afterwards."""
    with postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The review store's URL on each backend: a SQLite file, and a database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hitl.db'}"
    return request.getfixturevalue("postgres_url")


# -- one real `mlflow server --app-name hitl` per backend, shared by the modules that need one ---------


@pytest.fixture(scope="session")
def hitl_server_sqlite(tmp_path_factory):
    """The session's server on SQLite (MLflow store and review store); see ``hitl_support.SharedServer``."""
    folder = tmp_path_factory.mktemp("shared-server-sqlite")
    with shared_server(
        "sqlite", folder, f"sqlite:///{folder / 'mlflow.db'}", f"sqlite:///{folder / 'hitl.db'}"
    ) as server:
        yield server


@pytest.fixture(scope="session")
def hitl_server_postgresql(tmp_path_factory, postgres_server):
    """The session's server on PostgreSQL: the MLflow store and the review store each a database on it."""
    folder = tmp_path_factory.mktemp("shared-server-postgresql")
    with (
        postgres_database(postgres_server) as backend,
        postgres_database(postgres_server) as store_uri,
        shared_server("postgresql", folder, backend, store_uri) as server,
    ):
        yield server


# -- one headless Chromium per session, for the web pages and the dossier's print check ----------------


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (Debian's package; no Playwright browser download)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is not installed: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


# -- one local Spark session per test run, for the Spark path ------------------------------------------


@pytest.fixture(scope="session")
def spark():
    """One ``local[2]`` Spark session for the run (Java from ``make java``); small shuffles, no UI."""
    if shutil.which("java") is None:
        pytest.fail("Java is not installed: run `make java` (apt-get install default-jre-headless)")
    from pyspark.sql import SparkSession

    # The Python workers use this venv's libraries (the model's scikit-learn among them).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("mlflow-hitl-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
