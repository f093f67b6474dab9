"""Attackers' view of ``mlflow server --app-name hitl``: the session's real server with basic auth of
each backend (shared with other modules), its users, and a raw HTTP client that sends exactly the bytes a
test gives it.

Users: ``admin`` (MLflow's admin), ``eve`` (an ML engineer: MANAGE on every model through basic auth's
default permission, no review-store role), ``rita`` (``release-manager``), ``root`` (review-store
``admin``: sets policies). Every model a test makes has a fresh name, so tests share the server.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
import requests

from mlflow_hitl.gate import parse_policy, policy_hash
from mlflow_hitl.review import ReviewStore

ADMIN = "admin"
PASSWORDS = {
    "admin": "Adm1n-pass-word!",
    "eve": "Eve-pass-word-12",
    "rita": "Rita-pass-word-1",
    "root": "Root-pass-word-1",
}
# champion and gold protected; gold is not in the default policy, so losing the policy shows.
GOLD_POLICY = '[protect]\naliases = ["champion", "gold"]\nstages = ["Production"]\n'
OPEN_POLICY = "[protect]\naliases = []\nstages = []\n"


class Api:
    """Raw requests to the server as one of the users (``None``: no credentials)."""

    def __init__(self, url: str, store: ReviewStore) -> None:
        self.url, self.store = url, store
        self._names = itertools.count()

    def call(self, method: str, route: str, user: str | None = "eve", **kwargs):
        auth = None if user is None else (user, PASSWORDS[user])
        return requests.request(method, f"{self.url}/{route.lstrip('/')}", auth=auth, timeout=60, **kwargs)

    def post(self, route: str, body, user: str | None = "eve"):
        return self.call("POST", route, user, json=body)

    def fresh_name(self, prefix: str = "m") -> str:
        return f"{prefix}-{next(self._names)}-{uuid.uuid4().hex[:6]}"

    def model(self, user: str = "eve", *, tags: dict[str, str] | None = None, name: str | None = None) -> str:
        """A registered model (created through the server by ``user``) with one version; its name."""
        name = name or self.fresh_name()
        body = {"name": name, "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        created = self.post("api/2.0/mlflow/registered-models/create", body, user)
        assert created.status_code == 200, created.text
        self.version(name, user)
        return name

    def run(self, user: str = "eve") -> dict:
        made = self.post("api/2.0/mlflow/runs/create", {"experiment_id": "0"}, user)
        assert made.status_code == 200, made.text
        return made.json()["run"]["info"]

    def version(self, name: str, user: str = "eve", *, tags: dict[str, str] | None = None):
        info = self.run(user)
        body = {
            "name": name,
            "source": f"{info['artifact_uri']}/model",
            "run_id": info["run_id"],
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        return self.post("api/2.0/mlflow/model-versions/create", body, user)

    def set_policy(self, name: str, text: str) -> None:
        self.store.set_policy(name, policy=text, policy_hash=policy_hash(parse_policy(text)), actor="root")

    def alias_version(self, name: str, alias: str) -> str | None:
        got = self.call(
            "GET", "api/2.0/mlflow/registered-models/alias", "admin", params={"name": name, "alias": alias}
        )
        return got.json()["model_version"]["version"] if got.status_code == 200 else None

    def tags(self, name: str, version: str | None = None) -> dict[str, str]:
        if version is None:
            got = self.call("GET", "api/2.0/mlflow/registered-models/get", "admin", params={"name": name})
            tags = got.json()["registered_model"].get("tags", [])
        else:
            got = self.call(
                "GET", "api/2.0/mlflow/model-versions/get", "admin", params={"name": name, "version": version}
            )
            tags = got.json()["model_version"].get("tags", [])
        return {t["key"]: t["value"] for t in tags}

    def events(self, action: str, subject: str | None = None):
        return self.store.audit_events(action=action, subject=subject)


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    """A module that sets ``SERVER_BACKENDS = BACKENDS`` attacks the server of each backend in turn."""
    backends = getattr(metafunc.module, "SERVER_BACKENDS", None)
    if backends and "backend_kind" in metafunc.fixturenames:
        metafunc.parametrize("backend_kind", backends, indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend_kind(request):
    """The backend of the server this module attacks: SQLite unless the module parametrizes it."""
    return getattr(request, "param", "sqlite")


def refused(response, rule: str | None = None) -> None:
    """The guard refused the request (403 PERMISSION_DENIED), naming ``rule`` when given."""
    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    if rule is not None:
        assert f"rule {rule}" in response.json()["message"], response.text


@pytest.fixture(scope="module")
def api(backend_kind, request):
    """The session's shared ``mlflow server --app-name hitl`` of ``backend_kind``, its users and roles."""
    server = request.getfixturevalue(f"hitl_server_{backend_kind}")
    server.users(PASSWORDS)
    server.roles({"rita": ["release-manager"]})
    return Api(server.url, server.store())
