"""The audit chain in the SQL store: appending events from outside, reading and verifying the chain.

The events themselves are appended by every writing transaction (:class:`._engine.Writer`); the
hashing and the walk are pure (:mod:`._audit`), what a process remembers of its walks is :mod:`._walks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa

from .._progress import Progress
from . import _schema as t
from ._anchors import check_anchors
from ._audit import ChainVerification, verify_chain
from ._engine import SqlStoreBase
from ._records import check_page, check_user
from ._walks import last_full_walk as _last_full_walk
from ._walks import trigger_state as _trigger_state

__all__ = ["SqlAudit"]

_ANCHORED_ACTIONS = ("gate.", "promotion.")


class SqlAudit(SqlStoreBase):
    """Events appended for actions taken outside the store, the chain head, events, and verification."""

    def record_event(
        self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]:
        """Append one audit event for an action taken outside the store (a policy change, a promotion)."""
        actor = check_user(actor, "actor")
        # A gate decision is the moment an auditor will later ask about: its head goes outside the database.
        with self._write(anchor=action.startswith(_ANCHORED_ACTIONS)) as tx:
            return tx.event(actor=actor, action=action, subject=subject, payload=payload)

    def audit_head(self) -> tuple[int, str]:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1)
            ).one()
        return int(row.seq), str(row.hash)

    def verify_audit(
        self, *, incremental: bool = False, progress: Progress | None = None
    ) -> ChainVerification:
        """Walk the chain in ``seq`` order against the recorded head; names the first bad event.

        ``incremental=True`` (what the registry gates use) walks only from the head this process last
        verified in a full walk of this store, when the database proves nothing before it has changed
        since: its change counter (a trigger counts every UPDATE and DELETE of a stored event), its first
        event and its trigger definitions are as they were, and that full walk is under
        ``FULL_WALK_EVERY_SECONDS`` old. Otherwise, and always by default, it walks the whole chain. A full
        walk it needs is made under a lock per store: a verification arriving meanwhile (a request while
        the server walks the chain at start) waits, then starts from the head that walk verified.

        Keyed events are checked with the store's keyring, and the chain against every anchor in its
        anchor log: an anchored event that changed, or a chain that ends before its last anchor, is a break.
        ``progress(walked, total)`` is told as the walk goes (:func:`verify_chain`).
        """
        anchors = check_anchors(self.anchor_log.records(), self.keyring) if self.anchor_log else None
        if anchors is not None and anchors.problem:
            head_seq, head_hash = self.audit_head()
            return ChainVerification(False, 0, head_seq, head_hash, None, f"anchor log: {anchors.problem}")
        hashes = None if anchors is None else anchors.hashes
        if not incremental:
            return self._walk(hashes, progress, incremental=False)
        found = self._walk(hashes, progress, incremental=True, full=False)
        if found is None:
            # One full walk of a store at a time: a verification arriving while one runs (the server's
            # start-up walk, another request) waits for it, then walks only what came after its head.
            with _last_full_walk.lock(self.url):
                found = self._walk(hashes, progress, incremental=True)
        return found

    def _walk(
        self,
        anchors: Mapping[int, str] | None,
        progress: Progress | None,
        *,
        incremental: bool,
        full: bool = True,
    ) -> ChainVerification | None:
        """One walk in one read snapshot; ``None`` (nothing walked) when it would be a full walk and ``full`` is false."""
        columns = [
            t.audit_events.c[n]
            for n in ("seq", "time", "actor", "action", "subject", "payload", "prev_hash", "hash", "key_id")
        ]
        with self._engine.connect() as conn:
            conn = conn.execution_options(hitl_read=True, yield_per=20_000)
            if conn.dialect.name == "postgresql":
                # One snapshot for the head and the events, as SQLite's read transaction already is:
                # events appended meanwhile by reviewers are not part of this walk, not a break in it.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # Read before the events: a change made after this read shows at the next verification.
                head = conn.execute(
                    sa.select(t.chain_head.c.seq, t.chain_head.c.hash, t.chain_head.c.changes).where(
                        t.chain_head.c.id == 1
                    )
                ).one()
                # The first event names the chain: a database dropped and made again at the same URL
                # starts another chain, whose events must not be checked against the old one's.
                first = conn.execute(
                    sa.select(t.audit_events.c.hash).where(t.audit_events.c.seq == 1)
                ).scalar()
                state = (int(head.changes), first, _trigger_state(conn))
                expected_head = (int(head.seq), str(head.hash))
                anchor = _last_full_walk.anchor(self.url, state) if incremental else None
                if anchor is None and not full:
                    return None
                query = sa.select(*columns).order_by(t.audit_events.c.seq)
                if anchor is not None:
                    query = query.where(t.audit_events.c.seq >= anchor[0])
                result = verify_chain(
                    conn.execute(query),
                    expected_head=expected_head,
                    anchor=anchor,
                    keyring=self.keyring,
                    anchors=anchors,
                    progress=progress,
                )
        if anchor is None:
            _last_full_walk.record(self.url, state, result)
        return result

    def audit_event(self, seq: int) -> dict[str, Any] | None:
        """The stored event with sequence number ``seq``, or ``None``."""
        with self._read() as conn:
            row = conn.execute(sa.select(t.audit_events).where(t.audit_events.c.seq == int(seq))).first()
        return None if row is None else dict(row._mapping)

    def audit_events(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> pd.DataFrame:
        """Events in order; ``subject`` matches a prefix (``queue:q1`` finds every item of q1), ``action`` too.

        ``after_seq``/``limit``: the page of at most ``limit`` events after event ``after_seq``, read
        from the primary key's range (a page deep in a long chain costs what the first page does), or,
        for a subject with few events, from the subject's index (see :func:`_few_events`).
        ``newest_first``: the newest events first (with ``limit``, the newest ``limit`` of them).
        """
        check_page(after_seq, limit, "after_seq")
        with self._read() as conn:
            order = t.audit_events.c.seq.desc() if newest_first else t.audit_events.c.seq
            query = sa.select(t.audit_events).order_by(order)
            seq, by_subject = t.audit_events.c.seq, True
            if subject is not None and limit is not None and conn.dialect.name == "sqlite":
                by_subject = _few_events(conn, subject)
                if by_subject:
                    seq = seq + 0  # not the key: the subject's index drives, not the range after after_seq
            if after_seq:
                query = query.where(seq > after_seq)
            if subject is not None:
                query = query.where(_subject_or_below(conn, subject, indexed=by_subject))
            if actor is not None:
                query = query.where(t.audit_events.c.actor == actor)
            if action is not None:
                query = _by_actions(conn, query, action, limit, newest_first)
            elif limit is not None:
                query = query.limit(limit)
            rows = [] if query is None else conn.execute(query).all()
        return pd.DataFrame(rows, columns=[c.name for c in t.audit_events.columns])


_MOST_ACTIONS = 500


def _actions(conn: Any, prefix: str) -> list[str] | None:
    """The stored actions starting with ``prefix``, found by skipping through the action index (one
    short read per distinct action: a chain holds a few dozen, however long it is); ``None`` when there
    are more than 500, and the prefix is matched row by row instead.

    The prefix is matched here, in Python, so the answer does not depend on the database's collation.
    """
    found: list[str] = []
    column, after = t.audit_events.c.action, None
    for _ in range(_MOST_ACTIONS + 1):
        step = sa.select(column).order_by(column).limit(1)
        after = conn.execute(step if after is None else step.where(column > after)).scalar()
        if after is None:
            return found
        if after.startswith(prefix):
            found.append(after)
    return None


def _by_actions(conn: Any, query: Any, prefix: str, limit: int | None, newest_first: bool) -> Any:
    """``query`` restricted to the actions starting with ``prefix`` (``None``: no stored action does).

    With ``limit``, each action's page is read from the ``(action, seq)`` index and the pages merged, so
    a page costs the same for an action of one event or of a million.
    """
    column = t.audit_events.c.action
    actions = _actions(conn, prefix)
    if actions is None:
        query = query.where(column.startswith(prefix, autoescape=True))
    elif not actions:
        return None
    elif limit is None or len(actions) == 1:
        query = query.where(column.in_(actions) if len(actions) > 1 else column == actions[0])
    else:
        merged = sa.union_all(*(sa.select(query.where(column == a).limit(limit).subquery()) for a in actions))
        pages = merged.subquery()
        query = sa.select(pages).order_by(pages.c.seq.desc() if newest_first else pages.c.seq)
    return query if limit is None else query.limit(limit)


_FEW = 5_000


def _few_events(conn: Any, subject: str) -> bool:
    """Whether ``subject`` and below have at most 5,000 events: then a page of them is read from the
    subject's index and sorted (under 2 ms); with more, from the key range, where they are dense
    enough to fill a page after a short walk.

    SQLite's planner, without statistics, picks one plan for both: at 300,000 events, a page of an
    item's events after event 150,000 took 635 ms walking the key range (0.1 ms from the index), and
    the first page of a queue's 200,000 events 500 ms sorting them all (0.6 ms walking the range).
    Counting at most 5,001 index entries settles it (about 1 ms).
    """
    probe = (
        sa.select(sa.literal(1))
        .select_from(t.audit_events)
        .where(_subject_or_below(conn, subject))
        .limit(_FEW + 1)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one()) <= _FEW


def _subject_or_below(conn: Any, subject: str, *, indexed: bool = True) -> Any:
    """``subject`` itself or anything below it (``subject/...``), in a form the subject index can answer.

    On SQLite (binary collation) the prefix is a range, ``subject/ <= s < subject0`` ('0' follows '/'),
    which the index serves; ``LIKE 'subject/%'`` read the whole table (25-260 ms at 100,000 events against
    0.06 ms). Other databases may collate text so that a range is not a prefix: they keep ``LIKE``.
    ``indexed=False`` compares ``subject || ''``, which the index cannot serve, so the key range drives.
    """
    column = t.audit_events.c.subject if indexed else t.audit_events.c.subject + ""
    if conn.dialect.name == "sqlite":
        below = sa.and_(column >= subject + "/", column < subject + "0")
    else:
        below = column.startswith(subject + "/", autoescape=True)
    return sa.or_(column == subject, below)
