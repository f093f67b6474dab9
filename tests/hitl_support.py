"""What the tests and the benches share: the arrests data and model, fast settings, a lenient gate
policy, a run with real HITL evidence, and a real ``mlflow server --app-name hitl`` on a free port.

Plain functions without pytest, so the ``bench/`` scripts use the same set-up as the tests they time
(they put ``tests/`` on ``sys.path``); ``conftest.py`` turns them into fixtures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Small settings keep the suite fast; each check's own tests cover its defaults.
FAST = {"adversarial": {"max_rows": 300}, "fairness": {"n_bootstrap": 50}, "drift": {"render_report": False}}

ARRESTS_TARGET = "released"
ARRESTS_SENSITIVE = ["colour", "sex"]

# Calibration within a loose bound, one fairness sign-off, the author may not promote.
LENIENT_POLICY = """
[protect]
aliases = ["champion"]
stages = ["Production"]

[checks.calibration]
max = { ece = 0.5 }

[[signoffs]]
check = "fairness"
role = "fairness-reviewer"
count = 1

[duties]
separate = true
"""


def split_arrests(arrests: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(synthetic stand-in, real holdout, production without labels): seeded thirds of the arrests data."""
    order = np.random.default_rng(0).permutation(len(arrests))
    third = len(arrests) // 3
    synthetic = arrests.iloc[order[:third]].reset_index(drop=True)
    real = arrests.iloc[order[third : 2 * third]].reset_index(drop=True)
    production = arrests.iloc[order[2 * third :]].drop(columns=[ARRESTS_TARGET]).reset_index(drop=True)
    return synthetic, real, production


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


def validate_arrests(model: Any, synthetic: pd.DataFrame, real: pd.DataFrame) -> Any:
    """Calibration and fairness evidence of ``model`` on the arrests frames, logged to the active run."""
    import mlflow_hitl

    return mlflow_hitl.validate(
        model,
        real=real,
        target=ARRESTS_TARGET,
        synthetic=synthetic,
        sensitive_features=ARRESTS_SENSITIVE,
        config=FAST,
        checks=["calibration", "fairness"],
    )


def log_sklearn_model(model: Any, real: pd.DataFrame | None = None) -> Any:
    """Log ``model`` to the active run as ``model`` (its signature from two ``real`` rows, if given).

    The requirements are named: MLflow would otherwise infer them by loading the model in a
    subprocess, about 10 s of CPU per model, the largest single cost of the suite.
    """
    import mlflow
    import sklearn

    example = None if real is None else real[list(model.feature_names_in_)].head(2)
    return mlflow.sklearn.log_model(
        model, name="model", input_example=example, pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
    )


def log_model_run(model: Any, real: pd.DataFrame) -> str:
    """An MLflow run (in the current experiment) holding only the model, its signature from real rows."""
    import mlflow

    with mlflow.start_run() as run:
        log_sklearn_model(model, real)
    return run.info.run_id


def validate_split(model: Any, split: Sequence[pd.DataFrame | None], **options: Any) -> Any:
    """``mlflow_hitl.validate`` on the arrests ``(synthetic, real, production)`` split, auditing colour and sex."""
    import mlflow_hitl

    synthetic, real, production = split
    return mlflow_hitl.validate(
        model,
        real=real,
        target=ARRESTS_TARGET,
        synthetic=synthetic,
        production=production,
        sensitive_features=ARRESTS_SENSITIVE,
        **options,
    )


def log_run_with_evidence(
    model: Any,
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    *,
    input_example: bool = True,
    tags: Mapping[str, str] | None = None,
) -> str:
    """An MLflow run (in the current experiment) with the model and its calibration and fairness evidence."""
    import mlflow

    with mlflow.start_run(tags=dict(tags or {})) as run:
        log_sklearn_model(model, real if input_example else None)
        validate_arrests(model, synthetic, real)
    return run.info.run_id


# What MLflow's setters export to the environment besides their module globals.
MLFLOW_STATE_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_HITL_USER",  # the examples name their actor in the environment, as a script does
    "MLFLOW_HITL_STORE_URI",
)


@contextlib.contextmanager
def mlflow_state_restored() -> Iterator[None]:
    """MLflow's tracking URI, registry URI and active experiment after the block as before it.

    ``mlflow.set_tracking_uri`` and ``set_registry_uri`` set module globals and the environment; a test
    that points MLflow at a server would otherwise send the next test's registry calls there.
    """
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    saved = tracking._tracking_uri, registry._registry_uri, fluent._active_experiment_id
    saved_env = {name: os.environ.get(name) for name in MLFLOW_STATE_VARIABLES}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        fluent._active_experiment_id = saved[2]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER_SECRET = "test-secret"  # MLFLOW_FLASK_SERVER_SECRET_KEY of the servers tests start
# MLflow's server also starts a job runner and seven huey consumers for its GenAI jobs (scorers, prompt
# optimisation), which the HITL plugin never uses: each imports mlflow (about 15 s of CPU in all at start-up)
# and the server then needs about 30 s to stop them. The tests' servers run without them.
WITHOUT_MLFLOW_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def basic_auth_env(
    folder: Path,
    store_uri: str,
    *,
    admin: str,
    password: str,
    auth_cache_ttl: int | None = None,
    secret: str = SERVER_SECRET,
) -> dict[str, str]:
    """The environment of a server with MLflow's basic auth (default_permission = MANAGE) and the review store."""
    auth_ini = folder / "auth.ini"
    auth_ini.write_text(
        "[mlflow]\ndefault_permission = MANAGE\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\nadmin_username = {admin}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        + ("" if auth_cache_ttl is None else f"auth_cache_ttl_seconds = {auth_cache_ttl}\n")
    )
    return {
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret,
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_HITL_STORE_URI": store_uri,
    }


def create_users(url: str, users: Mapping[str, str], *, admin: tuple[str, str]) -> None:
    """Create MLflow basic-auth users ``{name: password}`` on the server at ``url``, as ``admin``."""
    import requests

    for user, password in users.items():
        created = requests.post(
            f"{url}/api/2.0/mlflow/users/create",
            json={"username": user, "password": password},
            auth=admin,
            timeout=60,
        )
        if created.status_code != 200:
            raise RuntimeError(f"cannot create user {user}: {created.text}")


def wait_until_up(
    process: subprocess.Popen, health_url: str, log_path: Path, timeout: float, what: str
) -> None:
    """Return once ``health_url`` answers 200; ``RuntimeError`` with the end of the log when ``process``
    exits first or ``timeout`` seconds pass."""
    import requests

    started = time.perf_counter()
    while True:
        with contextlib.suppress(requests.RequestException):  # not up yet, or too busy to answer
            if requests.get(health_url, timeout=1).status_code == 200:
                return
        if process.poll() is not None or time.perf_counter() - started > timeout:
            raise RuntimeError(f"{what} did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.25)


@contextlib.contextmanager
def mlflow_hitl_server(
    backend: str,
    *,
    artifacts: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float = 120.0,
    options: Sequence[str] = (),
) -> Iterator[str]:
    """``mlflow server --app-name hitl`` (one worker, and ``options``) on 127.0.0.1 and a free port; yields its URL.

    Raises ``RuntimeError`` with the end of the server's log when it exits or is not healthy in time.
    """

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--app-name",
                "hitl",
                "--backend-store-uri",
                backend,
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                *options,
            ],
            # The server's own key and anchors (docs/security.md) in the test's folder, never the real home.
            env={**env, "MLFLOW_HITL_SERVER_HOME": str(server_home(log_path.parent))},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            wait_until_up(process, f"{url}/health", log_path, timeout, "mlflow server")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def server_home(folder: Path) -> Path:
    """Where a server started by :func:`mlflow_hitl_server` with its log in ``folder`` keeps its key and anchors."""
    return folder / "server-home"


def server_key_env(folder: Path, store_uri: str) -> dict[str, str]:
    """The settings of a process given that server's audit key and anchor log (an auditor, a test that
    writes to or decides on its review store directly): without them its events would break the chain."""
    from mlflow_hitl.adapter.server_home import ANCHORS_FILE_NAME, KEY_FILE_NAME, store_folder
    from mlflow_hitl.review import ANCHOR_PATH_ENV, KEY_FILE_ENV

    state = store_folder(server_home(folder), store_uri)
    return {KEY_FILE_ENV: str(state / KEY_FILE_NAME), ANCHOR_PATH_ENV: str(state / ANCHORS_FILE_NAME)}


def server_store(folder: Path, store_uri: str) -> Any:
    """That server's review store opened with its key and anchor log, as an operator holding them would."""
    from mlflow_hitl.review import AuditKeyring, FileAnchorLog, ReviewStore

    env = server_key_env(folder, store_uri)
    return ReviewStore(store_uri, keyring=AuditKeyring.from_env(env), anchor_log=FileAnchorLog.from_env(env))


@contextlib.contextmanager
def postgres_database(server: Mapping[str, Any]) -> Iterator[str]:
    """A fresh, empty database on a running PostgreSQL ``server`` ({host, port}); yields its URL, drops it after."""
    import uuid

    import psycopg

    name = f"hitl_{uuid.uuid4().hex[:12]}"
    dsn = f"host={server['host']} port={server['port']} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclasses.dataclass
class SharedServer:
    """One ``mlflow server --app-name hitl`` with basic auth that several test modules share.

    Starting a server costs tens of seconds, so the session starts one per backend and modules share it:
    each module names its models freshly (:func:`unique_name`) and asks for the users it needs with
    :meth:`users`. ``backend`` is the MLflow store; ``store_uri`` the review store (same kind of database).
    """

    kind: str
    url: str
    backend: str
    store_uri: str
    folder: Path
    admin: tuple[str, str]
    _passwords: dict[str, str] = dataclasses.field(default_factory=dict)

    def users(self, passwords: Mapping[str, str]) -> None:
        """Make sure these basic-auth users exist (a name asked for twice must have the same password)."""
        missing = {}
        for user, password in passwords.items():
            if user == self.admin[0]:
                continue
            known = self._passwords.get(user)
            if known is not None and known != password:
                raise RuntimeError(f"the shared server already has {user} with another password")
            if known is None:
                missing[user] = password
        create_users(self.url, missing, admin=self.admin)
        self._passwords.update(missing)

    @property
    def key_env(self) -> dict[str, str]:
        """The settings that give a process this server's audit key and anchor log (:func:`server_key_env`)."""
        return server_key_env(self.folder, self.store_uri)

    def store(self) -> Any:
        """The server's review store opened with its key and anchor log (:func:`server_store`)."""
        return server_store(self.folder, self.store_uri)

    def roles(self, wanted: Mapping[str, Sequence[str]]) -> None:
        """Make sure each user holds these review-store roles, granted by ``root`` (the store's first admin)."""
        store = self.store()
        try:
            for user, roles in {"root": ["admin"], **wanted}.items():
                held = set(store.roles(user)["role"])
                for role in roles:
                    if role not in held:
                        store.grant_role(user, role, actor="root")
        finally:
            store.close()


def unique_name(prefix: str) -> str:
    """A registered-model name no other test on a shared server uses."""
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def shared_server(
    kind: str, folder: Path, backend: str, store_uri: str, *, timeout: float = 120.0
) -> Iterator[SharedServer]:
    """Start the session's server of one backend ``kind`` (see :class:`SharedServer`), or a test's own."""
    admin = ("admin", "Adm1n-pass-word!")
    # Checking a password hash costs a good fraction of a second of CPU per request; basic auth's
    # credential cache (auth_cache_ttl_seconds) spares every request after a user's first.
    env = {
        **os.environ,
        **basic_auth_env(folder, store_uri, admin=admin[0], password=admin[1], auth_cache_ttl=600),
        **WITHOUT_MLFLOW_JOBS,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    with mlflow_hitl_server(
        backend, artifacts=folder / "artifacts", env=env, log_path=folder / "server.log", timeout=timeout
    ) as url:
        yield SharedServer(kind, url, backend, store_uri, folder, admin)


# -- a generator audit with simulated raters ----------------------------------------------------------

TELL = "astronaut"  # an occupation the real data never has


def real_rows(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], n),
            "race": rng.choice(["A", "B", "C"], n),
            "age": rng.integers(18, 80, n),
            "occupation": rng.choice(["clerk", "nurse", "driver", "teacher"], n),
        }
    )


def resampled(real: pd.DataFrame, n: int = 600, seed: int = 1) -> pd.DataFrame:
    """An indistinguishable generator: its rows are real rows drawn again."""
    return real.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def leaking(real: pd.DataFrame, group: str = "B") -> pd.DataFrame:
    """A generator that leaks a tell in one race group only."""
    synthetic = resampled(real)
    synthetic.loc[synthetic["race"] == group, "occupation"] = TELL
    return synthetic


def simulated_answer(
    row: Mapping[str, Any], rng: np.random.Generator, *, spots_tell: bool
) -> tuple[str, list[str], str | None]:
    """``(label, reason tags, note)`` of one simulated rater: at random (30 % "not realistic") whatever the
    row, except that a rater who spots the tell always flags a row that shows it, and says why."""
    if spots_tell and row["occupation"] == TELL:
        return "not realistic", ["implausible-combination"], "odd job"
    if rng.random() < 0.3:
        return "not realistic", ["other"], None
    return "realistic", [], None


def answer(
    store: Any, name: str, *, spots_tell: bool, raters: Sequence[str] = ("ann", "bob"), seed: int = 0
) -> None:
    """Every rater answers every item of generator-audit queue ``name`` (see :func:`simulated_answer`)."""
    from mlflow_hitl.review import AnnotationRecord, audit_comment

    rng = np.random.default_rng(seed)
    records = []
    for item in store.items(name):
        for rater in raters:
            label, tags, note = simulated_answer(item.payload, rng, spots_tell=spots_tell)
            records.append(
                AnnotationRecord(
                    position=item.position, user=rater, label=label, comment=audit_comment(tags, note)
                )
            )
    store.import_annotations(name, records, actor="lead", source="csv")
