"""Adjudicate: the items raters disagree on, with every rater's label and comment, settled by an adjudicator.

The items are those majority-vote consensus sends to adjudication (``mlflow-hitl review adjudicate``
takes the same), found window by window: the labels of 250 item positions, then twice as many at each
read up to 4,000 (``annotations/list`` by position range), tallied with :func:`~mlflow_hitl.review.consensus` and
:func:`~mlflow_hitl.review.needs_adjudication`, which decide each item from its own labels, until a page
is full or 10,000 positions were looked at. A page deep in a queue of 100,000 items costs what the first
does; the page says how far it looked and links to the next. A user without the ``adjudicator`` role
sees the items and is told why they cannot settle them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..._review_options import DEFAULT_MIN_AGREEMENT
from ...errors import InputError
from ...review import HttpReviewStore, consensus, needs_adjudication
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
_FIRST_WINDOW = 250  # item positions whose labels are read and tallied first; each next read doubles it
_WINDOW = 4_000  # ... up to this many
_MOST_LOOKED_AT = 10_000  # item positions one page view looks through


@dataclass(frozen=True)
class Waiting:
    """What one look through a queue found: items waiting (position order) with their labels and agreement."""

    positions: list[int]
    annotations: pd.DataFrame
    agreement: dict[int, float]
    looked_to: int  # the first position not looked at
    n_items: int

    @property
    def to_the_end(self) -> bool:
        return self.looked_to >= self.n_items


def _waiting(client: HttpReviewStore, queue: Any, start: int, wanted: int) -> Waiting:
    """Items from position ``start`` on that wait for a final label: ``wanted`` of them (plus one, to know
    whether there are more), looking through at most 10,000 positions."""
    n_items = client.progress(queue.name)["items"]
    settled = set(client.adjudications(queue.name)["item"].astype(int))
    positions: list[int] = []
    frames, agreement = [], {}
    at, window = start, _FIRST_WINDOW
    while at < n_items and len(positions) <= wanted and at - start < _MOST_LOOKED_AT:
        end = min(at + window, n_items, start + _MOST_LOOKED_AT)
        window = min(2 * window, _WINDOW)
        labels = client.annotations(queue.name, from_position=at, to_position=end)
        if not labels.empty:
            result = consensus(labels[["item", "rater", "label"]], classes=list(queue.classes))
            found = [
                int(p)
                for p in needs_adjudication(result, min_agreement=DEFAULT_MIN_AGREEMENT)
                if int(p) not in settled
            ]
            positions += sorted(found)
            frames.append(labels[labels["item"].isin(found)])
            agreement.update({p: float(result.labels.loc[p, "agreement"]) for p in found})
        at = end
    annotations = pd.concat(frames) if frames else pd.DataFrame(columns=["item", "rater", "label", "comment"])
    return Waiting(positions, annotations, agreement, at, n_items)


def _start() -> int:
    text = query("from") or "0"
    if not text.isdigit():
        raise InputError(f"'from' must be an item position, got {text!r}")
    return int(text)


def _show(refusal: Any = None) -> Any:
    name = str(query("queue") or "")
    client = store()
    queue = client.queue(name)
    _, limit = page_window(_PER_PAGE, _MOST_PER_PAGE)
    start = _start()
    found = _waiting(client, queue, start, limit)
    shown = found.positions[:limit]
    following = found.positions[limit] if len(found.positions) > limit else None
    if following is None and not found.to_the_end:
        following = found.looked_to
    annotations = found.annotations
    held = my_roles()
    return render(
        "adjudicate.html",
        refusal=refusal,
        queue=queue,
        items=[client.items(name, offset=p, limit=1)[0] for p in shown],
        raters={p: annotations[annotations["item"] == p].to_dict(orient="records") for p in shown},
        agreement=found.agreement,
        found=len(found.positions),
        to_the_end=found.to_the_end and len(found.positions) <= limit,
        start=start,
        looked_to=found.looked_to,
        n_items=found.n_items,
        following=following,
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
