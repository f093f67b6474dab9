"""The tamper-evident audit chain: every human action is an event whose hash covers the one before.

An event is ``{seq, time, actor, action, subject, payload, prev_hash, hash, key_id}``. ``hash`` is
taken over the event's canonical JSON form (keys sorted, no spaces, UTF-8, ``payload`` itself
canonical) *without* ``hash`` and ``key_id``: an HMAC-SHA256 under the key ``key_id`` names (see
``_keyring.py``), or a plain sha256 when the event was written without a key. Changing, deleting,
inserting or reordering any stored event breaks the chain at that event, and :func:`verify_chain`
names the first one. Without a key, someone who can write the database can re-chain everything after
an edit; with a key only the key's holder can, and anchors kept outside the database (``_anchors.py``)
reveal a truncated or wiped chain.

The canonical form is assembled by string formatting around ``json.dumps`` of each field rather
than by dumping a dict per event: it is byte-for-byte the same JSON (sorted keys, compact) and
about three times faster, which is what lets ``audit verify`` stream a million events quickly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._hashing import canonical_json, sha256_hex
from .._progress import Progress
from ._keyring import AuditKeyring

__all__ = [
    "GENESIS_HASH",
    "ChainVerification",
    "canonical_json",
    "event_hash",
    "event_intact",
    "utc_now",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
# json.dumps(..., ensure_ascii=False) makes a new encoder on every call, which is most of the cost of
# hashing an event. For a string, JSONEncoder(ensure_ascii=False).encode returns json.encoder's
# encode_basestring (C-accelerated) of it; calling that directly skips the method's type dispatch
# (about 7 % of a chain walk). The output is byte-for-byte what json.dumps gives.
_string = json.encoder.encode_basestring


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    seq: int,
    time: str,
    actor: str,
    action: str,
    subject: str,
    payload: str,
    prev_hash: str,
    key_id: str | None = None,
    keyring: AuditKeyring | None = None,
) -> str:
    """The hash of an event's canonical JSON without its hash; ``payload`` is already canonical JSON text.

    HMAC-SHA256 under ``keyring``'s key ``key_id`` when ``key_id`` is given, else a plain sha256.
    """
    message = '{"action":%s,"actor":%s,"payload":%s,"prev_hash":%s,"seq":%d,"subject":%s,"time":%s}' % (  # noqa: UP031 (speed)
        _string(action),
        _string(actor),
        payload,
        _string(prev_hash),
        seq,
        _string(subject),
        _string(time),
    )
    if key_id:
        if keyring is None or not keyring.knows(key_id):
            raise KeyError(key_id)
        return keyring.mac(message, key_id)
    return sha256_hex(message)


_EVENT_FIELDS = ("seq", "time", "actor", "action", "subject", "payload", "prev_hash")


def event_intact(event: Mapping[str, Any], keyring: AuditKeyring | None) -> bool:
    """Whether one stored event (a row of ``audit_events()``) still hashes to its stored hash.

    For the few events a decision rests on, whatever part of the chain a walk covered. An event signed
    with a key that ``keyring`` does not hold cannot be vouched for: it fails closed.
    """
    key_id = event.get("key_id") or None
    if key_id and (keyring is None or not keyring.knows(key_id)):
        return False
    fields = {k: event[k] for k in _EVENT_FIELDS}
    return event_hash(**fields, key_id=key_id, keyring=keyring) == event["hash"]


@dataclass(frozen=True)
class ChainVerification:
    """The outcome of :func:`verify_chain`.

    ``first_bad_seq`` is the sequence number of the first event that is altered, missing or out of
    order (``None`` when the chain is intact); ``problem`` says what was found there. ``n_events``
    events were walked, from ``walked_from`` on (1 unless the walk started at an anchor).
    ``unkeyed_events`` of them carry a plain sha256 (written without a key: only naive edits to them
    can be detected); ``key_ids`` names the keys that signed the others; ``anchors_checked`` counts the
    outside anchors the walk compared the chain with.
    """

    ok: bool
    n_events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    walked_from: int = 1
    unkeyed_events: int = 0
    key_ids: tuple[str, ...] = ()
    anchors_checked: int = 0

    @property
    def keyed(self) -> bool:
        """Every walked event is signed with a key (an empty walk counts as keyed)."""
        return self.unkeyed_events == 0


# Often enough for a bar to move (a walk hashes some 100,000 events a second), rarely enough to cost nothing.
_PROGRESS_EVERY = 1_000


class _Walk:
    """The running state of one walk: where it is, what it has seen, and how to report a break."""

    def __init__(self, anchor: tuple[int, str] | None) -> None:
        self.anchored = anchor is not None and anchor[0] >= 1
        self.expected_seq, self.prev = (anchor[0], anchor[1]) if self.anchored else (1, GENESIS_HASH)  # type: ignore[index]
        self.walked_from, self.count, self.unkeyed = self.expected_seq, 0, 0
        self.key_ids: set[str] = set()
        self.keyed_seq: int | None = None  # the first keyed event walked
        self.anchors_checked = 0

    def result(self, first_bad_seq: int | None = None, problem: str | None = None) -> ChainVerification:
        return ChainVerification(
            first_bad_seq is None,
            self.count,
            self.expected_seq - 1,
            self.prev,
            first_bad_seq,
            problem,
            self.walked_from,
            self.unkeyed,
            tuple(sorted(self.key_ids)),
            self.anchors_checked,
        )


def _signature_problem(walk: _Walk, seq: int, key_id: str | None, keyring: AuditKeyring | None) -> str | None:
    """Why event ``seq``'s key makes it unverifiable or suspect, or ``None``."""
    if key_id:
        if keyring is None:
            return f"event {seq} is signed with audit key {key_id!r}; verify with the key (MLFLOW_HITL_AUDIT_KEY)"
        if not keyring.knows(key_id):
            return f"event {seq} is signed with audit key {key_id!r}, which is not among the keys given"
        return None
    if walk.keyed_seq is not None:
        return (
            f"event {seq} is not signed although event {walk.keyed_seq} before it is: "
            "written or re-chained by someone without the audit key"
        )
    return None


def verify_chain(
    rows: Iterable[Sequence[Any]],
    *,
    expected_head: tuple[int, str] | None = None,
    anchor: tuple[int, str] | None = None,
    keyring: AuditKeyring | None = None,
    anchors: Mapping[int, str] | None = None,
    progress: Progress | None = None,
) -> ChainVerification:
    """Walk events ``(seq, time, actor, action, subject, payload, prev_hash, hash[, key_id])`` in stored order.

    ``expected_head`` is the ``(seq, hash)`` the store recorded as its head: events deleted from
    the end of the chain leave every remaining link intact, so only the recorded head reveals them.
    ``anchor`` is an event ``(seq, hash)`` verified earlier: the rows then start at that event,
    which must still hash to that hash, and its link to the events before it is taken as verified.
    ``keyring`` verifies keyed events; once a keyed event has been walked, an unkeyed one after it is a
    break. ``anchors`` maps ``seq`` to the hash recorded for it outside the database: a stored event
    that differs from its anchor, or a chain that ends before its last anchor, is a break.
    ``progress(walked, total)`` is told every ``_PROGRESS_EVERY`` events (the total from ``expected_head``).
    """
    walk = _Walk(anchor)
    total = 0 if expected_head is None else max(expected_head[0] - walk.walked_from + 1, 0)
    outside = dict(anchors or {})
    for row in rows:
        if broken := _event_problem(walk, row, keyring, outside):
            return walk.result(*broken)
        if progress is not None and walk.count % _PROGRESS_EVERY == 0:
            progress(walk.count, max(total, walk.count))
    if progress is not None:
        progress(walk.count, max(total, walk.count))
    broken = _ending_problem(walk, outside, expected_head)
    return walk.result(*broken) if broken else walk.result()


def _event_problem(
    walk: _Walk, row: Sequence[Any], keyring: AuditKeyring | None, outside: Mapping[int, str]
) -> tuple[int, str] | None:
    """``(seq, problem)`` if the next stored event breaks the chain; else the walk advances past it."""
    seq, time, actor, action, subject, payload, prev_hash, stored_hash = row[:8]
    key_id = row[8] if len(row) > 8 else None
    if seq != walk.expected_seq:
        kind = "missing" if seq > walk.expected_seq else "out of order or duplicated"
        return walk.expected_seq, f"event {walk.expected_seq} is {kind} (found {seq} next)"
    if walk.anchored and walk.count == 0:
        # The anchor was verified with the events before it; its stored hash must not have moved.
        if stored_hash != walk.prev:
            return seq, f"event {seq} was altered since it was verified (its hash changed)"
    elif prev_hash != walk.prev:
        return seq, f"event {seq} does not link to event {seq - 1} (prev_hash differs)"
    if problem := _signature_problem(walk, seq, key_id, keyring):
        return seq, problem
    fields = dict(seq=seq, time=time, actor=actor, action=action, subject=subject, payload=payload)
    if event_hash(**fields, prev_hash=prev_hash, key_id=key_id, keyring=keyring) != stored_hash:
        return seq, f"event {seq} was altered (its hash does not match its content)"
    if seq in outside:
        walk.anchors_checked += 1
        if outside[seq] != stored_hash:
            return seq, f"event {seq} differs from the hash anchored outside the database"
    if key_id:
        walk.key_ids.add(key_id)
        walk.keyed_seq = walk.keyed_seq or seq
    else:
        walk.unkeyed += 1
    walk.prev, walk.expected_seq, walk.count = stored_hash, walk.expected_seq + 1, walk.count + 1
    return None


def _ending_problem(
    walk: _Walk, outside: Mapping[int, str], expected_head: tuple[int, str] | None
) -> tuple[int, str] | None:
    """``(seq, problem)`` if the chain stops short: of its anchor, of an outside anchor, or of its recorded head."""
    if walk.anchored and walk.count == 0:
        return walk.expected_seq, f"event {walk.expected_seq}, verified before, is missing"
    last_anchor = max((seq for seq in outside if seq >= walk.walked_from), default=0)
    first = walk.expected_seq
    if last_anchor > first - 1:
        return first, (
            f"events {first}..{last_anchor} are missing: the chain ends at {first - 1} "
            f"but event {last_anchor} was anchored outside the database"
        )
    if expected_head is None or expected_head == (first - 1, walk.prev):
        return None
    head_seq, head_hash = expected_head
    if head_seq >= first:
        return first, f"events {first}..{head_seq} are missing (recorded head is {head_seq})"
    return head_seq, f"the recorded chain head ({head_seq}, {head_hash[:12]}) does not match the events"
