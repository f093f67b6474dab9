"""The review store over HTTP: ``/hitl/api/...`` on ``mlflow server --app-name hitl`` (team mode).

In team mode the server is the only door to the review store: the database credentials and the
audit key stay on the server, and every action is taken as the user MLflow's basic-auth
authenticated, never as a name in the request. The CLI and Python API reach these routes through
:class:`mlflow_hitl.review.HttpReviewStore`; the pages under ``/hitl/`` will use them too.

Conventions (``docs/api.md`` lists every route):

- MLflow's style: fixed paths, reads are ``GET`` with query parameters, actions are ``POST`` with a
  JSON object body (``Content-Type: application/json``, which a cross-site form cannot send);
- every route accepts a fixed set of fields and refuses any other, so a body naming an ``actor``
  (or a ``user`` where it would mean the acting user) is refused, not believed;
- errors are MLflow's JSON errors ``{"error_code", "message"}``: 400 ``INVALID_PARAMETER_VALUE``,
  403 ``PERMISSION_DENIED``, 404 ``RESOURCE_DOES_NOT_EXIST``, 405 ``METHOD_NOT_ALLOWED``, 500
  ``INTERNAL_ERROR`` (one line; the traceback goes to the server's log only);
- lists that grow (items, annotations, audit events) are paged: ``offset``/``limit`` answered with
  ``next_offset``, or ``after_seq``/``limit`` answered with ``next_after_seq`` (``null`` at the end);
- every answer carries the header ``X-MLflow-Hitl-API: 1``, so a client can tell our answers from
  those of a server that does not run the plugin.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._plain import plain_json
from ..errors import HitlError, InputError, NotFoundError, PermissionDeniedError, first_line
from ..review import AnnotationRecord, HttpReviewStore, ReviewStore
from .blind import BlindView

if TYPE_CHECKING:
    from ..gate import GateDecision

__all__ = [
    "API_HEADER",
    "API_PREFIX",
    "ROUTES",
    "call_route",
    "declare_exact_paths",
    "may_read_model",
    "may_use_run",
    "register_api",
    "server_decision",
]

API_PREFIX = "/hitl/api"
API_HEADER = "X-MLflow-Hitl-API"
_PAGE = 1_000
_MAX_PAGE = 10_000
_IDENTITY_FIELDS = ("actor", "user")
_log = logging.getLogger(__name__)

Params = Mapping[str, Any]
Handler = Callable[[ReviewStore, str, Params], Any]


@dataclass(frozen=True)
class Route:
    """One route: ``path`` under ``/hitl/api/``, its method, the fields it accepts, and its handler."""

    path: str
    method: str
    fields: tuple[str, ...]
    handler: Handler


# -- reading parameters ---------------------------------------------------------------------------


def _text(params: Params, key: str, *, required: bool = True) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise InputError(f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise InputError(f"{key!r} must be a string, got {type(value).__name__}")
    return value


def _int(params: Params, key: str, *, default: int | None = None, minimum: int = 0) -> int:
    value = params.get(key, default)
    if value is None:
        raise InputError(f"{key!r} is required")
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        raise InputError(f"{key!r} must be a whole number ≥ {minimum}, got {value!r}")
    return number


def _bool(params: Params, key: str, *, default: bool) -> bool:
    value = params.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"{key!r} must be true or false, got {value!r}")


def _limit(params: Params) -> int:
    return min(_int(params, "limit", default=_PAGE, minimum=1), _MAX_PAGE)


def _frame_from_json(params: Params, key: str) -> pd.DataFrame:
    """A frame sent as ``{"columns": [...], "index": [...], "data": [[...], ...]}`` (pandas' ``split``)."""
    value = params.get(key)
    if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
        raise InputError(f"{key!r} must be an object with 'columns' and 'data' (and optionally 'index')")
    try:
        return pd.DataFrame(value["data"], columns=value.get("columns"), index=value.get("index"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{key!r} is not a table: {first_line(exc)}") from exc


# -- writing answers ------------------------------------------------------------------------------


def _table(frame: pd.DataFrame, key: str) -> dict[str, Any]:
    columns = [str(c) for c in frame.columns]
    rows = [
        {c: plain_json(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]
    return {"columns": columns, key: rows}


def _offset_page(read: Callable[..., Any], params: Params) -> tuple[Any, int | None]:
    """One page read by the store (``read(offset=, limit=)``), and the offset of the next (``None``: the last).

    One row more than the page is read: whether it exists says whether there is a next page, without a count.
    """
    offset, limit = _int(params, "offset", default=0), _limit(params)
    rows = read(offset=offset, limit=limit + 1)
    return rows[:limit], (offset + limit if len(rows) > limit else None)


# -- the routes -----------------------------------------------------------------------------------


def _queue_name(params: Params) -> str:
    return str(_text(params, "queue"))


def _label(params: Params) -> Any:
    if "label" not in params:
        raise InputError("'label' is required")
    return params["label"]


def _create_queue(store: ReviewStore, actor: str, p: Params) -> Any:
    gold = p.get("gold")
    if gold is not None and not (
        isinstance(gold, list) and all(isinstance(g, list) and len(g) == 2 for g in gold)
    ):
        raise InputError("'gold' must be a list of [row index label, label] pairs")
    queue = store.create_queue(
        str(_text(p, "name")),
        rows=_frame_from_json(p, "rows"),
        selection=_frame_from_json(p, "selection"),
        classes=list(p.get("classes") or []),
        actor=actor,
        raters_per_item=_int(p, "raters_per_item", default=1, minimum=1),
        blind=_bool(p, "blind", default=False),
        strategy=_text(p, "strategy", required=False) or "least-confidence",
        run_id=_text(p, "run_id", required=False),
        predictions=p.get("predictions"),
        confidences=p.get("confidences"),
        gold=None if gold is None else {key: label for key, label in gold},
    )
    return {"queue": queue}


def _queue_labels(store: ReviewStore, actor: str, p: Params) -> Any:
    BlindView(store, actor).refuse(_queue_name(p), "labels")
    labels = store.queue_labels(_queue_name(p))
    return {
        "queue": labels.queue,
        "items": labels.items,
        "annotations": _table(labels.annotations, "rows"),
        "adjudications": _table(labels.adjudications, "rows"),
        "gold": [[k, v] for k, v in sorted(labels.gold.items())],
    }


def _label_counts(store: ReviewStore, actor: str, p: Params) -> Any:
    BlindView(store, actor).refuse(_queue_name(p), "labels")
    return _table(store.label_counts(_queue_name(p)), "counts")


def _items(store: ReviewStore, actor: str, p: Params) -> Any:
    page, next_offset = _offset_page(functools.partial(store.items, _queue_name(p)), p)
    blind = BlindView(store, actor)
    if blind.hides(_queue_name(p)):
        page = [blind.item(item) for item in page]
    return {"items": page, "next_offset": next_offset}


def _next_item(store: ReviewStore, actor: str, p: Params) -> Any:
    exclude = p.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(e, int) for e in exclude):
        raise InputError("'exclude' must be a list of item positions")
    item = store.next_item(_queue_name(p), user=actor, exclude=exclude)
    blind = BlindView(store, actor)
    return {"item": blind.item(item) if blind.hides(_queue_name(p)) else item}


def _release(store: ReviewStore, actor: str, p: Params) -> Any:
    store.release(_queue_name(p), position=_int(p, "position"), user=actor)
    return {}


def _annotate(store: ReviewStore, actor: str, p: Params) -> Any:
    store.annotate(
        _queue_name(p),
        position=_int(p, "position"),
        user=actor,
        label=_label(p),
        comment=_text(p, "comment", required=False),
        source=_text(p, "source", required=False) or "api",
    )
    return {}


def _withdraw(store: ReviewStore, actor: str, p: Params) -> Any:
    store.withdraw(_queue_name(p), position=_int(p, "position"), user=actor)
    return {}


def _append_items(store: ReviewStore, actor: str, p: Params) -> Any:
    request_ids = p.get("request_ids")
    if not isinstance(request_ids, list):
        raise InputError("'request_ids' must be a list with one id per row")
    report = store.append_items(
        _queue_name(p),
        rows=_frame_from_json(p, "rows"),
        selection=_frame_from_json(p, "selection"),
        request_ids=request_ids,
        actor=actor,
        predictions=p.get("predictions"),
        confidences=p.get("confidences"),
    )
    return {"added": report.added, "unchanged": report.unchanged}


def _import(store: ReviewStore, actor: str, p: Params) -> Any:
    records = p.get("records")
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise InputError("'records' must be a list of {position, user, label, comment, external_id}")
    names = {f.name for f in dataclasses.fields(AnnotationRecord)}
    parsed = []
    for record in records:
        unknown = sorted(set(record) - names)
        if unknown or "position" not in record or "user" not in record or "label" not in record:
            raise InputError(
                f"an import record needs position, user and label (and may have comment, external_id); got {sorted(record)}"
            )
        parsed.append(AnnotationRecord(**{**record, "position": _int(record, "position")}))
    others = sorted({r.user.strip() for r in parsed if isinstance(r.user, str)} - {actor})
    if others and not {"admin"} & set(store.roles(actor)["role"]):
        # Each imported label is recorded as its rater's own act: on a server that is an admin's to vouch for.
        raise PermissionDeniedError(
            f"{actor} cannot import labels given by others ({', '.join(others[:5])}): needs the 'admin' role"
        )
    report = store.import_annotations(
        _queue_name(p), parsed, actor=actor, source=str(_text(p, "source", required=False) or "api")
    )
    return {"added": report.added, "unchanged": report.unchanged}


def _annotations(store: ReviewStore, actor: str, p: Params) -> Any:
    window = {"from_position": _int(p, "from_position", default=0)}
    if p.get("to_position") is not None:
        window["to_position"] = _int(p, "to_position")
    page, next_offset = _offset_page(functools.partial(store.annotations, _queue_name(p), **window), p)
    blind = BlindView(store, actor)
    if blind.hides(_queue_name(p)):
        page = blind.own_labels(page)  # a page may hold fewer rows than asked: follow next_offset
    return {**_table(page, "annotations"), "next_offset": next_offset}


def _gold(store: ReviewStore, actor: str, p: Params) -> Any:
    BlindView(store, actor).refuse(_queue_name(p), "gold labels")
    return {"gold": [[k, v] for k, v in sorted(store.gold(_queue_name(p)).items())]}


def _adjudications(store: ReviewStore, actor: str, p: Params) -> Any:
    BlindView(store, actor).refuse(_queue_name(p), "adjudications")
    return _table(store.adjudications(_queue_name(p)), "adjudications")


def _adjudicate(store: ReviewStore, actor: str, p: Params) -> Any:
    store.adjudicate(
        _queue_name(p),
        position=_int(p, "position"),
        user=actor,
        label=_label(p),
        note=_text(p, "note", required=False),
    )
    return {}


def _change_role(grant: bool) -> Handler:
    def change(store: ReviewStore, actor: str, p: Params) -> Any:
        member, role = str(_text(p, "user")), str(_text(p, "role"))
        if grant and role == "admin" and "admin" not in set(store.roles()["role"]) and not _mlflow_admin():
            # Locally anyone may appoint the first admin; on a server the first caller must not.
            raise PermissionDeniedError(
                f"{actor} cannot appoint the first review-store admin: an MLflow admin of this server must"
            )
        (store.grant_role if grant else store.revoke_role)(member, role, actor=actor)
        return {"user": member, "role": role, "granted": grant, "by": actor}

    return change


def _mlflow_admin() -> bool:
    from mlflow.server.auth import sender_is_admin

    return bool(sender_is_admin())


def _sign_off(store: ReviewStore, actor: str, p: Params) -> Any:
    from .logging import resolve_run_id

    run_id = str(_text(p, "run_id"))
    resolve_run_id(run_id)  # a sign-off of a run this server does not know is refused
    approve = p.get("approve")
    if not isinstance(approve, bool):
        raise InputError("'approve' must be true or false")
    record = store.sign_off(
        run_id=run_id,
        check=str(_text(p, "check")),
        user=actor,
        approve=approve,
        note=_text(p, "note", required=False),
        evidence_sha256=_text(p, "evidence_sha256", required=False),
    )
    return {"signoff": record}


def _register_evidence(store: ReviewStore, actor: str, p: Params) -> Any:
    """The server registers a run's evidence from its own stores, for a caller who may edit the run."""
    from .logging import resolve_run_id
    from .registration import register_on_server

    run_id = str(_text(p, "run_id"))
    resolve_run_id(run_id)
    if not may_use_run("update", run_id):
        raise PermissionDeniedError(
            f"{actor} cannot register the evidence of run {run_id}: needs permission to edit the run"
        )
    (seq, digest), payload = register_on_server(
        store, run_id, model_uri=_text(p, "model_uri", required=False), actor=actor
    )
    return {"seq": seq, "hash": digest, "registration": payload}


def _mlflow_allows(validator: str, **params: str) -> bool:
    """Whether MLflow's basic-auth validator ``validator`` allows the caller a request for ``params``.

    MLflow's own validator decides, asked in a request context of its own: a GET with ``params`` as its
    arguments and the caller's headers, as MLflow's routes ask it (``runs/get`` reads ``run_id``,
    ``registered-models/get`` reads ``name``). So its permissions, defaults and roles apply as they are in
    the installed version (its helpers that take an id are private and changed across the supported
    versions), the answer is never more lenient than MLflow's, and it does not depend on how the caller's
    own request carries the id (JSON, a form, a query). Admins may do anything.
    """
    from flask import current_app, request
    from mlflow.server import auth

    if auth.sender_is_admin():
        return True
    headers = [
        (k, v) for k, v in request.headers.items() if k.lower() not in ("content-length", "content-type")
    ]
    with current_app.test_request_context("/", method="GET", query_string=params, headers=headers):
        return bool(getattr(auth, validator)())


def may_use_run(action: str, run_id: str) -> bool:
    """Whether basic-auth lets the caller ``read`` or ``update`` run ``run_id``."""
    validator = {"read": "validate_can_read_run", "update": "validate_can_update_run"}[action]
    return _mlflow_allows(validator, run_id=run_id)


def may_read_model(name: str) -> bool:
    """Whether basic-auth lets the caller read the registered model ``name``."""
    return _mlflow_allows("validate_can_read_registered_model", name=name)


def _record_snapshot(store: ReviewStore, actor: str, p: Params) -> Any:
    """Recorded when the server's own labels and the run's files bear out every claim, or an admin vouches
    for it (see :mod:`.published`)."""
    from .published import check_published_snapshot

    claim = {
        "snapshot_id": str(_text(p, "snapshot_id")),
        "run_id": _text(p, "run_id", required=False),
        "method": str(_text(p, "method")),
        "n_items": _int(p, "n_items"),
        "labels_sha256": str(_text(p, "labels_sha256")),
        "manifest_sha256": str(_text(p, "manifest_sha256")),
    }
    if "admin" not in set(store.roles(actor)["role"]):
        check_published_snapshot(store, _queue_name(p), claim)
    return {"snapshot": store.record_snapshot(_queue_name(p), **claim, actor=actor)}


def _set_policy(store: ReviewStore, actor: str, p: Params) -> Any:
    """The server parses and hashes the text itself (and mirrors the hash tag); a client's hash is only compared."""
    from ..gate import parse_policy, policy_hash
    from .gate import set_policy

    model, text = str(_text(p, "model")), str(_text(p, "policy"))
    source = f"policy of {model}"
    claimed = _text(p, "policy_hash", required=False)
    if claimed is not None and claimed != policy_hash(parse_policy(text, source=source)):
        raise InputError(f"policy_hash {claimed!r} is not the hash of the policy text sent")
    return {"policy": set_policy(store, model, text, actor=actor, source=source)}


def _gate(record: bool) -> Handler:
    """The gate's decision for a version and target, computed by the server from its own stores.

    ``record``: the decision is an audit event (``gate.check``, the authenticated actor) and a tag,
    as ``mlflow-hitl gate check`` records it; the read-only form is for pages that only show it.
    """

    def decide(store: ReviewStore, actor: str, p: Params) -> Any:
        from .gate import check_gate

        target = str(_text(p, "target"))
        if not target.startswith(("alias:", "stage:")):
            raise InputError(f"'target' must be alias:NAME or stage:NAME, got {target!r}")
        version = str(_int(p, "version", minimum=1))
        model = str(_text(p, "model"))
        if not may_read_model(model):
            # The decision shows the run, its metrics and who signed; recording it writes the version's tag.
            raise PermissionDeniedError(
                f"{actor} cannot see the gate of {model!r}: needs permission to read the registered model"
            )
        decision = check_gate(model, version, target, store=store, actor=actor, record=record)
        return {"decision": decision.to_dict(), "summary": decision.summary()}

    return decide


def _audit_events(store: ReviewStore, actor: str, p: Params) -> Any:
    after, limit = _int(p, "after_seq", default=0), _limit(p)
    filters = {k: _text(p, k, required=False) for k in ("subject", "actor", "action")}
    newest = _bool(p, "newest_first", default=False)
    frame = store.audit_events(**filters, after_seq=after, limit=limit + 1, newest_first=newest)
    # Newest first is one page (the newest ``limit``): the cursor pages forward only.
    more = len(frame) > limit and not newest
    frame = frame.head(limit)
    next_after = int(frame["seq"].iloc[-1]) if more else None
    # Others' labels on blind queues are left out after the page is cut: a page may hold fewer events.
    return {**_table(BlindView(store, actor).events(frame), "events"), "next_after_seq": next_after}


def _audit_event(store: ReviewStore, actor: str, p: Params) -> Any:
    return {"event": BlindView(store, actor).event(store.audit_event(_int(p, "seq", minimum=1)))}


def _verify(store: ReviewStore, actor: str, p: Params) -> Any:
    return {"verification": store.verify_audit(incremental=_bool(p, "incremental", default=False))}


def _audit_status(store: ReviewStore, actor: str, p: Params) -> Any:
    from . import start_walk

    seq, digest = store.audit_head()
    return {"head": {"seq": seq, "hash": digest}, "start_walk": start_walk.status()}


ROUTES: tuple[Route, ...] = (
    Route("queues/list", "GET", (), lambda s, a, p: {"queues": s.queues()}),
    Route("queues/get", "GET", ("queue",), lambda s, a, p: {"queue": s.queue(_queue_name(p))}),
    Route(
        "queues/create",
        "POST",
        (
            "name",
            "rows",
            "selection",
            "classes",
            "raters_per_item",
            "blind",
            "strategy",
            "run_id",
            "predictions",
            "confidences",
            "gold",
        ),
        _create_queue,
    ),
    Route("queues/progress", "GET", ("queue",), lambda s, a, p: {"progress": s.progress(_queue_name(p))}),
    Route("queues/gold", "GET", ("queue",), _gold),
    Route("queues/labels", "GET", ("queue",), _queue_labels),
    Route("queues/label-counts", "GET", ("queue",), _label_counts),
    Route("items/list", "GET", ("queue", "offset", "limit"), _items),
    Route("items/next", "POST", ("queue", "exclude"), _next_item),
    Route("items/release", "POST", ("queue", "position"), _release),
    Route(
        "items/append",
        "POST",
        ("queue", "rows", "selection", "request_ids", "predictions", "confidences"),
        _append_items,
    ),
    Route(
        "annotations/list", "GET", ("queue", "offset", "limit", "from_position", "to_position"), _annotations
    ),
    Route("annotations/create", "POST", ("queue", "position", "label", "comment", "source"), _annotate),
    Route("annotations/import", "POST", ("queue", "records", "source"), _import),
    Route("annotations/withdraw", "POST", ("queue", "position"), _withdraw),
    Route("adjudications/list", "GET", ("queue",), _adjudications),
    Route("adjudications/create", "POST", ("queue", "position", "label", "note"), _adjudicate),
    Route(
        "roles/list",
        "GET",
        ("user",),
        lambda s, a, p: _table(s.roles(_text(p, "user", required=False)), "roles"),
    ),
    Route("roles/grant", "POST", ("user", "role"), _change_role(True)),
    Route("roles/revoke", "POST", ("user", "role"), _change_role(False)),
    Route(
        "signoffs/list",
        "GET",
        ("run_id",),
        lambda s, a, p: _table(s.signoffs(_text(p, "run_id", required=False)), "signoffs"),
    ),
    Route("signoffs/create", "POST", ("run_id", "check", "approve", "note", "evidence_sha256"), _sign_off),
    Route("evidence/register", "POST", ("run_id", "model_uri"), _register_evidence),
    Route(
        "snapshots/list",
        "GET",
        ("queue", "run_id"),
        lambda s, a, p: _table(
            s.snapshots(_text(p, "queue", required=False), run_id=_text(p, "run_id", required=False)),
            "snapshots",
        ),
    ),
    Route(
        "snapshots/create",
        "POST",
        ("queue", "snapshot_id", "run_id", "method", "n_items", "labels_sha256", "manifest_sha256"),
        _record_snapshot,
    ),
    Route("policies/get", "GET", ("model",), lambda s, a, p: {"policy": s.policy(str(_text(p, "model")))}),
    Route("policies/set", "POST", ("model", "policy", "policy_hash"), _set_policy),
    Route("gate/decision", "GET", ("model", "version", "target"), _gate(record=False)),
    Route("gate/check", "POST", ("model", "version", "target"), _gate(record=True)),
    Route("audit/head", "GET", (), lambda s, a, p: dict(zip(("seq", "hash"), s.audit_head(), strict=True))),
    Route("audit/verify", "GET", ("incremental",), _verify),
    Route("audit/status", "GET", (), _audit_status),
    Route("audit/event", "GET", ("seq",), _audit_event),
    Route(
        "audit/events",
        "GET",
        ("subject", "actor", "action", "after_seq", "limit", "newest_first"),
        _audit_events,
    ),
)


# -- serving --------------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> Any:
    from flask import jsonify

    response = jsonify({"error_code": code, "message": message})
    response.status_code = status
    return response


def _params(route: Route) -> dict[str, Any]:
    from flask import request

    if route.method == "GET":
        return request.args.to_dict()
    if not request.is_json:
        raise InputError("send the body as JSON with Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def _check_fields(route: Route, params: Params) -> None:
    unknown = sorted(set(params) - set(route.fields))
    if unknown:
        hint = (
            "; the server acts as the authenticated user, never as a name in the request"
            if set(unknown) & set(_IDENTITY_FIELDS)
            else ""
        )
        raise InputError(f"{route.path} does not take {', '.join(map(repr, unknown))}{hint}")


_BY_PATH = {route.path: route for route in ROUTES}


def call_route(path: str, params: Params) -> Any:
    """Route ``path`` of :data:`ROUTES` run in-process as the authenticated user; its answer as plain JSON.

    What a request to ``/hitl/api/<path>`` does, without the round trip: the same fields refused, the
    same handler and store rules, a refused action audited as ``api.refused``. The pages under
    ``/hitl/`` act through it, so a page can do nothing the API would not. Raises the store's
    :class:`~mlflow_hitl.errors.HitlError` subclasses (or ``PermissionError`` without a user).
    """
    from .app import _authenticated_user, _review_store

    route = _BY_PATH[path]
    _check_fields(route, params)
    actor = _authenticated_user()
    try:
        return plain_json(route.handler(_review_store(), actor, params))
    except (PermissionDeniedError, PermissionError) as exc:
        if route.method == "POST":
            _audit_refusal(route, first_line(exc), params, actor)
        raise


def _serve(route: Route) -> Callable[[], Any]:
    def view() -> Any:
        from flask import jsonify, request

        if request.method != route.method:
            response = _error(405, "METHOD_NOT_ALLOWED", f"{route.path} takes {route.method} only")
        else:
            try:
                response = jsonify(call_route(route.path, _params(route)))
            except (PermissionDeniedError, PermissionError) as exc:
                response = _error(403, "PERMISSION_DENIED", first_line(exc))
            except NotFoundError as exc:
                response = _error(404, "RESOURCE_DOES_NOT_EXIST", first_line(exc))
            except HitlError as exc:
                response = _error(400, "INVALID_PARAMETER_VALUE", first_line(exc))
            except Exception as exc:  # a bug or a broken store: one line out, the traceback in the log
                _log.exception("mlflow-hitl API %s failed", route.path)
                response = _error(
                    500, "INTERNAL_ERROR", f"{route.path} failed: {first_line(exc, with_type=True)}"
                )
        response.headers[API_HEADER] = "1"
        return response

    return view


def _audit_refusal(route: Route, reason: str, body: Params, actor: str) -> None:
    """Record a refused action (``api.refused``) with the authenticated actor, the route and the reason."""
    from .app import _review_store

    subject = next(
        (
            f"{kind}:{body[key]}"
            for key, kind in (("run_id", "run"), ("queue", "queue"), ("model", "model"), ("user", "user"))
            if isinstance(body.get(key), str) and body[key]
        ),
        "api",
    )
    if subject.startswith("run:") and isinstance(body.get("check"), str):
        subject += f"/check:{body['check']}"  # as the sign-off itself would have been recorded
    try:
        _review_store().record_event(
            actor=actor,
            action="api.refused",
            subject=subject,
            payload={"route": route.path, "reason": reason},
        )
    except Exception:  # the refusal stands even when its record cannot be written
        _log.exception("could not audit the refusal of %s", route.path)


def register_api(flask_app: Any) -> None:
    """Serve every route of :data:`ROUTES` under ``/hitl/api/`` on MLflow's Flask app.

    Basic-auth authenticates every request to these paths (401 without valid credentials) and, as
    it fails closed, refuses authenticated non-admins on routes it has no validator for; our routes
    authorize inside (the store checks roles), so they are declared as such, each by its exact path.
    """
    for route in ROUTES:
        path = f"{API_PREFIX}/{route.path}"
        # Both methods reach the view, so a wrong one is answered in JSON rather than by Flask's HTML 405.
        flask_app.add_url_rule(
            path, f"mlflow_hitl_api_{route.path.replace('/', '_')}", _serve(route), methods=["GET", "POST"]
        )
    declare_exact_paths(*(f"{API_PREFIX}/{route.path}" for route in ROUTES))


def declare_exact_paths(*paths: str) -> None:
    """Tell basic-auth that these routes authorize inside (the store checks roles), by their whole paths.

    basic-auth refuses authenticated non-admins on routes it has no validator for ("fail closed"). It
    keeps the routes whose handlers authorize themselves in a private tuple of path suffixes; there is
    no public hook, so we extend that tuple and fail loudly if a future MLflow renames it. A whole path
    is the narrowest suffix: it matches that route only (the pages under ``/hitl/`` declare theirs too).
    """
    from mlflow.server import auth

    suffixes = getattr(auth, "_HANDLER_INTERNAL_AUTHZ_SUFFIXES", None)
    if not isinstance(suffixes, tuple):
        raise RuntimeError(
            "this MLflow's basic-auth has no _HANDLER_INTERNAL_AUTHZ_SUFFIXES; update mlflow-hitl"
        )
    auth._HANDLER_INTERNAL_AUTHZ_SUFFIXES = suffixes + tuple(p for p in paths if p not in suffixes)


# -- the gate in team mode ------------------------------------------------------------------------


def server_decision(
    store: HttpReviewStore, model_name: str, version: str | int, target: str, *, record: bool = True
) -> GateDecision:
    """The server's gate decision as a :class:`~mlflow_hitl.gate.GateDecision`, its hash checked.

    In team mode the server decides (and records) the gate from its own stores; a client cannot
    append the ``gate.check`` event itself. The decision's ``evidence_hash`` is recomputed here, so a
    decision altered on the way is refused rather than shown.
    """
    from ..gate import GateDecision, Requirement, decision_hash

    data = store.gate_decision(model_name, version, target, record=record)
    if decision_hash(data) != data.get("evidence_hash"):
        raise HitlError(
            f"the server's gate decision for {model_name} version {version} does not match its hash"
        )
    return GateDecision(**{**data, "requirements": tuple(Requirement(**r) for r in data["requirements"])})


# -- choosing the store ---------------------------------------------------------------------------
