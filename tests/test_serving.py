"""A served model routes its uncertain requests to people: the routed pyfunc in batch scoring and behind
one real ``mlflow models serve`` process, with a review store that goes away and comes back."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from hitl_support import free_port, log_sklearn_model, wait_until_up
from mlflow_hitl.errors import InputError
from mlflow_hitl.review import ReviewStore, Router, RoutingRule
from mlflow_hitl.serving import FeederSettings, log_routed_model

RULE = {"strategy": "least-confidence", "threshold": 0.6, "control_share": 0.05, "seed": 3}


@pytest.fixture(scope="module")
def logged(tmp_path_factory, arrests_split, arrests_model):
    """A tracking store with the arrests model, and the routed model wrapping it (store, spool in tmp)."""
    folder = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("serving", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    _, real, production = arrests_split
    with mlflow.start_run():
        base = log_sklearn_model(arrests_model, real)
    try:
        yield {"folder": folder, "tracking_uri": uri, "base": base.model_uri, "production": production}
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def _expected(model, frame, rule=RULE):
    """The rows the routing rule picks, decided offline from the model's own probabilities."""
    proba = model.predict_proba(frame[list(model.feature_names_in_)])
    return Router(RoutingRule(**rule)).route(proba)


def test_batch_scoring_answers_as_the_model_and_queues_the_uncertain_rows(logged, arrests_model):
    folder = logged["folder"]
    store_uri = f"sqlite:///{folder / 'batch.db'}"
    info = log_routed_model(
        logged["base"],
        queue="batch",
        store_uri=store_uri,
        spool_dir=str(folder / "batch-spool"),
        budget=None,
        **RULE,
    )
    routed = mlflow.pyfunc.load_model(info.model_uri)
    frame = logged["production"]
    answer = routed.predict(frame)
    assert np.array_equal(
        np.asarray(answer), arrests_model.predict(frame[list(arrests_model.feature_names_in_)])
    )
    wrapper = routed.unwrap_python_model()
    assert wrapper.flush()
    expected = _expected(arrests_model, frame)
    store = ReviewStore(store_uri)
    items = store.items("batch")
    assert [i.payload["age"] for i in items] == frame["age"].iloc[expected["row"]].tolist()
    assert [i.reason for i in items] == expected["reason"].tolist()
    assert 0 < (expected["reason"] == "random-control").sum() < len(expected) < len(frame)
    assert [i.prediction for i in items] == list(np.asarray(answer)[expected["row"]])
    stats = wrapper.routing_stats()
    assert (stats["rows"], stats["appended"], stats["dropped"]) == (len(frame), len(expected), 0)
    assert store.queue("batch").run_id == mlflow.models.get_model_info(logged["base"]).run_id


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"store_uri": "postgresql://svc:s3cret@db/hitl"}, "store_uri holds a password"),
        ({"budget": "lots"}, "budget must look like 500/day"),
        ({"strategy": "random"}, "cannot route single requests"),
        ({"id_column": "age"}, "id_column 'age' is one of the model's own inputs"),
        ({"queue": ""}, "queue must be a non-empty name"),
        ({"feeder": {"flush_seconds": 1}}, "feeder must be a FeederSettings"),
        ({"raters_per_item": 0}, "raters_per_item must be a whole number ≥ 1"),
    ],
)
def test_a_routed_model_that_could_not_route_is_refused_when_logged(logged, options, match):
    with pytest.raises(InputError, match=match):
        log_routed_model(logged["base"], **{"queue": "q", **options})


# What MLflow would warn a user about, and nothing else (other warnings do not make this flaky).
_MLFLOW_NAGS = re.compile(
    r"Add type hints to the `predict` method|An input example was not provided when logging the model"
)


def test_the_routed_model_gives_mlflow_nothing_to_warn_about(logged):
    """MLflow warns where a PythonModel's class is defined (on import, and wherever the model loads)
    that ``predict`` has no type hints, and at logging that a signature came without an input example."""
    import importlib.util

    from mlflow_hitl.adapter import serving

    spec = importlib.util.spec_from_file_location("mlflow_hitl.adapter._serving_again", serving.__file__)
    module = importlib.util.module_from_spec(spec)
    warnings.onceregistry.clear()  # MLflow shows its type-hint warning once per process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec.loader.exec_module(module)  # the class defined afresh, as on a first import
        info = log_routed_model(logged["base"], queue="quiet", spool_dir=str(logged["folder"] / "quiet"))
    assert [str(w.message) for w in caught if _MLFLOW_NAGS.search(str(w.message))] == []
    assert (
        info.signature == mlflow.models.get_model_info(logged["base"]).signature
    )  # what is logged, as before


# -- one real `mlflow models serve` --------------------------------------------------------------


@contextlib.contextmanager
def _serve(model_uri, env, log_path, timeout=180.0):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until_up(process, f"{url}/ping", log_path, timeout, "mlflow models serve")
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _invoke(url, frame):
    body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    answer = requests.post(f"{url}/invocations", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def _wait_for(store, queue, n, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            items = store.items(queue)
            if len(items) >= n:
                return items
        time.sleep(0.2)
    return store.items(queue)


def test_mlflow_models_serve_routes_the_uncertain_requests_and_loses_nothing_while_the_store_is_away(
    logged, arrests_model
):
    folder = logged["folder"]
    home = folder / "store"
    home.mkdir()
    store_uri = f"sqlite:///{home / 'hitl.db'}"
    info = log_routed_model(
        logged["base"],
        queue="prod-uncertain",
        budget=None,
        id_column="request_id",
        feeder=FeederSettings(flush_seconds=0.2, retry_seconds=0.5),
        **RULE,
    )
    spool = folder / "serve-spool"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": logged["tracking_uri"],
        "MLFLOW_HITL_STORE_URI": store_uri,
        "MLFLOW_HITL_SPOOL_DIR": str(spool),
        # `mlflow models serve` runs `uvicorn` by name: the one beside this interpreter
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    features = list(arrests_model.feature_names_in_)
    production = logged["production"][features]
    first, second, third = production.iloc[:300], production.iloc[300:600], production.iloc[600:700]
    with _serve(info.model_uri, env, folder / "serve.log") as (url, process):
        # requests of one row and of many, in order
        answers = [_invoke(url, first.iloc[[i]]) for i in range(40)] + [_invoke(url, first.iloc[40:])]
        assert sum(answers, []) == arrests_model.predict(first).tolist()
        expected = _expected(arrests_model, first)
        store = ReviewStore(store_uri)
        items = _wait_for(store, "prod-uncertain", len(expected))
        assert [i.payload["age"] for i in items] == first["age"].iloc[expected["row"]].tolist()
        assert [i.reason for i in items] == expected["reason"].tolist()
        assert [i.prediction for i in items] == arrests_model.predict(first)[expected["row"]].tolist()

        # the store goes away: predictions still come, the routed rows wait in the spool
        home.rename(folder / "store-away")
        started = time.perf_counter()
        assert _invoke(url, second) == arrests_model.predict(second).tolist()
        assert time.perf_counter() - started < 30
        deadline = time.monotonic() + 30
        while not list(spool.glob("*/spool-*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(spool.glob("*/spool-*.jsonl")), "nothing was spooled while the store was away"

        # ... and comes back: everything arrives once; a client's retry (same request ids) is queued once
        (folder / "store-away").rename(home)
        with_ids = third.assign(request_id=[f"client-{i}" for i in range(len(third))])
        for _ in range(2):
            assert _invoke(url, with_ids) == arrests_model.predict(third).tolist()
        whole = pd.concat([first, second, third], ignore_index=True)
        expected = _expected(arrests_model, pd.concat([first, second, third, third], ignore_index=True))
        # a row of the retry is the same request as in the first send: queued once, whichever send picked it
        rows = sorted({r if r < 700 else r - 100 for r in expected["row"]})
        items = _wait_for(store, "prod-uncertain", len(rows))
        assert len(items) == len(rows) == len({i.row_key for i in items})
        assert sorted(i.payload["age"] for i in items) == sorted(whole["age"].iloc[rows].tolist())
        clients = sorted(int(i.row_key.split("-")[1]) for i in items if i.row_key.startswith("client-"))
        assert clients == [r - 600 for r in rows if r >= 600]
        assert not list(spool.glob("*/spool-*.jsonl"))

        process.terminate()
        process.wait(timeout=60)
    log = (folder / "serve.log").read_text()
    assert "review store unavailable" in log and "review store is back" in log


def test_the_cli_wraps_a_registered_model_and_refuses_bad_rules_with_exit_2(logged, arrests_model):
    from click.testing import CliRunner

    from mlflow_hitl.cli import cli

    name = "fraud-serving"
    mlflow.register_model(logged["base"], name)
    args = [
        "--tracking-uri",
        logged["tracking_uri"],
        "serve",
        "wrap",
        f"models:/{name}/1",
        "--queue",
        "cli-q",
    ]
    done = CliRunner().invoke(
        cli, [*args, "--threshold", "0.7", "--budget", "20/hour", "--raters", "2", "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    config = mlflow.pyfunc.load_model(answer["model_uri"]).model_config
    assert (config["queue"], config["threshold"], config["budget"], config["raters_per_item"]) == (
        "cli-q",
        0.7,
        "20/hour",
        2,
    )
    assert config["wrapped_model_uri"] == f"models:/{name}/1"
    refused = CliRunner().invoke(cli, [*args, "--budget", "lots"])
    assert refused.exit_code == 2 and "budget must look like 500/day" in refused.output
    assert "Traceback" not in refused.output


def test_the_routed_model_checks_input_as_the_wrapped_one_and_answers_the_same(
    logged, arrests_model, tmp_path
):
    info = log_routed_model(
        logged["base"], queue="schema", store_uri=f"sqlite:///{tmp_path / 'hitl.db'}", spool_dir=str(tmp_path)
    )
    routed, bare = mlflow.pyfunc.load_model(info.model_uri), mlflow.pyfunc.load_model(logged["base"])
    frame = logged["production"][list(arrests_model.feature_names_in_)].head(50)
    shuffled = frame[frame.columns[::-1]].astype({"age": "int32"})  # columns reordered, a narrower int
    assert routed.predict(shuffled).tolist() == bare.predict(shuffled).tolist()
    for bad in (frame.drop(columns=["age"]), frame.assign(age="old")):
        with pytest.raises(mlflow.exceptions.MlflowException) as refused:
            routed.predict(bad)
        with pytest.raises(mlflow.exceptions.MlflowException) as expected:
            bare.predict(bad)
        assert refused.value.error_code == expected.value.error_code
    routed.unwrap_python_model().flush()
