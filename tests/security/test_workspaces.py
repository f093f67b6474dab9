"""``mlflow server --app-name hitl --enable-workspaces``: refused, since policies and gate records are keyed
by model name and same-named models of two workspaces would share them (docs/security.md).

A real server started with the flag: its log says why in one line, and every request through its Flask
app (all of MLflow's REST and UI routes, the registry writes the guard would have judged included, and
``/hitl/``) is answered 503 with that line. MLflow's own ``/health`` still answers.
"""

import os

import pytest
import requests

from hitl_support import WITHOUT_MLFLOW_JOBS, basic_auth_env, mlflow_hitl_server
from mlflow_hitl.adapter.app import WORKSPACES_REFUSED

pytestmark = pytest.mark.security

ADMIN = ("admin", "Adm1n-pass-word!")


def test_a_server_with_workspaces_serves_nothing_and_says_why(tmp_path):
    env = {
        **os.environ,
        **basic_auth_env(tmp_path, f"sqlite:///{tmp_path / 'hitl.db'}", admin=ADMIN[0], password=ADMIN[1]),
        **WITHOUT_MLFLOW_JOBS,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_ENABLE_WORKSPACES", None)
    log = tmp_path / "server.log"
    with mlflow_hitl_server(
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifacts=tmp_path / "artifacts",
        env=env,
        log_path=log,
        options=["--enable-workspaces"],
    ) as url:
        for method, route, body in (
            ("POST", "api/2.0/mlflow/registered-models/create", {"name": "fraud"}),
            (
                "POST",
                "api/2.0/mlflow/registered-models/alias",
                {"name": "fraud", "alias": "champion", "version": "1"},
            ),
            ("GET", "api/2.0/mlflow/registered-models/search", None),
            ("POST", "hitl/api/signoffs/create", {"run_id": "r", "check": "release", "approve": True}),
            ("GET", "hitl/", None),
        ):
            answer = requests.request(method, f"{url}/{route}", json=body, auth=ADMIN, timeout=60)
            assert answer.status_code == 503, (route, answer.text)
            assert answer.json()["message"] == WORKSPACES_REFUSED
    assert log.read_text().count(WORKSPACES_REFUSED) == 1
    assert not (tmp_path / "hitl.db").exists()  # the review store was never opened
