"""What every page under ``/hitl/`` shares: who acts, the store they act through, templates, safety.

- **Who acts**: the user MLflow's basic-auth authenticated for the request, as for ``/hitl/api/``.
- **Through what**: :func:`store` and :func:`call` run the routes of :data:`~mlflow_hitl.adapter.api.ROUTES`
  in-process (:func:`~mlflow_hitl.adapter.api.call_route`), so a page takes exactly the actions the
  API allows, checked by the same rules and recorded by the same audit events; pages hold no rules.
- **Safety**: templates autoescape everything; each answer carries a Content-Security-Policy that
  allows nothing inline and nothing from elsewhere, may not be framed, and is not sniffed; every
  action is a ``POST`` carrying a CSRF token, an HMAC of the user's name and the token's issue time under
  the server's secret, good for 12 hours (a browser sends basic-auth credentials with any request, a
  forged cross-site form included); a refused token is audited as ``page.refused``.
- **Paths are fixed** (``/hitl/label?queue=q``, never ``/hitl/label/q``): basic-auth matches the
  routes that authorize inside by their whole path.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..._format import number, percent
from ..._urls import PAGE_PREFIX, page_url
from ...errors import HitlError, InputError, NotFoundError, PermissionDeniedError, first_line
from ...review import HttpReviewStore

__all__ = [
    "CSRF_FIELD",
    "CSRF_LIFETIME_SECONDS",
    "PAGE_PREFIX",
    "Page",
    "Refusal",
    "attempt",
    "call",
    "class_by_text",
    "csrf_token",
    "experiment_link",
    "find_run",
    "form",
    "item_at",
    "missing_role",
    "model_link",
    "my_roles",
    "page_url",
    "page_window",
    "query",
    "redirect",
    "render",
    "run_link",
    "run_page",
    "secure",
    "serve",
    "store",
    "user",
]

CSRF_FIELD = "csrf_token"
CSRF_LIFETIME_SECONDS = 12 * 3600  # a working day and more: each page render embeds a fresh token
_CSRF_CLOCK_SKEW_SECONDS = 300  # servers behind one load balancer may disagree on the time a little
# Nothing inline, nothing from elsewhere: a value that slipped past escaping still cannot run.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_log = logging.getLogger(__name__)
_PROCESS_SECRET = secrets.token_bytes(32)  # only when the server has no secret key of its own


@dataclass(frozen=True)
class Page:
    """One page: its fixed ``path`` under ``/hitl/``, its view, the methods it takes, its menu title."""

    path: str
    view: Callable[[], Any]
    methods: tuple[str, ...] = ("GET",)
    nav: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why an action was not taken, as the page shows it: the HTTP status and the store's one line."""

    status: int
    message: str


# -- acting -------------------------------------------------------------------------------------


def user() -> str:
    """The authenticated user (``PermissionError`` when the server's auth named nobody)."""
    from ..app import _authenticated_user

    return _authenticated_user()


def call(path: str, **params: Any) -> Any:
    """Route ``path`` of the API in-process as the authenticated user (``None`` values are not sent)."""
    from ..api import call_route

    return call_route(path, {k: v for k, v in params.items() if v is not None})


def store() -> HttpReviewStore:
    """The review store as the authenticated user's client: typed answers, every call a route of the API."""
    from flask import request

    from ..api import call_route

    return HttpReviewStore(
        request.host_url, transport=lambda method, route, fields: call_route(route, fields)
    )


def attempt(action: Callable[[], Any]) -> Refusal | None:
    """Run ``action``; ``None`` when it was taken, else the refusal the page shows (403, 404 or 400)."""
    try:
        action()
    except (PermissionDeniedError, PermissionError) as exc:
        return Refusal(403, first_line(exc))
    except NotFoundError as exc:
        return Refusal(404, first_line(exc))
    except HitlError as exc:
        return Refusal(400, first_line(exc))
    return None


def my_roles() -> set[str]:
    """The review-store roles of the authenticated user (through ``roles/list``)."""
    return set(store().roles(user())["role"])


def missing_role(doing: str, role: str, held: set[str]) -> str:
    """Why the user cannot act, in the store's words: the role needed and the roles held."""
    return (
        f"You cannot {doing}: it needs the {role!r} role (roles held: {', '.join(sorted(held)) or 'none'})."
    )


# -- CSRF ---------------------------------------------------------------------------------------


def _secret() -> bytes:
    """The server's secret: basic auth's static ``MLFLOW_FLASK_SERVER_SECRET_KEY`` (the same in every worker),
    else a random one of this process. Never derived from anything a client can see."""
    from flask import current_app

    key = current_app.secret_key or os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
    return key.encode() if isinstance(key, str) else key or _PROCESS_SECRET


def csrf_token(name: str, *, issued: int | None = None) -> str:
    """User ``name``'s CSRF token issued at ``issued`` (Unix seconds, default now): ``<issued>.<hmac>``.

    Only the server (which holds the secret) can make one; it is good for :data:`CSRF_LIFETIME_SECONDS`,
    so a token leaked in a log, a screenshot or a saved page stops working. Every page render embeds a
    fresh one. No per-start nonce: a token rendered by one worker must pass in another.
    """
    issued = int(time.time()) if issued is None else issued
    message = f"mlflow-hitl-csrf:{issued}:{name}"  # issued is digits only: the first ':' ends it
    return f"{issued}.{hmac.new(_secret(), message.encode(), hashlib.sha256).hexdigest()}"


def _csrf_problem() -> str | None:
    """Why the POST's CSRF token is refused for the authenticated user, or ``None`` when it is good."""
    from flask import request

    sent = request.form.get(CSRF_FIELD, "")
    issued = sent.partition(".")[0]
    if not (issued.isascii() and issued.isdigit() and len(issued) <= 12) or not hmac.compare_digest(
        sent.encode(), csrf_token(user(), issued=int(issued)).encode()
    ):
        return "the form's CSRF token is missing or wrong: reload the page and retry"
    if not -_CSRF_CLOCK_SKEW_SECONDS <= time.time() - int(issued) <= CSRF_LIFETIME_SECONDS:
        return "the form's CSRF token has expired: reload the page and retry"
    return None


def _audit_csrf_refusal(page: Page, reason: str) -> None:
    """Record a POST refused for its CSRF token (``page.refused``), as the API records ``api.refused``."""
    from ..app import _review_store

    try:
        _review_store().record_event(
            actor=user(), action="page.refused", subject=f"page:{page.path}", payload={"reason": reason}
        )
    except Exception:  # the refusal stands even when its record cannot be written
        _log.exception("could not audit the refusal of page %s", page.path)


# -- answering ----------------------------------------------------------------------------------


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlflow_hitl.adapter.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = number
    env.filters["percent"] = percent
    env.globals.update(
        run_link=run_link, experiment_link=experiment_link, model_link=model_link, page_url=page_url
    )
    return env


_ENV: Any = None


def render(template: str, *, status: int = 200, refusal: Refusal | None = None, **context: Any) -> Any:
    """``template`` filled in for the authenticated user, with the menu, the CSRF token and any refusal."""
    from flask import make_response

    from . import NAV

    global _ENV
    if _ENV is None:
        _ENV = _environment()
    name = user()
    html = _ENV.get_template(template).render(
        user=name,
        csrf_name=CSRF_FIELD,
        csrf_token=csrf_token(name),
        nav=NAV,
        refusal=refusal,
        **context,
    )
    response = make_response(html, refusal.status if refusal is not None else status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def redirect(path: str, **query: Any) -> Any:
    """303 to a page after an action (post, redirect, get: a reload never repeats the action)."""
    from flask import redirect as flask_redirect

    return flask_redirect(page_url(path, **query), code=303)


def run_link(experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI."""
    return f"/#/experiments/{quote(str(experiment_id), safe='')}/runs/{quote(str(run_id), safe='')}"


def find_run(run_id: str | None) -> Any:
    """MLflow's run ``run_id``, or ``None``: no run, or one this server does not know."""
    if not run_id:
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return None


def run_page(run_id: str | None) -> str | None:
    """The MLflow UI page of run ``run_id`` (``None``: no run, or one this server does not know)."""
    run = find_run(run_id)
    return None if run is None else run_link(run.info.experiment_id, run.info.run_id)


def item_at(queue: str, position: int) -> dict[str, Any]:
    """Item ``position`` of the queue as the API lists it (positions run 0..n-1, so one row of a page)."""
    found = call("items/list", queue=queue, offset=position, limit=1)["items"]
    if not found or found[0]["position"] != position:
        raise NotFoundError(f"queue {queue!r} has no item {position}")
    return found[0]


def experiment_link(experiment_id: str) -> str:
    return f"/#/experiments/{quote(str(experiment_id), safe='')}"


def model_link(name: str, version: str | int | None = None) -> str:
    """The registered model's (or version's) page in the MLflow UI."""
    link = f"/#/models/{quote(str(name), safe='')}"
    return link if version is None else f"{link}/versions/{quote(str(version), safe='')}"


def secure(response: Any) -> Any:
    """Every page answer, errors and static files included, carries the safety headers."""
    for key, value in _HEADERS.items():
        response.headers[key] = value
    return response


def serve(page: Page) -> Callable[[], Any]:
    """The Flask view of ``page``: CSRF checked on every POST before the view runs, headers on every answer."""

    def view() -> Any:
        from flask import make_response, request

        try:
            if request.method not in page.methods:
                response = make_response(f"{page.path} takes {', '.join(page.methods)}", 405)
            elif request.method == "POST" and (problem := _csrf_problem()) is not None:
                _audit_csrf_refusal(page, problem)
                response = render("error.html", refusal=Refusal(403, problem))
            else:
                response = page.view()
        except PermissionError as exc:  # nobody authenticated (a custom auth function let it through)
            response = make_response(first_line(exc), 401)
        except PermissionDeniedError as exc:
            response = render("error.html", refusal=Refusal(403, first_line(exc)))
        except NotFoundError as exc:
            response = render("error.html", refusal=Refusal(404, first_line(exc)))
        except HitlError as exc:
            response = render("error.html", refusal=Refusal(400, first_line(exc)))
        except Exception as exc:  # a bug or a broken store: one line out, the traceback in the log
            _log.exception("mlflow-hitl page %s failed", page.path)
            response = make_response(f"{page.path} failed: {first_line(exc, with_type=True)}", 500)
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return secure(response)

    return view


def form(key: str) -> str | None:
    """A form field of the POST, stripped; ``None`` when absent or empty."""
    from flask import request

    value = request.form.get(key, "").strip()
    return value or None


def query(key: str) -> str | None:
    """A query argument, stripped; ``None`` when absent or empty."""
    from flask import request

    value = request.args.get(key, "").strip()
    return value or None


def class_by_text(classes: Any) -> Mapping[str, Any]:
    """A queue's class from the text a form sent (forms send strings; classes may be numbers)."""
    return {str(c): c for c in classes}


def page_window(default: int, most: int) -> tuple[int, int]:
    """``(offset, limit)`` of a paged list from ``?offset=&limit=`` (limit at most ``most``)."""
    found = []
    for key, fallback in (("offset", 0), ("limit", default)):
        text = query(key)
        if text is not None and not text.isdigit():
            raise InputError(f"{key!r} must be a whole number, got {text!r}")
        found.append(fallback if text is None else int(text))
    offset, limit = found
    return offset, min(max(limit, 1), most)
