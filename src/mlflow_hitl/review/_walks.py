"""What a process remembers of its last full walk of a store's audit chain.

A full walk costs ~3 µs per event: a third of a second at 100,000 events, on every registry gate
check. The chain only grows, and migration 0003 makes the database count every UPDATE and DELETE of
a stored event. So after a full walk verified the chain up to head ``(seq, hash)``, a later walk may
start at that head, provided the change counter and the triggers that keep it are exactly as they
were: then nothing before the head has changed. A full walk is still made when the last one is older
than ``FULL_WALK_EVERY_SECONDS``, which bounds how long a change that also defeats the counter
(resetting it, or disabling triggers for one PostgreSQL session) could go unseen by the gates.
``mlflow-hitl audit verify`` always walks everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ._audit import ChainVerification

__all__ = ["FULL_WALK_EVERY_SECONDS", "last_full_walk", "trigger_state"]

FULL_WALK_EVERY_SECONDS = 300.0


def trigger_state(conn: Connection) -> Hashable | None:
    """A value that changes whenever the change-counting triggers are dropped, replaced or disabled.

    ``None`` on databases without them: every verification there walks the whole chain.
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # schema_version moves with every schema change; the rows show the triggers are there at all.
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
        triggers = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'hitl_audit_events' "
            "ORDER BY name"
        ).all()
        return (version, tuple(map(tuple, triggers))) if len(triggers) == 2 else None
    if dialect == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT t.tgname, t.tgenabled, md5(pg_get_triggerdef(t.oid)), md5(p.prosrc) "
                "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE t.tgrelid = 'hitl_audit_events'::regclass AND NOT t.tgisinternal ORDER BY t.tgname"
            )
        ).all()
        enabled = [row for row in rows if row[0] == "hitl_audit_events_changed" and row[1] == "O"]
        return tuple(map(tuple, rows)) if enabled else None
    return None


class _LastFullWalks:
    """Per store URL: the head a full walk verified, the database state it saw, and when."""

    def __init__(self) -> None:
        self._walks: dict[str, tuple[tuple[int, str], Any, float]] = {}
        self._walking: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def lock(self, url: str) -> threading.Lock:
        """The lock under which an incremental verification of ``url``'s chain makes a full walk: one at a time,
        and a verification waiting for it finds the head it verified (``audit verify`` walks without it)."""
        with self._lock:
            return self._walking.setdefault(url, threading.Lock())

    def anchor(self, url: str, state: tuple[Hashable, ...]) -> tuple[int, str] | None:
        """Where an incremental walk may start, or ``None`` when it must walk everything.

        ``state`` is what the database shows now: the change counter, the first event's hash and the
        :func:`trigger_state` (last; ``None`` when there are no counting triggers).
        """
        if state[-1] is None:
            return None
        with self._lock:
            walk = self._walks.get(url)
        if walk is None:
            return None
        head, seen, at = walk
        if seen != state or time.monotonic() - at >= FULL_WALK_EVERY_SECONDS:
            return None
        return head

    def record(self, url: str, state: tuple[Hashable, ...], result: ChainVerification) -> None:
        """Remember a full walk that found the chain intact (and forget one that did not)."""
        with self._lock:
            if result.ok and state[-1] is not None:
                self._walks[url] = ((result.head_seq, result.head_hash), state, time.monotonic())
            else:
                self._walks.pop(url, None)


last_full_walk = _LastFullWalks()
