"""The second attack on the server: ways around found, each now refused, on SQLite and PostgreSQL.

As the engineer ``eve`` (MANAGE on every model and run, no review-store role), through the real server
only: the artifact proxy, ``/hitl/api/`` and MLflow's registry routes.
"""

import json

import pytest

from .conftest import BACKENDS

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

REGISTER = "hitl/api/evidence/register"


def _upload(api, run: dict, path: str, text: str, user: str = "eve") -> None:
    """Write one file into ``run``'s artifacts through the server's artifact proxy."""
    folder = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    put = api.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{folder}/{path}", user, data=text)
    assert put.status_code == 200, put.text


# ``..`` spelled so that the run id stays the first segment: the artifact store decodes it after the check.
TRAVERSALS = [
    "runs:/{run}/%2e%2e/%2e%2e/{other}/artifacts/model",
    "runs:/{run}/%2E%2E/%2E%2E/{other}/artifacts/model",
    "runs:/{run}/%252e%252e/%252e%252e/{other}/artifacts/model",
    "runs:/{run}/.%2e/%2e./{other}/artifacts/model",
    "runs:/{run}/..%2f..%2f{other}%2fartifacts%2fmodel",
    "runs:/{run}/model/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/proc/self",
]


def test_evidence_registration_never_hashes_files_outside_the_run(api):
    """A percent-encoded ``..`` in the evaluated model's URI would have the server hash another run's
    model (then recorded as what the run evaluated) or any folder on its disk; it is refused."""
    mine, other = api.run("eve"), api.run("admin")
    _upload(api, mine, "hitl/summary.json", json.dumps({"manifest": {}, "details": {}}))
    _upload(api, other, "model/MLmodel", "flavors: {}\n", "admin")
    for uri in TRAVERSALS:
        model_uri = uri.format(run=mine["run_id"], other=other["run_id"])
        answer = api.post(REGISTER, {"run_id": mine["run_id"], "model_uri": model_uri})
        assert answer.status_code == 200, answer.text  # registered, with no evaluated model on record
        registration = answer.json()["registration"]
        assert registration["model_sha256"] is None, model_uri
        assert "is not a model of run" in registration["model_problem"], registration
    # The run's own model is still hashed.
    _upload(api, mine, "model/MLmodel", "flavors: {}\n")
    own = api.post(REGISTER, {"run_id": mine["run_id"], "model_uri": f"runs:/{mine['run_id']}/model"})
    assert own.json()["registration"]["model_sha256"], own.text
