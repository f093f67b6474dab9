"""Queues: every review queue with its progress, consensus so far and how well its raters agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import PermissionDeniedError
from ...review import QueueConsensus, consensus_of
from ._web import Page, query, render, run_page, store

__all__ = ["PAGES", "POOR_AGREEMENT", "QueueSummary", "summarize"]

# Krippendorff's lowest alpha for tentative conclusions: below it the page warns.
POOR_AGREEMENT = 0.667
_PER_PAGE = 25


@dataclass(frozen=True)
class QueueSummary:
    """One queue as the pages show it."""

    queue: Any
    progress: dict[str, int]
    consensus: QueueConsensus | None
    run_link: str | None

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
    """A queue's progress and (when asked) its consensus and agreement, read through the API's routes."""
    client = store()
    progress = client.progress(queue.name)
    state = None
    if with_consensus and progress["labels"]:
        try:
            state = consensus_of(client.queue_labels(queue.name))
        except PermissionDeniedError:  # a blind queue's labels are for its adjudicators and admins
            state = None
    return QueueSummary(queue=queue, progress=progress, consensus=state, run_link=run_page(queue.run_id))


def _queues() -> Any:
    everything = store().queues()
    offset = max(int(query("offset") or 0), 0)
    shown = [summarize(q) for q in everything[offset : offset + _PER_PAGE]]
    return render(
        "queues.html",
        summaries=shown,
        offset=offset,
        limit=_PER_PAGE,
        total=len(everything),
        poor=POOR_AGREEMENT,
    )


PAGES = (Page("queues", _queues, nav="Queues"),)
