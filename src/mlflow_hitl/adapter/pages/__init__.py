"""The pages under ``/hitl/`` on ``mlflow server --app-name hitl``: where reviewers and release managers work.

Server-rendered HTML (Jinja2, autoescaped) with one small script for keyboard shortcuts; no front-end
build. Each page is one module declaring its :class:`~._web.Page` entries, with its own template;
:mod:`._web` holds what they share (the acting user, the in-process API client, CSRF, the safety
headers). ``docs/web.md`` describes every page.

To add a page: write ``<name>.py`` with ``PAGES = (Page("<path>", view, nav="Title"),)`` and its
``templates/<name>.html``, and list the module in :data:`_MODULES`.
"""

from __future__ import annotations

from importlib import import_module, resources
from typing import Any

from ._web import PAGE_PREFIX, Page, secure, serve

__all__ = ["NAV", "PAGES", "STATIC_FILES", "register_pages"]

_MODULES = ("home", "queues", "label", "adjudicate", "signoff", "release", "audit", "lineage", "image")
PAGES: tuple[Page, ...] = tuple(
    page for name in _MODULES for page in import_module(f".{name}", __name__).PAGES
)
# The menu: (title, path) of the pages that have one, in module order.
NAV: tuple[tuple[str, str], ...] = tuple((p.nav, f"{PAGE_PREFIX}/{p.path}") for p in PAGES if p.nav)
STATIC_FILES = {"hitl.css": "text/css; charset=utf-8", "hitl.js": "text/javascript; charset=utf-8"}


def _static(name: str, mimetype: str) -> Any:
    def view() -> Any:
        from flask import make_response

        response = make_response(resources.files(__name__).joinpath("static", name).read_bytes())
        response.headers["Content-Type"] = mimetype
        secure(response).headers["Cache-Control"] = "max-age=300"
        return response

    return view


def register_pages(flask_app: Any) -> None:
    """Serve every page and static file on MLflow's Flask app, each path declared to basic-auth.

    Basic-auth authenticates every request under ``/hitl/`` (401 without credentials) and, failing
    closed, would refuse non-admins on paths it has no validator for: the pages act through the API's
    routes, which authorize inside, so their whole paths are declared as such, like the API's.
    """
    from ..api import declare_exact_paths

    paths = []
    for page in PAGES:
        path = f"{PAGE_PREFIX}/{page.path}"
        endpoint = "mlflow_hitl_page_" + (page.path.strip("/").replace("/", "_") or "home")
        # Every method reaches the view, which answers a wrong one itself, with the safety headers.
        flask_app.add_url_rule(path, endpoint, serve(page), methods=["GET", "POST"])
        paths += [path, PAGE_PREFIX] if page.path == "" else [path]  # Flask redirects /hitl to /hitl/
    for name, mimetype in STATIC_FILES.items():
        path = f"{PAGE_PREFIX}/static/{name}"
        flask_app.add_url_rule(path, f"mlflow_hitl_static_{name.replace('.', '_')}", _static(name, mimetype))
        paths.append(path)
    declare_exact_paths(*paths)
