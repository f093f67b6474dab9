"""The review store: queues, items, annotations, adjudications, roles, sign-offs, snapshots, audit chain.

One SQL implementation serves SQLite (the default, a file beside a local MLflow store) and
PostgreSQL (teams). Guarantees, held by the database rather than by politeness between processes:

- an item never gets more than its ``raters_per_item`` labels: the label count is raised by a
  conditional ``UPDATE ... WHERE n_labels < k`` in the same transaction as the insert;
- a reviewer labels an item at most once: a unique ``(item, user)`` constraint;
- every human action appends an audit event in the same transaction as the action, and every
  writing transaction first locks the chain head (``SELECT ... FOR UPDATE`` on PostgreSQL; on
  SQLite every writing transaction is ``BEGIN IMMEDIATE``), so concurrent reviewers still produce
  one valid chain.

The acting user is a plain string handed in by the caller. Locally it comes from ``--user``,
``MLFLOW_HITL_USER`` or the OS user: that is identification, not authentication.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._roles import ROLES, SIGNOFF_ROLES, signoff_role
from ..errors import InputError, NotFoundError, PermissionDeniedError
from . import _schema as t
from ._audit import ChainVerification, canonical_json, event_hash, utc_now, verify_chain
from ._walks import last_full_walk as _last_full_walk
from ._walks import trigger_state as _trigger_state

__all__ = ["ROLES", "SIGNOFF_ROLES", "AnnotationRecord", "ImportReport", "Item", "Queue", "ReviewStore"]

_ASSIGNMENT_TTL = timedelta(minutes=30)
_INSERT_CHUNK = 5_000
_IN_CHUNK = 500  # values per IN (...) list


def _dump_label(label: Any) -> str:
    return json.dumps(label.item() if isinstance(label, np.generic) else label)


def _json_value(value: Any) -> Any:
    """A cell of a pandas row as plain JSON (NaN/NaT → null, numpy scalars → Python)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if value is pd.NaT:  # before the datetime test: NaT is a datetime, and its isoformat() is "NaT"
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return value


def _check_user(user: str, what: str = "user") -> str:
    if not isinstance(user, str) or not user.strip():
        raise InputError(f"{what} must be a non-empty name (use --user or MLFLOW_HITL_USER)")
    if len(user) > 200:
        raise InputError(f"{what} is longer than 200 characters")
    return user.strip()


@dataclass(frozen=True)
class Queue:
    name: str
    id: int
    run_id: str | None
    classes: tuple[Any, ...]
    raters_per_item: int
    blind: bool
    strategy: str
    columns: tuple[str, ...]
    created_by: str
    created_at: str


@dataclass(frozen=True)
class Item:
    """One row to label. ``prediction`` and ``confidence`` are ``None`` in blind queues."""

    queue: str
    position: int
    row_key: str
    payload: Mapping[str, Any]
    prediction: Any
    confidence: float | None
    score: float | None
    reason: str
    group: str | None
    n_labels: int


@dataclass(frozen=True)
class AnnotationRecord:
    """One label from outside (Label Studio, CSV) on the way into :meth:`ReviewStore.import_annotations`."""

    position: int
    user: str
    label: Any
    comment: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class ImportReport:
    """What an import did: new annotations, and records identical to stored ones (re-imports)."""

    added: int
    unchanged: int


def _label_reader(queue: Queue) -> Any:
    """A function from a label to its stored JSON text, refusing labels outside the queue's classes.

    Labels typed at a terminal or read from CSV arrive as strings: they match the class they spell.
    """
    allowed = {_dump_label(c): _dump_label(c) for c in queue.classes}
    allowed_strings = {str(c): _dump_label(c) for c in queue.classes}

    def read(label: Any) -> str:
        if isinstance(label, str) and label in allowed_strings:
            return allowed_strings[label]
        text = _dump_label(label)
        if text not in allowed:
            raise InputError(f"label {label!r} is not one of the queue's classes: {list(queue.classes)}")
        return text

    return read


class _Writer:
    """A writing transaction holding the chain head: the action's rows and its audit events commit together."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        head = conn.execute(
            sa.select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1).with_for_update()
        ).one()
        self.seq, self.hash = int(head.seq), str(head.hash)
        self._events: list[dict[str, Any]] = []

    def event(self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]) -> tuple[int, str]:
        """Append one event after the current head; returns its ``(seq, hash)``."""
        seq, time, text = self.seq + 1, utc_now(), canonical_json(payload)
        digest = event_hash(
            seq=seq, time=time, actor=actor, action=action, subject=subject, payload=text, prev_hash=self.hash
        )
        self._events.append(
            {
                "seq": seq,
                "time": time,
                "actor": actor,
                "action": action,
                "subject": subject,
                "payload": text,
                "prev_hash": self.hash,
                "hash": digest,
            }
        )
        self.seq, self.hash = seq, digest
        return seq, digest

    def flush(self) -> None:
        for start in range(0, len(self._events), _INSERT_CHUNK):
            self.conn.execute(sa.insert(t.audit_events), self._events[start : start + _INSERT_CHUNK])
        if self._events:
            self.conn.execute(
                sa.update(t.chain_head).where(t.chain_head.c.id == 1).values(seq=self.seq, hash=self.hash)
            )
        self._events.clear()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling defers it).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the database lock up front: no lock upgrades, so no deadlocks between reviewers.
            conn.exec_driver_sql(
                "BEGIN" if conn.get_execution_options().get("hitl_read") else "BEGIN IMMEDIATE"
            )

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _migrations_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return config


@functools.cache
def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_migrations_config()).get_current_head()


def _upgrade(engine: Engine) -> None:
    """Create or upgrade the schema, taking the write lock only when the database is behind.

    Every store opens with this (each CLI command, each gated registry write): a schema already at
    the head is confirmed in a read transaction, so opening a store never waits behind a writer.
    """
    from alembic import command
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        conn = conn.execution_options(hitl_read=True)
        with conn.begin():
            context = MigrationContext.configure(conn, opts={"version_table": t.VERSION_TABLE})
            if context.get_current_revision() == _head_revision():
                return
    config = _migrations_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def masked_url(url: str) -> str:
    """The store URL with any password replaced by ``***``, for messages and reprs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


class ReviewStore:
    """The human loop's database. ``ReviewStore("sqlite:///hitl.db")`` or ``ReviewStore("postgresql+psycopg://...")``.

    The schema is created or upgraded (alembic) when the store is opened.
    """

    def __init__(self, url: str) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise InputError(
                f"store URL must look like sqlite:///path/hitl.db or postgresql://..., got {url!r}"
            )
        self.url = url
        try:
            self._engine = _make_engine(url)
            _upgrade(self._engine)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise InputError(f"cannot use review store {masked_url(url)}: {exc}") from exc
        except sa.exc.OperationalError as exc:
            raise InputError(f"cannot open review store {masked_url(url)}: {str(exc.orig).strip()}") from exc

    def __repr__(self) -> str:
        return f"ReviewStore({masked_url(self.url)!r})"

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[_Writer]:
        with self._engine.begin() as conn:
            writer = _Writer(conn)
            yield writer
            writer.flush()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn = conn.execution_options(hitl_read=True)
            with conn.begin():
                yield conn

    # -- queues ---------------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        rows: pd.DataFrame,
        selection: pd.DataFrame,
        classes: Sequence[Any],
        actor: str,
        raters_per_item: int = 1,
        blind: bool = False,
        strategy: str = "least-confidence",
        run_id: str | None = None,
        predictions: Sequence[Any] | None = None,
        confidences: Sequence[float] | None = None,
        gold: Mapping[Any, Any] | None = None,
    ) -> Queue:
        """Create a queue from ``rows`` and the ``selection`` made by :func:`select_for_review`.

        ``selection`` has a ``row`` column (positions into ``rows``) and ``reason``/``score`` (and
        optionally ``group``, ``inclusion_probability``). ``predictions``/``confidences`` are per row
        of ``rows``; ``gold`` maps a row's index label to its known label (gold items).
        """
        actor = _check_user(actor, "actor")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InputError("queue name must be a non-empty string of at most 200 characters")
        classes = list(classes)
        if len(classes) < 2 or len({_dump_label(c) for c in classes}) != len(classes):
            raise InputError(f"a queue needs at least two distinct classes, got {classes}")
        if isinstance(raters_per_item, bool) or not isinstance(raters_per_item, int) or raters_per_item < 1:
            raise InputError(f"raters_per_item must be a whole number ≥ 1, got {raters_per_item!r}")
        if "row" not in selection.columns or "reason" not in selection.columns:
            raise InputError("selection must have 'row' and 'reason' columns (from select_for_review)")
        if len(selection) == 0:
            raise InputError("selection is empty: nothing to review")
        positions = selection["row"].to_numpy()
        if positions.min() < 0 or positions.max() >= len(rows):
            raise InputError(f"selection refers to rows outside the {len(rows)} given")
        for label, values in (("predictions", predictions), ("confidences", confidences)):
            if values is not None and len(values) != len(rows):
                raise InputError(f"{label} has {len(values)} entries for {len(rows)} rows")
        gold = dict(gold or {})
        unknown_gold = sorted({_dump_label(v) for v in gold.values()} - {_dump_label(c) for c in classes})
        if unknown_gold:
            raise InputError(f"gold labels {unknown_gold} are not among the classes {classes}")

        columns = [str(c) for c in rows.columns]
        picked = rows.iloc[positions]
        now = utc_now()
        with self._write() as tx:
            exists = tx.conn.execute(sa.select(t.queues.c.id).where(t.queues.c.name == name)).first()
            if exists:
                raise InputError(f"queue {name!r} already exists; choose another name")
            queue_id = tx.conn.execute(
                sa.insert(t.queues).values(
                    name=name,
                    run_id=run_id,
                    classes=json.dumps([_json_value(c) for c in classes]),
                    raters_per_item=raters_per_item,
                    blind=bool(blind),
                    strategy=strategy,
                    columns=json.dumps(columns),
                    created_by=actor,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            records = []
            records_iter = zip(
                picked.index,
                picked.itertuples(index=False, name=None),
                selection.itertuples(index=False),
                strict=True,
            )
            for position, (key, values, chosen) in enumerate(records_iter):
                row = int(chosen.row)
                records.append(
                    {
                        "queue_id": queue_id,
                        "position": position,
                        "row_key": str(key),
                        "payload": json.dumps(
                            {c: _json_value(v) for c, v in zip(columns, values, strict=True)}
                        ),
                        "prediction": None
                        if predictions is None
                        else _dump_label(_json_value(predictions[row])),
                        "confidence": None if confidences is None else float(confidences[row]),
                        "score": _float_or_none(getattr(chosen, "score", None)),
                        "reason": str(chosen.reason),
                        "group_value": None if getattr(chosen, "group", None) is None else str(chosen.group),
                        "inclusion_probability": _float_or_none(
                            getattr(chosen, "inclusion_probability", None)
                        ),
                        "gold_label": _dump_label(gold[key]) if key in gold else None,
                        "n_labels": 0,
                    }
                )
            if len({r["row_key"] for r in records}) != len(records):
                raise InputError("selection picks the same row twice, or rows share an index label")
            for start in range(0, len(records), _INSERT_CHUNK):
                tx.conn.execute(sa.insert(t.items), records[start : start + _INSERT_CHUNK])
            tx.event(
                actor=actor,
                action="queue.create",
                subject=f"queue:{name}",
                payload={
                    "items": len(records),
                    "raters_per_item": raters_per_item,
                    "blind": bool(blind),
                    "strategy": strategy,
                    "run_id": run_id,
                    "classes": [_json_value(c) for c in classes],
                    "gold_items": sum(r["gold_label"] is not None for r in records),
                },
            )
        return self.queue(name)

    def queue(self, name: str) -> Queue:
        with self._read() as conn:
            return self._queue(conn, name)

    def _queue(self, conn: Connection, name: str) -> Queue:
        row = conn.execute(sa.select(t.queues).where(t.queues.c.name == name)).first()
        if row is None:
            names = (
                conn.execute(sa.select(t.queues.c.name).order_by(t.queues.c.name).limit(10)).scalars().all()
            )
            known = f"; known queues: {', '.join(names)}" if names else "; no queues exist yet"
            raise NotFoundError(f"unknown queue {name!r}{known}")
        return Queue(
            name=row.name,
            id=row.id,
            run_id=row.run_id,
            classes=tuple(json.loads(row.classes)),
            raters_per_item=row.raters_per_item,
            blind=bool(row.blind),
            strategy=row.strategy,
            columns=tuple(json.loads(row.columns)),
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def queues(self) -> list[Queue]:
        with self._read() as conn:
            names = conn.execute(sa.select(t.queues.c.name).order_by(t.queues.c.id)).scalars().all()
            return [self._queue(conn, n) for n in names]

    def progress(self, name: str) -> dict[str, int]:
        """Items, labels given, labels needed, items complete, adjudicated items."""
        with self._read() as conn:
            queue = self._queue(conn, name)
            row = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(t.items.c.n_labels), 0),
                    sa.func.coalesce(
                        sa.func.sum(sa.case((t.items.c.n_labels >= queue.raters_per_item, 1), else_=0)), 0
                    ),
                ).where(t.items.c.queue_id == queue.id)
            ).one()
            adjudicated = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.adjudications.join(t.items))
                .where(t.items.c.queue_id == queue.id)
            ).scalar_one()
        n_items, labels, complete = (int(v) for v in row)
        return {
            "items": n_items,
            "labels": labels,
            "labels_needed": n_items * queue.raters_per_item,
            "complete_items": complete,
            "adjudicated": int(adjudicated),
        }

    def _item(self, queue: Queue, row: Any) -> Item:
        return Item(
            queue=queue.name,
            position=row.position,
            row_key=row.row_key,
            payload=json.loads(row.payload),
            prediction=None if queue.blind or row.prediction is None else json.loads(row.prediction),
            confidence=None if queue.blind else row.confidence,
            score=row.score,
            reason=row.reason,
            group=row.group_value,
            n_labels=row.n_labels,
        )

    def items(self, name: str) -> list[Item]:
        with self._read() as conn:
            queue = self._queue(conn, name)
            rows = conn.execute(
                sa.select(t.items).where(t.items.c.queue_id == queue.id).order_by(t.items.c.position)
            ).all()
            return [self._item(queue, r) for r in rows]

    # -- labelling ------------------------------------------------------------------------------

    def next_item(self, name: str, *, user: str, exclude: Collection[int] = ()) -> Item | None:
        """Reserve the next item ``user`` has not labelled and that still needs labels; ``None`` when done.

        A reservation counts against the item's free slots for 30 minutes, so concurrent reviewers
        are spread over different items; it is released when the user labels or skips the item.
        ``exclude`` holds positions to pass over (the items a reviewer skipped in this session).
        """
        user = _check_user(user)
        now = datetime.now(timezone.utc)
        now_text = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._engine.begin() as conn:
            queue = self._queue(conn, name)
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
            return self._item(queue, candidate)

    def release(self, name: str, *, position: int, user: str) -> None:
        """Give back a reserved item without labelling it (a skip)."""
        user = _check_user(user)  # the same name next_item reserved under
        with self._engine.begin() as conn:
            queue = self._queue(conn, name)
            item_id = self._item_id(conn, queue, position)
            conn.execute(
                sa.delete(t.assignments).where(
                    t.assignments.c.item_id == item_id, t.assignments.c.user == user
                )
            )

    def _item_id(self, conn: Connection, queue: Queue, position: int) -> int:
        item_id = conn.execute(
            sa.select(t.items.c.id).where(t.items.c.queue_id == queue.id, t.items.c.position == position)
        ).scalar()
        if item_id is None:
            raise NotFoundError(f"queue {queue.name!r} has no item {position}")
        return int(item_id)

    def _check_label(self, queue: Queue, label: Any) -> str:
        return _label_reader(queue)(label)

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
        user = _check_user(user)
        with self._write() as tx:
            queue = self._queue(tx.conn, name)
            label_text = self._check_label(queue, label)
            item_id = self._item_id(tx.conn, queue, position)
            self._insert_annotations(
                tx, queue, [(item_id, position, user, label_text, comment, None)], source
            )

    def _insert_annotations(
        self,
        tx: _Writer,
        queue: Queue,
        rows: Sequence[tuple[int, int, str, str, str | None, str | None]],
        source: str,
    ) -> None:
        """Insert ``(item_id, position, user, label, comment, external_id)`` rows, refusing any beyond k."""
        existing = self._existing_pairs(tx.conn, queue, sorted({r[0] for r in rows}))
        counts: dict[int, int] = {}
        for item_id, position, user, *_ in rows:
            if (item_id, user) in existing:
                raise InputError(f"{user} has already labelled item {position} of queue {queue.name!r}")
            existing.add((item_id, user))
            counts[item_id] = counts.get(item_id, 0) + 1
        by_extra: dict[int, list[int]] = {}
        for item_id, extra in counts.items():
            by_extra.setdefault(extra, []).append(item_id)
        for extra, item_ids in by_extra.items():
            for start in range(0, len(item_ids), _IN_CHUNK):
                chunk = item_ids[start : start + _IN_CHUNK]
                # Conditional: an item already at k labels is not raised, and the count tells.
                updated = tx.conn.execute(
                    sa.update(t.items)
                    .where(t.items.c.id.in_(chunk), t.items.c.n_labels + extra <= queue.raters_per_item)
                    .values(n_labels=t.items.c.n_labels + extra)
                ).rowcount
                if updated != len(chunk):
                    full = (
                        tx.conn.execute(
                            sa.select(t.items.c.position)
                            .where(
                                t.items.c.id.in_(chunk), t.items.c.n_labels + extra > queue.raters_per_item
                            )
                            .order_by(t.items.c.position)
                        )
                        .scalars()
                        .first()
                    )
                    raise InputError(
                        f"item {full} of queue {queue.name!r} already has its {queue.raters_per_item} label(s)"
                    )
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
        for start in range(0, len(records), _INSERT_CHUNK):
            tx.conn.execute(sa.insert(t.annotations), records[start : start + _INSERT_CHUNK])
        pairs = [(r[0], r[2]) for r in rows]
        for start in range(0, len(pairs), _IN_CHUNK):  # their reservations are used up
            tx.conn.execute(
                sa.delete(t.assignments).where(
                    sa.tuple_(t.assignments.c.item_id, t.assignments.c.user).in_(
                        pairs[start : start + _IN_CHUNK]
                    )
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

    def _existing_pairs(
        self, conn: Connection, queue: Queue, item_ids: Sequence[int]
    ) -> set[tuple[int, str]]:
        """``(item_id, user)`` of stored annotations on ``item_ids`` (on the whole queue when there are many)."""
        query = sa.select(t.annotations.c.item_id, t.annotations.c.user)
        if len(item_ids) <= _IN_CHUNK:
            query = query.where(t.annotations.c.item_id.in_(item_ids))
        else:
            query = query.select_from(t.annotations.join(t.items)).where(t.items.c.queue_id == queue.id)
        return {(r.item_id, r.user) for r in conn.execute(query)}

    def import_annotations(
        self, name: str, records: Iterable[AnnotationRecord], *, actor: str, source: str
    ) -> ImportReport:
        """Add external labels atomically and idempotently.

        All or nothing: one bad record (unknown item, label outside the classes, an item pushed past
        its k labels, a rater who already gave a *different* label) refuses the whole import. A record
        identical to a stored annotation is counted as unchanged, so re-importing adds nothing.
        """
        actor = _check_user(actor, "actor")
        records = list(records)
        with self._write() as tx:
            queue = self._queue(tx.conn, name)
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
            read_label = _label_reader(queue)
            for record in records:
                if record.position not in ids:
                    raise InputError(
                        f"import refers to item {record.position}, which queue {name!r} does not have"
                    )
                user = _check_user(record.user, f"rater of item {record.position}")
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
                self._insert_annotations(tx, queue, new_rows, source)
                tx.event(
                    actor=actor,
                    action="annotation.import",
                    subject=f"queue:{name}",
                    payload={"source": source, "added": len(new_rows), "unchanged": unchanged},
                )
        return ImportReport(added=len(new_rows), unchanged=unchanged)

    def annotations(self, name: str) -> pd.DataFrame:
        """Every label of the queue: columns ``item`` (position), ``rater``, ``label``, ``comment``, ``source``, ``created_at``."""
        with self._read() as conn:
            queue = self._queue(conn, name)
            rows = conn.execute(
                sa.select(
                    t.items.c.position,
                    t.annotations.c.user,
                    t.annotations.c.label,
                    t.annotations.c.comment,
                    t.annotations.c.source,
                    t.annotations.c.created_at,
                )
                .select_from(t.annotations.join(t.items))
                .where(t.items.c.queue_id == queue.id)
                .order_by(t.items.c.position, t.annotations.c.id)
            ).all()
        frame = pd.DataFrame(rows, columns=["item", "rater", "label", "comment", "source", "created_at"])
        frame["label"] = [json.loads(v) for v in frame["label"]]
        return frame

    def gold(self, name: str) -> dict[int, Any]:
        """Known labels of gold items, by position."""
        with self._read() as conn:
            queue = self._queue(conn, name)
            rows = conn.execute(
                sa.select(t.items.c.position, t.items.c.gold_label).where(
                    t.items.c.queue_id == queue.id, t.items.c.gold_label.is_not(None)
                )
            ).all()
        return {r.position: json.loads(r.gold_label) for r in rows}

    # -- adjudication ---------------------------------------------------------------------------

    def adjudicate(self, name: str, *, position: int, user: str, label: Any, note: str | None = None) -> None:
        """Settle item ``position`` with a final label; needs the ``adjudicator`` role. Once per item."""
        user = _check_user(user)
        with self._write() as tx:
            self._require_role(tx.conn, user, "adjudicator", "adjudicate")
            queue = self._queue(tx.conn, name)
            label_text = self._check_label(queue, label)
            item_id = self._item_id(tx.conn, queue, position)
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

    def adjudications(self, name: str) -> pd.DataFrame:
        """Columns ``item``, ``label``, ``user``, ``note``."""
        with self._read() as conn:
            queue = self._queue(conn, name)
            rows = conn.execute(
                sa.select(
                    t.items.c.position,
                    t.adjudications.c.label,
                    t.adjudications.c.user,
                    t.adjudications.c.note,
                )
                .select_from(t.adjudications.join(t.items))
                .where(t.items.c.queue_id == queue.id)
                .order_by(t.items.c.position)
            ).all()
        frame = pd.DataFrame(rows, columns=["item", "label", "user", "note"])
        frame["label"] = [json.loads(v) for v in frame["label"]]
        return frame

    # -- roles ----------------------------------------------------------------------------------

    def _roles_of(self, conn: Connection, user: str) -> set[str]:
        return set(conn.execute(sa.select(t.roles.c.role).where(t.roles.c.user == user)).scalars())

    def _require_role(self, conn: Connection, user: str, role: str, doing: str) -> None:
        held = self._roles_of(conn, user)
        if role not in held and "admin" not in held:
            raise PermissionDeniedError(
                f"{user} cannot {doing}: needs the {role!r} role (roles held: {', '.join(sorted(held)) or 'none'})"
            )

    def grant_role(self, user: str, role: str, *, actor: str) -> None:
        """Give ``user`` a role. Needs ``admin``, except to appoint the very first admin (bootstrap, audited)."""
        self._change_role(user, role, actor=actor, grant=True)

    def revoke_role(self, user: str, role: str, *, actor: str) -> None:
        self._change_role(user, role, actor=actor, grant=False)

    def _change_role(self, user: str, role: str, *, actor: str, grant: bool) -> None:
        user, actor = _check_user(user), _check_user(actor, "actor")
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        with self._write() as tx:
            admins = tx.conn.execute(sa.select(sa.func.count()).where(t.roles.c.role == "admin")).scalar_one()
            bootstrap = grant and role == "admin" and admins == 0
            if not bootstrap:
                self._require_role(tx.conn, actor, "admin", f"{'grant' if grant else 'revoke'} roles")
            held = role in self._roles_of(tx.conn, user)
            if grant and held:
                raise InputError(f"{user} already has the {role!r} role")
            if not grant and not held:
                raise InputError(f"{user} does not have the {role!r} role")
            if not grant and role == "admin" and admins == 1:
                raise InputError(f"{user} is the last admin; grant admin to someone else first")
            if grant:
                tx.conn.execute(
                    sa.insert(t.roles).values(user=user, role=role, granted_by=actor, granted_at=utc_now())
                )
            else:
                tx.conn.execute(sa.delete(t.roles).where(t.roles.c.user == user, t.roles.c.role == role))
            payload: dict[str, Any] = {"role": role}
            if bootstrap:
                payload["bootstrap"] = True
            tx.event(
                actor=actor,
                action="role.grant" if grant else "role.revoke",
                subject=f"user:{user}",
                payload=payload,
            )

    def roles(self, user: str | None = None) -> pd.DataFrame:
        """Columns ``user``, ``role``, ``granted_by``, ``granted_at``."""
        with self._read() as conn:
            query = sa.select(t.roles).order_by(t.roles.c.user, t.roles.c.role)
            if user is not None:
                query = query.where(t.roles.c.user == user)
            rows = conn.execute(query).all()
        return pd.DataFrame(rows, columns=["user", "role", "granted_by", "granted_at"])

    # -- sign-offs ------------------------------------------------------------------------------

    def sign_off(
        self, *, run_id: str, check: str, user: str, approve: bool, note: str | None = None
    ) -> dict[str, Any]:
        """``user`` approves or rejects ``check`` of run ``run_id``; needs the check's sign-off role.

        The sign-off records the audit chain head including its own event.
        """
        user = _check_user(user)
        if not run_id:
            raise InputError("run_id is required for a sign-off")
        role = signoff_role(check)
        decision = "approve" if approve else "reject"
        with self._write() as tx:
            self._require_role(tx.conn, user, role, f"sign off {check}")
            seq, digest = tx.event(
                actor=user,
                action=f"signoff.{decision}",
                subject=f"run:{run_id}/check:{check}",
                payload={"role": role, "note": note},
            )
            record = {
                "run_id": run_id,
                "check_name": check,
                "user": user,
                "role": role,
                "decision": decision,
                "note": note,
                "audit_seq": seq,
                "audit_hash": digest,
                "created_at": utc_now(),
            }
            tx.conn.execute(sa.insert(t.signoffs).values(**record))
        return record

    def signoffs(self, run_id: str | None = None) -> pd.DataFrame:
        with self._read() as conn:
            query = sa.select(t.signoffs).order_by(t.signoffs.c.id)
            if run_id is not None:
                query = query.where(t.signoffs.c.run_id == run_id)
            rows = conn.execute(query).all()
        return pd.DataFrame(rows, columns=[c.name for c in t.signoffs.columns])

    # -- snapshots ------------------------------------------------------------------------------

    def record_snapshot(
        self,
        name: str,
        *,
        snapshot_id: str,
        run_id: str | None,
        method: str,
        n_items: int,
        labels_sha256: str,
        manifest_sha256: str,
        actor: str,
    ) -> dict[str, Any]:
        """Record a published verified-label snapshot; ids are never reused (snapshots are immutable)."""
        actor = _check_user(actor, "actor")
        with self._write() as tx:
            queue = self._queue(tx.conn, name)
            if tx.conn.execute(sa.select(t.snapshots.c.id).where(t.snapshots.c.id == snapshot_id)).first():
                raise InputError(f"snapshot {snapshot_id!r} already exists; snapshots are immutable")
            seq, digest = tx.event(
                actor=actor,
                action="snapshot.publish",
                subject=f"queue:{name}/snapshot:{snapshot_id}",
                payload={
                    "run_id": run_id,
                    "method": method,
                    "items": n_items,
                    "labels_sha256": labels_sha256,
                    "manifest_sha256": manifest_sha256,
                },
            )
            record = {
                "id": snapshot_id,
                "queue_id": queue.id,
                "run_id": run_id,
                "method": method,
                "n_items": n_items,
                "labels_sha256": labels_sha256,
                "manifest_sha256": manifest_sha256,
                "audit_seq": seq,
                "audit_hash": digest,
                "created_by": actor,
                "created_at": utc_now(),
            }
            tx.conn.execute(sa.insert(t.snapshots).values(**record))
        return record

    def snapshots(self, name: str | None = None) -> pd.DataFrame:
        with self._read() as conn:
            query = sa.select(t.snapshots, t.queues.c.name.label("queue")).select_from(
                t.snapshots.join(t.queues)
            )
            if name is not None:
                query = query.where(t.queues.c.name == name)
            rows = conn.execute(query.order_by(t.snapshots.c.created_at)).all()
        return pd.DataFrame(rows, columns=[*[c.name for c in t.snapshots.columns], "queue"])

    # -- gate policies --------------------------------------------------------------------------

    def set_policy(self, model_name: str, *, policy: str, policy_hash: str, actor: str) -> dict[str, Any]:
        """Store a new version of ``model_name``'s gate policy (admin only, audited); returns its record.

        The text is stored as given: parsing and hashing belong to :mod:`mlflow_hitl.gate`.
        """
        actor = _check_user(actor, "actor")
        with self._write() as tx:
            self._require_role(tx.conn, actor, "admin", "set gate policies")
            latest = tx.conn.execute(
                sa.select(sa.func.max(t.policies.c.version)).where(t.policies.c.model_name == model_name)
            ).scalar()
            record = {
                "model_name": model_name,
                "version": int(latest or 0) + 1,
                "policy": policy,
                "policy_hash": policy_hash,
                "set_by": actor,
                "set_at": utc_now(),
            }
            tx.conn.execute(sa.insert(t.policies).values(**record))
            tx.event(
                actor=actor,
                action="policy.set",
                subject=f"model:{model_name}",
                payload={"version": record["version"], "policy_hash": policy_hash},
            )
        return record

    def policy(self, model_name: str) -> dict[str, Any] | None:
        """The policy in force for ``model_name`` (its newest version), or ``None``."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.policies)
                .where(t.policies.c.model_name == model_name)
                .order_by(t.policies.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else dict(row._mapping)

    # -- audit ----------------------------------------------------------------------------------

    def record_event(
        self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]:
        """Append one audit event for an action taken outside the store (a policy change, a promotion)."""
        actor = _check_user(actor, "actor")
        with self._write() as tx:
            return tx.event(actor=actor, action=action, subject=subject, payload=payload)

    def audit_head(self) -> tuple[int, str]:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1)
            ).one()
        return int(row.seq), str(row.hash)

    def verify_audit(self, *, incremental: bool = False) -> ChainVerification:
        """Walk the chain in ``seq`` order against the recorded head; names the first bad event.

        ``incremental=True`` (what the registry gates use) walks only from the head this process last
        verified in a full walk of this store, when the database proves nothing before it has changed
        since: its change counter (a trigger counts every UPDATE and DELETE of a stored event), its first
        event and its trigger definitions are as they were, and that full walk is under
        ``FULL_WALK_EVERY_SECONDS`` old. Otherwise, and always by default, it walks the whole chain.
        """
        columns = [
            t.audit_events.c[n]
            for n in ("seq", "time", "actor", "action", "subject", "payload", "prev_hash", "hash")
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
                query = sa.select(*columns).order_by(t.audit_events.c.seq)
                if anchor is not None:
                    query = query.where(t.audit_events.c.seq >= anchor[0])
                result = verify_chain(conn.execute(query), expected_head=expected_head, anchor=anchor)
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
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Events in order; ``subject`` matches a prefix (``queue:q1`` finds every item of q1)."""
        with self._read() as conn:
            query = sa.select(t.audit_events).order_by(t.audit_events.c.seq)
            if subject is not None:
                query = query.where(
                    sa.or_(
                        t.audit_events.c.subject == subject,
                        t.audit_events.c.subject.startswith(subject + "/", autoescape=True),
                    )
                )
            if actor is not None:
                query = query.where(t.audit_events.c.actor == actor)
            if action is not None:
                query = query.where(t.audit_events.c.action.startswith(action, autoescape=True))
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        return pd.DataFrame(rows, columns=[c.name for c in t.audit_events.columns])


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


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
