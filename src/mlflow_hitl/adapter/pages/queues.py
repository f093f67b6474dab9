"""Queues: every review queue with its progress, consensus so far and how well its raters agree.

Paged: 10 queues a page (``?limit=`` up to 100). For each, the counts the store keeps
(``queues/progress``) and a majority-vote tally (:func:`~mlflow_hitl.review.queue_tally`: consensus
reached, awaiting adjudication, Krippendorff's alpha) from the label counts the database makes
(``queues/label-counts``), never from every label. A queue of more than 20,000 labels is not tallied
here: its row says so and links to its Adjudicate page, which looks through it window by window. So
the page's time is bounded by the page size, not by the store's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import PermissionDeniedError
from ...review import QueueTally, queue_tally
from ._web import Page, page_window, render, run_page, store

__all__ = ["PAGES", "POOR_AGREEMENT", "QueueSummary", "summarize"]

# Krippendorff's lowest alpha for tentative conclusions: below it the page warns.
POOR_AGREEMENT = 0.667
_PER_PAGE = 10
_MOST_PER_PAGE = 100
_MOST_LABELS = 20_000  # tallied on the page; a queue with more links to its Adjudicate page


@dataclass(frozen=True)
class QueueSummary:
    """One queue as the pages show it."""

    queue: Any
    progress: dict[str, int]
    tally: QueueTally | None
    run_link: str | None
    too_large: bool = False

    @property
    def verified(self) -> int:
        return 0 if self.tally is None else self.tally.verified

    @property
    def pending(self) -> int:
        return 0 if self.tally is None else self.tally.pending

    @property
    def alpha(self) -> float | None:
        return None if self.tally is None else self.tally.krippendorff_alpha

    @property
    def poor_agreement(self) -> bool:
        return self.alpha is not None and self.alpha < POOR_AGREEMENT


def summarize(queue: Any, *, with_consensus: bool = True) -> QueueSummary:
    """A queue's progress and (when asked, and at most 20,000 labels) its tally, read through the API's routes."""
    client = store()
    progress = client.progress(queue.name)
    tally = None
    too_large = with_consensus and progress["labels"] > _MOST_LABELS
    if with_consensus and (progress["labels"] or progress["adjudicated"]) and not too_large:
        try:
            tally = queue_tally(client, queue.name)
        except PermissionDeniedError:  # a blind queue's labels are for its adjudicators and admins
            tally = None
    return QueueSummary(
        queue=queue, progress=progress, tally=tally, run_link=run_page(queue.run_id), too_large=too_large
    )


def _queues() -> Any:
    everything = store().queues()
    offset, limit = page_window(_PER_PAGE, _MOST_PER_PAGE)
    shown = [summarize(q) for q in everything[offset : offset + limit]]
    return render(
        "queues.html",
        summaries=shown,
        offset=offset,
        limit=limit,
        total=len(everything),
        poor=POOR_AGREEMENT,
        most_labels=_MOST_LABELS,
    )


PAGES = (Page("queues", _queues, nav="Queues"),)
