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

It also serves the human actions that must carry a verified identity, acting as the authenticated
user (never as a name in the request body):

- ``POST /api/2.0/mlflow-hitl/signoffs`` ``{run_id, check, approve, note}``: a sign-off;
- ``POST /api/2.0/mlflow-hitl/roles`` ``{user, role, grant}``: grant or revoke a role (admins only).

The pages under ``/hitl/`` (:mod:`.pages`) and the review API under ``/hitl/api/`` (:mod:`.api`)
act as the authenticated user too.

Run it with the same settings MLflow's basic-auth needs (``MLFLOW_FLASK_SERVER_SECRET_KEY``,
``MLFLOW_AUTH_ADMIN_PASSWORD`` the first time, optionally ``MLFLOW_AUTH_CONFIG_PATH``) and, if the
review store is not the backend database or beside it, ``MLFLOW_HITL_STORE_URI``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["create_app"]

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
    import logging

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

    from .api import register_api
    from .pages import register_pages

    _use_server_stores()
    bootstrap_admin_user()  # MLflow's server does this only for --app-name basic-auth
    served = with_basic_auth(flask_app)
    # Registered after basic-auth's own check, so every request is authenticated first.
    flask_app.before_request(_guard)
    flask_app.after_request(_after)
    flask_app.add_url_rule(f"{_API}/signoffs", "mlflow_hitl_signoff", _signoff, methods=["POST"])
    flask_app.add_url_rule(f"{_API}/roles", "mlflow_hitl_role", _role, methods=["POST"])
    register_api(flask_app)
    register_pages(flask_app)
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
