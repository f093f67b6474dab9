"""Queues: every review queue with its progress, consensus so far and how well its raters agree.

Paged: 10 queues a page (``?limit=`` up to 100), each with the counts the store keeps (``queues/progress``:
items, labels, complete items, adjudicated). Consensus and agreement need every label of the queue, so
they are tallied on the page only for a queue of at most 2,000 labels (a few ms each); a larger queue
shows its counts and links to its Adjudicate page, where its consensus is read whole. That keeps the
page's time bounded by the page size, not by the store's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import PermissionDeniedError
from ...review import QueueConsensus, consensus_of
from ._web import Page, page_window, render, run_page, store

__all__ = ["PAGES", "POOR_AGREEMENT", "QueueSummary", "summarize"]

# Krippendorff's lowest alpha for tentative conclusions: below it the page warns.
POOR_AGREEMENT = 0.667
_PER_PAGE = 10
_MOST_PER_PAGE = 100
_MOST_LABELS = 2_000  # tallied on the page; a queue with more links to its Adjudicate page


@dataclass(frozen=True)
class QueueSummary:
    """One queue as the pages show it."""

    queue: Any
    progress: dict[str, int]
    consensus: QueueConsensus | None
    run_link: str | None
    too_large: bool = False

    @property
    def verified(self) -> int:
        return 0 if self.consensus is None else len(self.consensus.verified)

    @property
    def pending(self) -> int:
        return 0 if self.consensus is None else len(self.consensus.pending)

    @property
    def alpha(self) -> float | None:
        stats = None if self.consensus is None else self.consensus.agreement
        return None if stats is None else stats.krippendorff_alpha

    @property
    def poor_agreement(self) -> bool:
        return self.alpha is not None and self.alpha < POOR_AGREEMENT


def summarize(queue: Any, *, with_consensus: bool = True) -> QueueSummary:
    """A queue's progress and (when asked, and at most 2,000 labels) its consensus and agreement,
    read through the API's routes."""
    client = store()
    progress = client.progress(queue.name)
    state = None
    too_large = with_consensus and progress["labels"] > _MOST_LABELS
    if with_consensus and progress["labels"] and not too_large:
        try:
            state = consensus_of(client.queue_labels(queue.name))
        except PermissionDeniedError:  # a blind queue's labels are for its adjudicators and admins
            state = None
    return QueueSummary(
        queue=queue, progress=progress, consensus=state, run_link=run_page(queue.run_id), too_large=too_large
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
