"""Audit: the audit log, filtered and paged, the chain's verification, and an export of what is shown.

Filters are the ``audit/events`` route's own (``actor``; ``action`` and ``subject`` as prefixes, a model
``model:NAME``, a queue ``queue:NAME``) read one page at a time after a sequence number, so the page
never loads the whole log. The time window needs no filter of its own: events are appended in time
order (the time is taken under the chain's lock), so the first event at or after a time is found by a
binary search over sequence numbers (``audit/event``, about 20 reads at 1,000,000 events), and the
window becomes a range of sequence numbers. The chain's state is ``verify_audit(incremental=True)``,
what the gates use: a walk from the last full walk of this process when nothing before it changed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...errors import InputError
from ._web import Page, call, query, render, store

__all__ = ["PAGES", "AuditFilter"]

_PER_PAGE = 50
_MOST_PER_PAGE = 500
_EXPORT_PAGE = 10_000
_COLUMNS = ("seq", "time", "actor", "action", "subject", "payload", "key_id", "hash")


def _moment(text: str | None, key: str) -> str | None:
    """A date or date-time typed in the form, as the chain writes times (UTC, ``...T07:17:28.000000Z``)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{key!r} must be a date or date-time like 2026-11-30T07:17, got {text!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuditFilter:
    """What the reader asked for: the route's filters and a time window (``until`` excluded)."""

    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    since: str | None = None
    until: str | None = None

    @classmethod
    def from_query(cls) -> AuditFilter:
        subject, model, queue = query("subject"), query("model"), query("queue")
        if sum(x is not None for x in (subject, model, queue)) > 1:
            raise InputError("filter by one of subject, model or queue at a time")
        if model is not None:
            subject = f"model:{model}"
        elif queue is not None:
            subject = f"queue:{queue}"
        return cls(
            actor=query("actor"),
            action=query("action"),
            subject=subject,
            since=_moment(query("since"), "since"),
            until=_moment(query("until"), "until"),
        )

    @property
    def routed(self) -> dict[str, str | None]:
        return {"actor": self.actor, "action": self.action, "subject": self.subject}

    def seq_range(self, head: int) -> tuple[int, int]:
        """The window as sequence numbers: events ``first..last`` (empty when ``first > last``)."""
        first = 1 if self.since is None else _first_at(self.since, head)
        last = head if self.until is None else _first_at(self.until, head) - 1
        return first, last


def _first_at(moment: str, head: int) -> int:
    """The first sequence number whose event is at or after ``moment`` (``head + 1``: none is)."""
    low, high = 1, head + 1
    while low < high:
        middle = (low + high) // 2
        event = call("audit/event", seq=middle)["event"]
        if event is not None and event["time"] >= moment:
            high = middle
        else:
            low = middle + 1
    return low


def events_page(
    wanted: AuditFilter, *, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None, int]:
    """One page of the events ``wanted`` after ``after``, the cursor of the next page, and the chain's head."""
    head, _ = store().audit_head()
    first, last = wanted.seq_range(head)
    start = max(after, first - 1)
    if start >= last:
        return [], None, head
    answer = call("audit/events", **wanted.routed, after_seq=start, limit=limit)
    rows = [e for e in answer["events"] if e["seq"] <= last]
    more = answer["next_after_seq"] is not None and len(rows) == len(answer["events"])
    # The API's cursor, not the last row shown: a blind queue's events may be left out of a page.
    cursor = answer["next_after_seq"]
    following = cursor if more and cursor is not None and cursor < last else None
    return rows, following, head


def _events(wanted: AuditFilter) -> Iterator[dict[str, Any]]:
    after: int | None = 0
    while after is not None:
        rows, after, _ = events_page(wanted, after=after, limit=_EXPORT_PAGE)
        yield from rows


def _limit() -> int:
    text = query("limit")
    if text is None:
        return _PER_PAGE
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"'limit' must be a whole number ≥ 1, got {text!r}")
    return min(int(text), _MOST_PER_PAGE)


def _after() -> int:
    text = query("after") or "0"
    if not text.isdigit():
        raise InputError(f"'after' must be an event number, got {text!r}")
    return int(text)


def _audit() -> Any:
    wanted, limit, after = AuditFilter.from_query(), _limit(), _after()
    rows, following, head = events_page(wanted, after=after, limit=limit)
    kept = {k: query(k) for k in ("actor", "action", "subject", "model", "queue", "since", "until")}
    return render(
        "audit.html",
        events=rows,
        following=following,
        after=after,
        limit=limit,
        head=head,
        filters=kept,
        filtered=any(kept.values()),
        verification=store().verify_audit(incremental=True),
    )


def _csv(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_COLUMNS)
    for event in events:
        writer.writerow([event.get(c) for c in _COLUMNS])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for n, event in enumerate(events):
        yield ("," if n else "") + "\n" + json.dumps({c: event.get(c) for c in _COLUMNS})
    yield "\n]\n"


def _export() -> Any:
    """Every event the filters select, streamed page by page as CSV or JSON (a download)."""
    from flask import Response, stream_with_context

    wanted, kind = AuditFilter.from_query(), query("format") or "csv"
    if kind not in ("csv", "json"):
        raise InputError(f"'format' must be csv or json, got {kind!r}")
    body = (_csv if kind == "csv" else _json)(_events(wanted))
    response = Response(
        stream_with_context(body), mimetype="text/csv" if kind == "csv" else "application/json"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="hitl-audit.{kind}"'
    return response


PAGES = (Page("audit", _audit, nav="Audit"), Page("audit/export", _export))
