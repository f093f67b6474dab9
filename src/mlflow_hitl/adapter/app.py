"""The tracking-server plugin: ``mlflow server --app-name hitl``, the security boundary of the gates.

MLflow's server with its basic-auth app (every request authenticated) plus one guard in front of
every registry write route (REST and the UI's ajax API, whatever prefix Flask routes), reading each
request exactly as MLflow's handler will (:mod:`.routes`) and applying the rules of :mod:`.guard`:

- setting a protected alias, or moving a version to a protected stage, is refused with 403
  ``PERMISSION_DENIED`` and the unmet requirements while the version's gate does not pass;
- ``hitl.*`` tags are refused everywhere (set, deleted, given at creation): only the server
  itself records gate decisions; the prompt flag is fixed at creation, and prompts are exempt
  only on facts the server recorded;
- taking a protected alias or stage away needs the release role; renames that change the policy
  in force need an admin, and the policy follows the model;
- every refusal names its rule and is audited with the authenticated user as actor.

Once MLflow has accepted a write, the server records who did it (:mod:`.identity`: the creators of
runs, registered models and model versions), and audits renames and deletions.

It also serves the review store under ``/hitl/api/`` (:mod:`.api`, listed in ``docs/api.md``) and the
pages under ``/hitl/`` (:mod:`.pages`): every human action (labels, sign-offs, roles, evidence
registration) acting as the authenticated user, never as a name in the request body.

Run it with the same settings MLflow's basic-auth needs (``MLFLOW_FLASK_SERVER_SECRET_KEY``,
``MLFLOW_AUTH_ADMIN_PASSWORD`` the first time, optionally ``MLFLOW_AUTH_CONFIG_PATH``) and, if the
review store is not the backend database or beside it, ``MLFLOW_HITL_STORE_URI``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["WORKSPACES_REFUSED", "create_app", "workspaces_enabled"]

# Policies, creation records and gate records are keyed by model name: with MLflow's workspaces, two
# workspaces' models of one name would share them (one team's policy, author or gate record for the other's).
WORKSPACES_REFUSED = (
    "mlflow-hitl does not run with MLflow workspaces (--enable-workspaces, MLFLOW_ENABLE_WORKSPACES): its "
    "gate policies and records are keyed by model name, which models of one name in two workspaces would "
    "share; this server refuses every request until it is started without workspaces"
)


def _review_store() -> Any:
    from .review import default_store_uri, shared_store

    return shared_store(default_store_uri())


def _denied(message: str) -> Any:
    from flask import jsonify

    response = jsonify({"error_code": "PERMISSION_DENIED", "message": message})
    response.status_code = 403
    return response


def _actor() -> str:
    """The authenticated user, or ``anonymous`` in audit records of a request nobody authenticated."""
    try:
        return _authenticated_user()
    except PermissionError:
        return "anonymous"


def _route_table() -> Any:
    from flask import current_app

    from .routes import RouteTable

    table = current_app.config.get("MLFLOW_HITL_ROUTES")
    if table is None:
        table = current_app.config["MLFLOW_HITL_ROUTES"] = RouteTable()
    return table


def _guard() -> Any:
    """Runs before every request, after basic-auth has authenticated and authorized it.

    The request's registry write, read as MLflow's handler will read it, passes the rules of
    :mod:`.guard` or is refused with 403 naming the rule (audited with the authenticated user).
    """
    from flask import current_app, g, request
    from mlflow.server.handlers import _get_model_registry_store

    from ..errors import HitlError
    from .gate import GateBlockedError
    from .guard import GuardRefusedError, check

    handler = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if handler is None:
        return None  # Flask answers an unrouted request (404, 405, a redirect) without a handler
    if request.method == "OPTIONS" and getattr(request.url_rule, "provide_automatic_options", False):
        return None  # Flask answers it, the handler never runs
    route = f"{request.method} {request.path}"
    try:
        write = _route_table().write_of(handler)
        if write is None:
            return None
        g.mlflow_hitl_write = write
        check(write, store=_review_store(), registry=_get_model_registry_store(), actor=_actor(), route=route)
    except GateBlockedError as exc:
        return _denied(str(exc))
    except GuardRefusedError as exc:
        if getattr(g, "mlflow_hitl_write", None) is None:  # refused before it was read: audit it here
            _review_store().record_event(
                actor=_actor(),
                action="guard.refused",
                subject=f"route:{request.path}",
                payload={"rule": exc.rule, "route": route, "message": str(exc)},
            )
        return _denied(str(exc))
    except HitlError as exc:
        return _denied(f"the HITL guard could not decide {route}: {exc}")
    return None


def _after(response: Any) -> Any:
    """Record what a registry write (or a run creation) that MLflow accepted means, as the authenticated user."""
    from flask import current_app, g, request

    from ..errors import HitlError
    from .guard import after
    from .identity import record_run_created

    write = getattr(g, "mlflow_hitl_write", None)
    creates_run = write is None and _route_table().creates_run(
        current_app.view_functions.get(request.endpoint) if request.endpoint else None
    )
    if response.status_code != 200 or (write is None and not creates_run):
        return response
    body = response.get_json(silent=True) or {}
    try:
        if creates_run:
            record_run_created(_review_store(), run_id=body["run"]["info"]["run_id"], user=_actor())
        else:
            after(write, body.get("model_version") or {}, store=_review_store(), actor=_actor())
    except (HitlError, KeyError, TypeError) as exc:  # MLflow has acted: say what was not recorded
        logging.getLogger(__name__).error(
            "mlflow-hitl could not record %s by %s: %s", request.path, _actor(), exc
        )
    return response


def _authenticated_user() -> str:
    from flask import g, request

    user = getattr(g, "mlflow_authenticated_user", None) or (
        request.authorization.username if request.authorization else None
    )
    if not user:  # basic-auth answers 401 before this; a custom auth function might not
        raise PermissionError("no authenticated user")
    return str(user)


def _use_server_stores() -> None:
    """Point this process's MLflow client at the server's own backend stores."""
    import mlflow
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    backend = os.environ.get(BACKEND_STORE_URI_ENV_VAR)
    if backend:
        mlflow.set_tracking_uri(backend)
        mlflow.set_registry_uri(os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or backend)


def workspaces_enabled() -> bool:
    """Whether this MLflow server runs with workspaces (``mlflow server`` sets the variable from its flag)."""
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES

    return bool(MLFLOW_ENABLE_WORKSPACES.get())


def _refuse_workspaces() -> Any:
    from flask import jsonify

    response = jsonify({"error_code": "INVALID_STATE", "message": WORKSPACES_REFUSED})
    response.status_code = 503
    return response


def create_app() -> Any:
    """The app factory ``mlflow server --app-name hitl`` calls: basic-auth first, then the HITL guard.

    With workspaces on, the server serves nothing (fail closed, one line in its log): a worker that
    failed to start would be started again by uvicorn, over and over.
    """
    from mlflow.server import app as flask_app
    from mlflow.server.auth import bootstrap_admin_user
    from mlflow.server.auth import create_app as with_basic_auth

    from . import start_walk
    from .api import register_api
    from .pages import register_pages

    if workspaces_enabled():
        logging.getLogger(__name__).error("%s", WORKSPACES_REFUSED)
        flask_app.before_request(_refuse_workspaces)  # before basic-auth's own: every request, first
        return with_basic_auth(flask_app)
    _use_server_stores()
    _key_and_anchors()
    bootstrap_admin_user()  # MLflow's server does this only for --app-name basic-auth
    served = with_basic_auth(flask_app)
    # Registered after basic-auth's own check, so every request is authenticated first.
    flask_app.before_request(_guard)
    flask_app.after_request(_after)
    register_api(flask_app)
    register_pages(flask_app)
    start_walk.start(_review_store)  # the first gate decision then need not walk the whole chain
    return served


def _key_and_anchors() -> None:
    """Key and anchor the audit chain: the operator's key and anchor log, else the server's own
    (:mod:`.server_home`), before any store is opened; start-up says which, and where (docs/security.md)."""
    from ..review import AuditKeyring
    from .review import default_store_uri
    from .server_home import use_server_home

    use_server_home(default_store_uri())
    AuditKeyring.from_env()  # a key that cannot be read fails the start, not every request
