"""Adjudicate: the items raters disagree on, with every rater's label and comment, settled by an adjudicator.

The items are those consensus sends to adjudication (``mlflow-hitl review adjudicate`` takes the same),
paged. A user without the ``adjudicator`` role sees them and is told why they cannot settle them.
"""

from __future__ import annotations

from typing import Any

from ...review import consensus_of
from ._web import (
    Page,
    attempt,
    class_by_text,
    form,
    missing_role,
    my_roles,
    page_window,
    query,
    redirect,
    render,
    store,
)

__all__ = ["PAGES"]

_PER_PAGE = 10
_MOST_PER_PAGE = 50


def _show(refusal: Any = None) -> Any:
    name = str(query("queue") or "")
    client = store()
    labels = client.queue_labels(name)
    state = consensus_of(labels)
    offset, limit = page_window(_PER_PAGE, _MOST_PER_PAGE)
    shown = state.pending[offset : offset + limit]
    items = {item.position: item for item in labels.items if item.position in set(shown)}
    annotations = labels.annotations
    raters = {
        position: annotations[annotations["item"] == position].to_dict(orient="records") for position in shown
    }
    held = my_roles()
    return render(
        "adjudicate.html",
        refusal=refusal,
        queue=labels.queue,
        items=[items[p] for p in shown],
        raters=raters,
        agreement={p: state.labels.loc[p, "agreement"] for p in shown},
        total=len(state.pending),
        offset=offset,
        limit=limit,
        settled=query("settled"),
        blocked=None if held & {"adjudicator", "admin"} else missing_role("adjudicate", "adjudicator", held),
    )


def _act() -> Any:
    from flask import request

    name = str(query("queue") or "")
    client = store()
    position = form("position") or ""
    label = class_by_text(client.queue(name).classes).get(
        request.form.get("label", ""), request.form.get("label")
    )
    refusal = attempt(
        lambda: client.adjudicate(
            name,
            position=int(position) if position.isdigit() else -1,
            user="",
            label=label,
            note=form("note"),
        )
    )
    return _show(refusal) if refusal else redirect("adjudicate", queue=name, settled=position)


def _adjudicate() -> Any:
    from flask import request

    return _act() if request.method == "POST" else _show()


PAGES = (Page("adjudicate", _adjudicate, methods=("GET", "POST")),)
