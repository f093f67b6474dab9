"""Lineage: the auditor's page for a model version, the content of ``mlflow-hitl lineage --format html``.

The data is :func:`~mlflow_hitl.adapter.lineage.lineage`'s and the body its
:func:`~mlflow_hitl.adapter.lineage.render_body` (escaped, nothing inline), read through the API's
routes as the page's user; the chain is verified as the gates verify it (incrementally), so the page
answers quickly on a long chain. Statuses are badges, numbers go through ``_format.number``, agreement
is a table, and everything wraps within 1,400 px.
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError, PermissionDeniedError
from ..api import may_read_model
from ..lineage import lineage, render_body
from ._web import Page, query, render, run_link, store

__all__ = ["PAGES"]


def _lineage() -> Any:
    from markupsafe import Markup

    model, version = query("model"), query("version")
    if model is None or version is None:
        raise InputError("the lineage page needs ?model=NAME&version=N")
    if not may_read_model(model):  # the page names its run, data, raters and signers
        raise PermissionDeniedError(f"you may not read the registered model {model!r} in MLflow")
    data = lineage(model, version, store=store(), incremental_audit=True)
    run = data["run"]
    return render(
        "lineage.html",
        model=model,
        version=version,
        run_page=None if run is None else run_link(run["experiment_id"], run["run_id"]),
        body=Markup(render_body(data)),  # noqa: S704 -- render_body escapes every value itself
    )


PAGES = (Page("lineage", _lineage),)
