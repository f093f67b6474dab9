"""Labelling in the SQL store: reservations, labels one at a time or imported in bulk, adjudication.

Guarantees, held by the database rather than by politeness between processes:

- an item never gets more than its ``raters_per_item`` labels: the label count is raised by a
  conditional ``UPDATE ... WHERE n_labels < k`` in the same transaction as the insert;
- a reservation never takes a slot that is not free: the item row is locked, then its labels and
  reservations are counted again (see :func:`_taken_slots`);
- a reviewer labels an item at most once: a unique ``(item, user)`` constraint.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import InputError
from . import _schema as t
from ._audit import utc_now
from ._engine import IN_CHUNK, INSERT_CHUNK, SqlStoreBase, Writer
from ._lookups import item_from_row, item_id_at, label_reader, load_queue, require_role
from ._records import AnnotationRecord, ImportReport, Item, Queue, check_user

__all__ = ["SqlLabels"]

_ASSIGNMENT_TTL = timedelta(minutes=30)


class SqlLabels(SqlStoreBase):
    """Reserving items, labelling them, importing labels and adjudicating disagreements."""

    def next_item(self, name: str, *, user: str, exclude: Collection[int] = ()) -> Item | None:
        """Reserve the next item ``user`` has not labelled and that still needs labels; ``None`` when done.

        A reservation counts against the item's free slots for 30 minutes, so concurrent reviewers
        are spread over different items; it is released when the user labels or skips the item.
        ``exclude`` holds positions to pass over (the items a reviewer skipped in this session).
        """
        user = check_user(user)
        now = datetime.now(timezone.utc)
        now_text = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._engine.begin() as conn:
            queue = load_queue(conn, name)
            conn.execute(sa.delete(t.assignments).where(t.assignments.c.expires_at < now_text))
            open_reservations = (
                sa.select(sa.func.count()).where(t.assignments.c.item_id == t.items.c.id).scalar_subquery()
            )
            mine = sa.or_(
                sa.exists().where(t.annotations.c.item_id == t.items.c.id, t.annotations.c.user == user),
                sa.exists().where(t.assignments.c.item_id == t.items.c.id, t.assignments.c.user == user),
            )
            full: list[int] = []  # items that filled up between the search and the lock
            while True:
                candidate = conn.execute(
                    sa.select(t.items)
                    .where(
                        t.items.c.queue_id == queue.id,
                        t.items.c.position.not_in(list(exclude)),
                        t.items.c.id.not_in(full),
                        ~mine,
                        t.items.c.n_labels + open_reservations < queue.raters_per_item,
                    )
                    .order_by(t.items.c.position)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if candidate is None:
                    return None
                if _taken_slots(conn, candidate.id) < queue.raters_per_item:
                    break
                full.append(candidate.id)
            conn.execute(
                sa.insert(t.assignments).values(
                    item_id=candidate.id,
                    user=user,
                    expires_at=(now + _ASSIGNMENT_TTL).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                )
            )
            return item_from_row(queue, candidate)

    def release(self, name: str, *, position: int, user: str) -> None:
        """Give back a reserved item without labelling it (a skip)."""
        user = check_user(user)  # the same name next_item reserved under
        with self._engine.begin() as conn:
            queue = load_queue(conn, name)
            item_id = item_id_at(conn, queue, position)
            conn.execute(
                sa.delete(t.assignments).where(
                    t.assignments.c.item_id == item_id, t.assignments.c.user == user
                )
            )

    def annotate(
        self,
        name: str,
        *,
        position: int,
        user: str,
        label: Any,
        comment: str | None = None,
        source: str = "python",
    ) -> None:
        """Record ``user``'s label for item ``position``, with its audit event, atomically."""
        user = check_user(user)
        with self._write() as tx:
            queue = load_queue(tx.conn, name)
            label_text = label_reader(queue)(label)
            item_id = item_id_at(tx.conn, queue, position)
            _insert_annotations(tx, queue, [(item_id, position, user, label_text, comment, None)], source)

    def withdraw(self, name: str, *, position: int, user: str) -> None:
        """Take back ``user``'s own label of item ``position`` (an undo), with its audit event, atomically.

        The item's slot is free again. Refused once the label counts for something others rely on:
        the item is adjudicated, or a verified-label snapshot of the queue was recorded since the
        label was given. The ``annotation.withdraw`` event keeps the label taken back, so the chain
        still shows it was given.
        """
        user = check_user(user)
        with self._write() as tx:
            queue = load_queue(tx.conn, name)
            item_id = item_id_at(tx.conn, queue, position)
            mine = tx.conn.execute(
                sa.select(t.annotations.c.id, t.annotations.c.label, t.annotations.c.created_at).where(
                    t.annotations.c.item_id == item_id, t.annotations.c.user == user
                )
            ).first()
            if mine is None:
                raise InputError(f"{user} has no label on item {position} of queue {name!r} to take back")
            if tx.conn.execute(
                sa.select(t.adjudications.c.id).where(t.adjudications.c.item_id == item_id)
            ).first():
                raise InputError(f"item {position} of queue {name!r} is adjudicated: its labels stay")
            published = tx.conn.execute(
                sa.select(t.snapshots.c.id)
                .where(t.snapshots.c.queue_id == queue.id, t.snapshots.c.created_at >= mine.created_at)
                .limit(1)
            ).scalar()
            if published is not None:
                raise InputError(
                    f"the label of item {position} is in verified-label snapshot {published!r} of queue {name!r}: it stays"
                )
            tx.conn.execute(sa.delete(t.annotations).where(t.annotations.c.id == mine.id))
            tx.conn.execute(
                sa.update(t.items).where(t.items.c.id == item_id).values(n_labels=t.items.c.n_labels - 1)
            )
            tx.event(
                actor=user,
                action="annotation.withdraw",
                subject=f"queue:{name}/item:{position}",
                payload={"label": json.loads(mine.label)},
            )

    def import_annotations(
        self, name: str, records: Iterable[AnnotationRecord], *, actor: str, source: str
    ) -> ImportReport:
        """Add external labels atomically and idempotently.

        All or nothing: one bad record (unknown item, label outside the classes, an item pushed past
        its k labels, a rater who already gave a *different* label) refuses the whole import. A record
        identical to a stored annotation is counted as unchanged, so re-importing adds nothing.
        """
        actor = check_user(actor, "actor")
        records = list(records)
        with self._write() as tx:
            queue = load_queue(tx.conn, name)
            ids = {
                position: item_id
                for position, item_id in tx.conn.execute(
                    sa.select(t.items.c.position, t.items.c.id).where(t.items.c.queue_id == queue.id)
                )
            }
            stored = {
                (r.item_id, r.user): r.label
                for r in tx.conn.execute(
                    sa.select(t.annotations.c.item_id, t.annotations.c.user, t.annotations.c.label)
                    .select_from(t.annotations.join(t.items))
                    .where(t.items.c.queue_id == queue.id)
                )
            }
            new_rows, unchanged = [], 0
            seen: dict[tuple[int, str], str] = {}  # label of each (item, rater) earlier in this import
            read_label = label_reader(queue)
            for record in records:
                if record.position not in ids:
                    raise InputError(
                        f"import refers to item {record.position}, which queue {name!r} does not have"
                    )
                user = check_user(record.user, f"rater of item {record.position}")
                label = read_label(record.label)
                key = (ids[record.position], user)
                if key in stored or key in seen:
                    previous = stored[key] if key in stored else seen[key]
                    if previous != label:
                        raise InputError(
                            f"{user} already labelled item {record.position} as {json.loads(previous)!r}; "
                            f"the import says {json.loads(label)!r}"
                        )
                    unchanged += 1
                    continue
                seen[key] = label
                new_rows.append((key[0], record.position, user, label, record.comment, record.external_id))
            if new_rows:
                _insert_annotations(tx, queue, new_rows, source)
                tx.event(
                    actor=actor,
                    action="annotation.import",
                    subject=f"queue:{name}",
                    payload={"source": source, "added": len(new_rows), "unchanged": unchanged},
                )
        return ImportReport(added=len(new_rows), unchanged=unchanged)

    def adjudicate(self, name: str, *, position: int, user: str, label: Any, note: str | None = None) -> None:
        """Settle item ``position`` with a final label; needs the ``adjudicator`` role. Once per item."""
        user = check_user(user)
        with self._write() as tx:
            require_role(tx.conn, user, "adjudicator", "adjudicate")
            queue = load_queue(tx.conn, name)
            label_text = label_reader(queue)(label)
            item_id = item_id_at(tx.conn, queue, position)
            if tx.conn.execute(
                sa.select(t.adjudications.c.id).where(t.adjudications.c.item_id == item_id)
            ).first():
                raise InputError(f"item {position} of queue {name!r} is already adjudicated")
            tx.conn.execute(
                sa.insert(t.adjudications).values(
                    item_id=item_id, user=user, label=label_text, note=note, created_at=utc_now()
                )
            )
            tx.event(
                actor=user,
                action="adjudication.create",
                subject=f"queue:{name}/item:{position}",
                payload={"label": json.loads(label_text), "note": note},
            )


def _insert_annotations(
    tx: Writer,
    queue: Queue,
    rows: Sequence[tuple[int, int, str, str, str | None, str | None]],
    source: str,
) -> None:
    """Insert ``(item_id, position, user, label, comment, external_id)`` rows, refusing any beyond k."""
    existing = _existing_pairs(tx.conn, queue, sorted({r[0] for r in rows}))
    counts: dict[int, int] = {}
    for item_id, position, user, *_ in rows:
        if (item_id, user) in existing:
            raise InputError(f"{user} has already labelled item {position} of queue {queue.name!r}")
        existing.add((item_id, user))
        counts[item_id] = counts.get(item_id, 0) + 1
    _raise_label_counts(tx.conn, queue, counts)
    now = utc_now()
    records = [
        {
            "item_id": item_id,
            "user": user,
            "label": label,
            "comment": comment,
            "source": source,
            "external_id": external_id,
            "created_at": now,
        }
        for item_id, _, user, label, comment, external_id in rows
    ]
    for start in range(0, len(records), INSERT_CHUNK):
        tx.conn.execute(sa.insert(t.annotations), records[start : start + INSERT_CHUNK])
    pairs = [(r[0], r[2]) for r in rows]
    for start in range(0, len(pairs), IN_CHUNK):  # their reservations are used up
        tx.conn.execute(
            sa.delete(t.assignments).where(
                sa.tuple_(t.assignments.c.item_id, t.assignments.c.user).in_(pairs[start : start + IN_CHUNK])
            )
        )
    for _, position, user, label, comment, external_id in rows:
        payload: dict[str, Any] = {"label": json.loads(label), "source": source}
        if comment:
            payload["comment"] = comment
        if external_id is not None:
            payload["external_id"] = external_id
        tx.event(
            actor=user,
            action="annotation.create",
            subject=f"queue:{queue.name}/item:{position}",
            payload=payload,
        )


def _raise_label_counts(conn: Connection, queue: Queue, counts: dict[int, int]) -> None:
    """Add ``counts[item_id]`` labels to each item's count, refusing the lot if any item would pass k."""
    by_extra: dict[int, list[int]] = {}
    for item_id, extra in counts.items():
        by_extra.setdefault(extra, []).append(item_id)
    for extra, item_ids in by_extra.items():
        for start in range(0, len(item_ids), IN_CHUNK):
            chunk = item_ids[start : start + IN_CHUNK]
            # Conditional: an item already at k labels is not raised, and the count tells.
            updated = conn.execute(
                sa.update(t.items)
                .where(t.items.c.id.in_(chunk), t.items.c.n_labels + extra <= queue.raters_per_item)
                .values(n_labels=t.items.c.n_labels + extra)
            ).rowcount
            if updated != len(chunk):
                full = (
                    conn.execute(
                        sa.select(t.items.c.position)
                        .where(t.items.c.id.in_(chunk), t.items.c.n_labels + extra > queue.raters_per_item)
                        .order_by(t.items.c.position)
                    )
                    .scalars()
                    .first()
                )
                raise InputError(
                    f"item {full} of queue {queue.name!r} already has its {queue.raters_per_item} label(s)"
                )


def _existing_pairs(conn: Connection, queue: Queue, item_ids: Sequence[int]) -> set[tuple[int, str]]:
    """``(item_id, user)`` of stored annotations on ``item_ids`` (on the whole queue when there are many)."""
    query = sa.select(t.annotations.c.item_id, t.annotations.c.user)
    if len(item_ids) <= IN_CHUNK:
        query = query.where(t.annotations.c.item_id.in_(item_ids))
    else:
        query = query.select_from(t.annotations.join(t.items)).where(t.items.c.queue_id == queue.id)
    return {(r.item_id, r.user) for r in conn.execute(query)}


def _taken_slots(conn: Connection, item_id: int) -> int:
    """Labels plus open reservations of an item whose row lock this transaction holds.

    A statement of its own, so PostgreSQL reads it in a fresh snapshot: the search that locked the
    item re-checks its condition after waiting for the lock only against the item's row, with the
    reservations as they were when that search began. A reviewer who reserved the item's last free
    slot and committed meanwhile is seen here, and the item is passed over instead of over-reserved.
    Every reservation locks the item row first, so nobody can add one while this count stands.
    """
    reservations = sa.select(sa.func.count()).where(t.assignments.c.item_id == item_id).scalar_subquery()
    return int(
        conn.execute(sa.select(t.items.c.n_labels + reservations).where(t.items.c.id == item_id)).scalar_one()
    )
