"""The tracking-server plugin: ``mlflow server --app-name hitl``, the security boundary of the gates.

MLflow's server with its basic-auth app (every request authenticated) plus one guard in front of
the registry's write routes, over the REST API and the UI's ajax API alike:

- setting a protected alias, or moving a version to a protected stage, is refused with 403
  ``PERMISSION_DENIED`` and the unmet requirements while the version's gate does not pass;
  refusals are audited with the authenticated user as actor;
- writing or deleting ``hitl.*`` tags is refused: only the server itself records gate decisions.

It also serves the human actions that must carry a verified identity, acting as the authenticated
user (never as a name in the request body):

- ``POST /api/2.0/mlflow-hitl/signoffs`` ``{run_id, check, approve, note}``: a sign-off;
- ``POST /api/2.0/mlflow-hitl/roles`` ``{user, role, grant}``: grant or revoke a role (admins only).

Run it with the same settings MLflow's basic-auth needs (``MLFLOW_FLASK_SERVER_SECRET_KEY``,
``MLFLOW_AUTH_ADMIN_PASSWORD`` the first time, optionally ``MLFLOW_AUTH_CONFIG_PATH``) and, if the
review store is not the backend database or beside it, ``MLFLOW_HITL_STORE_URI``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["create_app"]

_ALIAS = "/mlflow/registered-models/alias"
_STAGE = "/mlflow/model-versions/transition-stage"
_TAG_ROUTES = (
    "/mlflow/model-versions/set-tag",
    "/mlflow/model-versions/delete-tag",
    "/mlflow/registered-models/set-tag",
    "/mlflow/registered-models/delete-tag",
)
_API = "/api/2.0/mlflow-hitl"


def _review_store() -> Any:
    from .review import default_store_uri, shared_store

    return shared_store(default_store_uri())


def _denied(message: str) -> Any:
    from flask import jsonify

    response = jsonify({"error_code": "PERMISSION_DENIED", "message": message})
    response.status_code = 403
    return response


def _parameters() -> dict[str, Any]:
    from flask import request

    body = request.get_json(silent=True) if request.data else None
    return {**request.args.to_dict(), **(body if isinstance(body, dict) else {})}


def _is_prompt(name: str) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.server.handlers import _get_model_registry_store
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    from .registry_store import is_prompt

    store = _get_model_registry_store()
    if not isinstance(store, SqlAlchemyStore):
        return False
    try:
        return is_prompt(store, name)
    except MlflowException:
        return False  # let MLflow answer for an unknown model


def _guard() -> Any:
    """Runs before every request, after basic-auth has authenticated it."""
    from flask import request

    from ..errors import HitlError
    from .gate import GateBlockedError, enforce

    path = request.path.rstrip("/")
    if path.endswith(_TAG_ROUTES):
        key = str(_parameters().get("key", ""))
        if key.startswith("hitl."):
            return _denied(
                f"tag {key!r} is written by the mlflow-hitl server only: hitl.* tags record gate decisions"
            )
        return None
    if request.method == "POST" and path.endswith(_ALIAS):
        params = _parameters()
        target = f"alias:{params.get('alias', '')}"
    elif request.method == "POST" and path.endswith(_STAGE):
        params = _parameters()
        target = f"stage:{params.get('stage', '')}"
    else:
        return None
    name, version = str(params.get("name", "")), str(params.get("version", ""))
    if not name or not version:
        return None  # MLflow itself reports missing parameters
    actor = request.authorization.username if request.authorization else "anonymous"
    try:
        enforce(name, version, target, store=_review_store(), actor=actor, exempt=lambda: _is_prompt(name))
    except GateBlockedError as exc:
        return _denied(str(exc))
    except HitlError as exc:
        return _denied(f"the HITL gate of {name} version {version} could not be evaluated: {exc}")
    return None


def _authenticated_user() -> str:
    from flask import g, request

    user = getattr(g, "mlflow_authenticated_user", None) or (
        request.authorization.username if request.authorization else None
    )
    if not user:  # basic-auth answers 401 before this; a custom auth function might not
        raise PermissionError("no authenticated user")
    return str(user)


def _answer(action: Any) -> Any:
    """Run a store action for the authenticated user and map our errors onto MLflow's error JSON."""
    from flask import jsonify

    from ..errors import HitlError, NotFoundError, PermissionDeniedError

    try:
        return jsonify(action(_authenticated_user()))
    except (PermissionDeniedError, PermissionError) as exc:
        return _denied(str(exc))
    except HitlError as exc:
        code, status = (
            ("RESOURCE_DOES_NOT_EXIST", 404)
            if isinstance(exc, NotFoundError)
            else ("INVALID_PARAMETER_VALUE", 400)
        )
        response = jsonify({"error_code": code, "message": str(exc)})
        response.status_code = status
        return response


def _signoff() -> Any:
    params = _parameters()

    def sign(user: str) -> dict[str, Any]:
        from .logging import resolve_run_id

        resolve_run_id(str(params.get("run_id", "")) or None)
        record = _review_store().sign_off(
            run_id=str(params.get("run_id", "")),
            check=str(params.get("check", "")),
            user=user,
            approve=params.get("approve") is True,
            note=params.get("note"),
        )
        return {"signoff": record}

    return _answer(sign)


def _role() -> Any:
    params = _parameters()

    def change(actor: str) -> dict[str, Any]:
        store = _review_store()
        member, role = str(params.get("user", "")), str(params.get("role", ""))
        if params.get("grant", True) is False:
            store.revoke_role(member, role, actor=actor)
        else:
            store.grant_role(member, role, actor=actor)
        return {"user": member, "role": role, "granted": params.get("grant", True) is not False, "by": actor}

    return _answer(change)


def _use_server_stores() -> None:
    """Point this process's MLflow client at the server's own backend stores."""
    import mlflow
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    backend = os.environ.get(BACKEND_STORE_URI_ENV_VAR)
    if backend:
        mlflow.set_tracking_uri(backend)
        mlflow.set_registry_uri(os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or backend)


def create_app() -> Any:
    """The app factory ``mlflow server --app-name hitl`` calls: basic-auth first, then the HITL guard."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import bootstrap_admin_user
    from mlflow.server.auth import create_app as with_basic_auth

    _use_server_stores()
    bootstrap_admin_user()  # MLflow's server does this only for --app-name basic-auth
    served = with_basic_auth(flask_app)
    # Registered after basic-auth's own check, so every request is authenticated first.
    flask_app.before_request(_guard)
    flask_app.add_url_rule(f"{_API}/signoffs", "mlflow_hitl_signoff", _signoff, methods=["POST"])
    flask_app.add_url_rule(f"{_API}/roles", "mlflow_hitl_role", _role, methods=["POST"])
    _declare_self_authorizing(f"{_API}/signoffs", f"{_API}/roles")
    return served


def _declare_self_authorizing(*routes: str) -> None:
    """Tell basic-auth that our handlers authorize internally (the store checks roles).

    basic-auth refuses authenticated non-admins on routes it has no validator for ("fail closed").
    It keeps the routes whose handlers authorize themselves in a private tuple; there is no public
    hook, so we extend that tuple and fail loudly if a future MLflow renames it.
    """
    from mlflow.server import auth

    suffixes = getattr(auth, "_HANDLER_INTERNAL_AUTHZ_SUFFIXES", None)
    if not isinstance(suffixes, tuple):
        raise RuntimeError(
            "this MLflow's basic-auth has no _HANDLER_INTERNAL_AUTHZ_SUFFIXES; update mlflow-hitl"
        )
    own = tuple(route[len("/api/2.0") :] for route in routes)
    auth._HANDLER_INTERNAL_AUTHZ_SUFFIXES = suffixes + tuple(r for r in own if r not in suffixes)
