"""What a blind queue keeps from its reviewers when the store is read through the server.

A blind queue exists so that a reviewer's label is their own: not anchored on the model's prediction
or confidence, on why the row was picked, on the gold answer, or on what other raters said. The SQL
store hides the prediction and confidence of a blind queue's items from everyone; through
``/hitl/api/`` every read an ordinary reviewer can make also withholds the rest:

- items (``items/list``, ``items/next``): no prediction, confidence, selection score, reason or group;
- labels (``annotations/list``): the caller's own only; audit events of the queue's items: the
  caller's own only (an ``annotation.create`` event holds its label), others' left out of lists and
  shown alone (``audit/event``) as their sequence number and time only;
- gold labels, adjudications and the one-read view for consensus (``queues/labels``): refused.

Adjudicators and admins (:data:`SEES_BLIND`) settle disagreements and audit the queue: they see it all.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..errors import PermissionDeniedError

if TYPE_CHECKING:
    import pandas as pd

    from ..review import Item, ReviewStoreProtocol

__all__ = ["HIDDEN_REASON", "SEES_BLIND", "BlindView"]

SEES_BLIND = frozenset({"adjudicator", "admin"})
HIDDEN_REASON = "hidden (blind queue)"


class BlindView:
    """The blind queues as one caller may read them; roles and queues are read once, when first needed."""

    def __init__(self, store: ReviewStoreProtocol, actor: str) -> None:
        self.store, self.actor = store, actor
        self._privileged: bool | None = None

    @property
    def privileged(self) -> bool:
        """Whether the caller holds a role that sees blind queues whole."""
        if self._privileged is None:
            self._privileged = bool(SEES_BLIND & set(self.store.roles(self.actor)["role"]))
        return self._privileged

    def hides(self, queue: str) -> bool:
        """Whether queue ``queue`` is blind to the caller."""
        return self.store.queue(queue).blind and not self.privileged

    def item(self, item: Item | None) -> Item | None:
        """``item`` as the caller may see it (its queue known to be blind to them)."""
        if item is None:
            return None
        return dataclasses.replace(
            item, prediction=None, confidence=None, score=None, reason=HIDDEN_REASON, group=None
        )

    def refuse(self, queue: str, what: str) -> None:
        """Refuse reading ``what`` of ``queue`` when the queue is blind to the caller."""
        if self.hides(queue):
            raise PermissionDeniedError(
                f"{self.actor} cannot read the {what} of queue {queue!r}: it is blind, and its "
                f"{what} are for {' and '.join(sorted(SEES_BLIND))}s"
            )

    def own_labels(self, annotations: pd.DataFrame) -> pd.DataFrame:
        """The caller's own rows of a blind queue's annotations."""
        return annotations[annotations["rater"] == self.actor]

    def events(self, events: pd.DataFrame) -> pd.DataFrame:
        """Audit events without others' acts on the items of queues blind to the caller."""
        if events.empty or self.privileged:
            return events
        prefixes = self._blind_item_subjects()
        if not prefixes:
            return events
        on_blind = events["subject"].str.startswith(prefixes)
        return events[~on_blind | (events["actor"] == self.actor)]

    def event(self, event: dict[str, Any] | None) -> dict[str, Any] | None:
        """One audit event, or, when :meth:`events` would leave it out, only its ``seq`` and ``time``
        (and ``withheld``): enough to find events by time, nothing of whose act it was or what it said."""
        if event is None or self.privileged or event["actor"] == self.actor:
            return event
        if str(event["subject"]).startswith(self._blind_item_subjects()):
            return {"seq": event["seq"], "time": event["time"], "withheld": True}
        return event

    def _blind_item_subjects(self) -> tuple[str, ...]:
        return tuple(f"queue:{q.name}/item:" for q in self.store.queues() if q.blind)
