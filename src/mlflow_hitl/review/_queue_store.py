"""Queues in the SQL store: creating one from a selection, growing it as requests come, and reading
its items and labels.

Every read of a queue's labels has a function over a connection, so :meth:`SqlQueues.queue_labels`
can make them all in one transaction (what consensus and published files must agree on).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._hashing import canonical_json, sha256_hex
from .._validation import check_unique_columns
from ..errors import InputError
from . import _schema as t
from ._audit import utc_now
from ._engine import IN_CHUNK, INSERT_CHUNK, SqlStoreBase
from ._lookups import dump_label, item_from_row, load_queue, queue_from_row
from ._records import ImportReport, Item, Queue, QueueLabels, check_page, check_user

__all__ = ["SqlQueues"]


class SqlQueues(SqlStoreBase):
    """Creating queues and reading them: items, progress, labels, gold items, adjudications."""

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
        actor = check_user(actor, "actor")
        classes = list(classes)
        gold = dict(gold or {})
        _check_queue(name, rows, selection, classes, raters_per_item, predictions, confidences, gold)
        records = _item_records(rows, selection, predictions, confidences, gold)
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
                    columns=json.dumps([str(c) for c in rows.columns]),
                    created_by=actor,
                    created_at=utc_now(),
                )
            ).inserted_primary_key[0]
            for record in records:
                record["queue_id"] = queue_id
            for start in range(0, len(records), INSERT_CHUNK):
                tx.conn.execute(sa.insert(t.items), records[start : start + INSERT_CHUNK])
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

    def append_items(
        self,
        name: str,
        *,
        rows: pd.DataFrame,
        selection: pd.DataFrame,
        request_ids: Sequence[str],
        actor: str,
        predictions: Sequence[Any] | None = None,
        confidences: Sequence[float] | None = None,
    ) -> ImportReport:
        """Add the ``selection`` of ``rows`` to the end of queue ``name``, each item keyed by its request id.

        A production queue grows as requests come (see :mod:`mlflow_hitl.serving`): ``selection``,
        ``predictions`` and ``confidences`` are as in :meth:`create_queue`, and ``request_ids`` holds
        one id per row of ``rows``, stored as the item's ``row_key``. Appending is idempotent by
        request id: an id already in the queue (or repeated in the call) is not queued again, so a
        sender may retry a batch whose answer it never got. ``rows`` must have the queue's columns.
        Returns how many items were ``added`` and how many were already there (``unchanged``); one
        ``queue.append`` audit event records the added ones.
        """
        actor = check_user(actor, "actor")
        _check_selection(rows, selection, predictions, confidences)
        keys = _request_ids(request_ids, len(rows))
        first = ~pd.Series(keys[selection["row"].to_numpy()]).duplicated().to_numpy()
        records = _item_records(rows.set_axis(keys), selection[first], predictions, confidences, {})
        with self._write() as tx:
            queue = load_queue(tx.conn, name)
            if sorted(queue.columns) != sorted(str(c) for c in rows.columns):
                raise InputError(
                    f"rows have columns {[str(c) for c in rows.columns]}; queue {name!r} has {list(queue.columns)}"
                )
            queued = _queued_keys(tx.conn, queue.id, [r["row_key"] for r in records])
            fresh = [r for r in records if r["row_key"] not in queued]
            if fresh:
                start = tx.conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(t.items.c.position) + 1, 0)).where(
                        t.items.c.queue_id == queue.id
                    )
                ).scalar_one()
                for offset, record in enumerate(fresh):
                    record.update(queue_id=queue.id, position=int(start) + offset)
                for chunk in range(0, len(fresh), INSERT_CHUNK):
                    tx.conn.execute(sa.insert(t.items), fresh[chunk : chunk + INSERT_CHUNK])
                tx.event(
                    actor=actor,
                    action="queue.append",
                    subject=f"queue:{name}",
                    payload={
                        "items": len(fresh),
                        "first_position": int(start),
                        "duplicates": len(selection) - len(fresh),
                        "request_ids_sha256": sha256_hex(canonical_json([r["row_key"] for r in fresh])),
                    },
                )
        return ImportReport(added=len(fresh), unchanged=len(selection) - len(fresh))

    def queue(self, name: str) -> Queue:
        with self._read() as conn:
            return load_queue(conn, name)

    def queues(self) -> list[Queue]:
        with self._read() as conn:
            return [queue_from_row(r) for r in conn.execute(sa.select(t.queues).order_by(t.queues.c.id))]

    def progress(self, name: str) -> dict[str, int]:
        """Items, labels given, labels needed, items complete, adjudicated items."""
        with self._read() as conn:
            queue = load_queue(conn, name)
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

    def items(self, name: str, *, offset: int = 0, limit: int | None = None) -> list[Item]:
        """The queue's items in position order; ``offset``/``limit``: one page of them, read as a page.

        Positions are 0..n-1, so the page is the index range ``position >= offset``: reading page 200
        of 500 items costs what reading page 1 does.
        """
        check_page(offset, limit)
        with self._read() as conn:
            return _items(conn, load_queue(conn, name), offset=offset, limit=limit)

    def annotations(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        from_position: int = 0,
        to_position: int | None = None,
    ) -> pd.DataFrame:
        """Every label of the queue: columns ``item`` (position), ``rater``, ``label``, ``comment``, ``source``, ``created_at``.

        ``offset``/``limit``: one page of them, in the same order (item position, then time given).
        ``from_position``/``to_position``: only the labels of items ``from_position <= position < to_position``,
        read from the items' position index (the Adjudicate page tallies a queue window by window).
        """
        check_page(offset, limit)
        check_page(from_position, None, "from_position")
        if to_position is not None:
            check_page(to_position, None, "to_position")
        with self._read() as conn:
            return _annotations(
                conn,
                load_queue(conn, name),
                offset=offset,
                limit=limit,
                positions=(from_position, to_position),
            )

    def label_counts(self, name: str) -> pd.DataFrame:
        """How many labels of each class every labelled item has, counted by the database: columns
        ``item`` (position), ``label``, ``count``. What a tally of the queue needs (:func:`queue_tally`),
        a few rows per item instead of every label with its rater and comment.
        """
        with self._read() as conn:
            queue = load_queue(conn, name)
            rows = conn.execute(
                sa.select(t.items.c.position, t.annotations.c.label, sa.func.count())
                .select_from(t.annotations.join(t.items))
                .where(t.items.c.queue_id == queue.id)
                .group_by(t.items.c.position, t.annotations.c.label)
                .order_by(t.items.c.position)
            ).all()
        frame = pd.DataFrame(rows, columns=["item", "label", "count"])
        frame["label"] = [json.loads(v) for v in frame["label"]]
        return frame

    def gold(self, name: str) -> dict[int, Any]:
        """Known labels of gold items, by position."""
        with self._read() as conn:
            return _gold(conn, load_queue(conn, name))

    def adjudications(self, name: str) -> pd.DataFrame:
        """Columns ``item``, ``label``, ``user``, ``note``."""
        with self._read() as conn:
            return _adjudications(conn, load_queue(conn, name))

    def queue_labels(self, name: str) -> QueueLabels:
        """The queue, its items, labels, adjudications and gold labels from one snapshot of the database.

        Separate reads could each see a different moment: a label committed in between would reach
        the published annotations without reaching the consensus.
        """
        with self._read(repeatable=True) as conn:
            queue = load_queue(conn, name)
            return QueueLabels(
                queue=queue,
                items=tuple(_items(conn, queue)),
                annotations=_annotations(conn, queue),
                adjudications=_adjudications(conn, queue),
                gold=_gold(conn, queue),
            )


def _check_queue(
    name: str,
    rows: pd.DataFrame,
    selection: pd.DataFrame,
    classes: list[Any],
    raters_per_item: int,
    predictions: Sequence[Any] | None,
    confidences: Sequence[float] | None,
    gold: dict[Any, Any],
) -> None:
    """Refuse a queue that could not be labelled as asked, before anything is written."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InputError("queue name must be a non-empty string of at most 200 characters")
    if len(classes) < 2 or len({dump_label(c) for c in classes}) != len(classes):
        raise InputError(f"a queue needs at least two distinct classes, got {classes}")
    if isinstance(raters_per_item, bool) or not isinstance(raters_per_item, int) or raters_per_item < 1:
        raise InputError(f"raters_per_item must be a whole number ≥ 1, got {raters_per_item!r}")
    _check_selection(rows, selection, predictions, confidences)
    unknown_gold = sorted({dump_label(v) for v in gold.values()} - {dump_label(c) for c in classes})
    if unknown_gold:
        raise InputError(f"gold labels {unknown_gold} are not among the classes {classes}")


def _check_selection(
    rows: pd.DataFrame,
    selection: pd.DataFrame,
    predictions: Sequence[Any] | None,
    confidences: Sequence[float] | None,
) -> None:
    """Refuse a selection that does not pick rows of ``rows``, or per-row values of another length."""
    if not isinstance(rows, pd.DataFrame) or not isinstance(selection, pd.DataFrame):
        raise InputError("rows and selection must be DataFrames")
    check_unique_columns([str(c) for c in rows.columns], "rows")  # items are keyed by the names as text
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


def _item_records(
    rows: pd.DataFrame,
    selection: pd.DataFrame,
    predictions: Sequence[Any] | None,
    confidences: Sequence[float] | None,
    gold: dict[Any, Any],
) -> list[dict[str, Any]]:
    """One ``hitl_items`` row per selected row, in selection order (its position in the queue)."""
    columns = [str(c) for c in rows.columns]
    picked = rows.iloc[selection["row"].to_numpy()]
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
                "position": position,
                "row_key": str(key),
                "payload": json.dumps({c: _json_value(v) for c, v in zip(columns, values, strict=True)}),
                "prediction": None if predictions is None else dump_label(_json_value(predictions[row])),
                "confidence": None if confidences is None else float(confidences[row]),
                "score": _float_or_none(getattr(chosen, "score", None)),
                "reason": str(chosen.reason),
                "group_value": None if getattr(chosen, "group", None) is None else str(chosen.group),
                "inclusion_probability": _float_or_none(getattr(chosen, "inclusion_probability", None)),
                "gold_label": dump_label(gold[key]) if key in gold else None,
                "n_labels": 0,
            }
        )
    if len({r["row_key"] for r in records}) != len(records):
        raise InputError("selection picks the same row twice, or rows share an index label")
    return records


def _items(conn: Connection, queue: Queue, *, offset: int = 0, limit: int | None = None) -> list[Item]:
    query = sa.select(t.items).where(t.items.c.queue_id == queue.id).order_by(t.items.c.position)
    if offset:
        query = query.where(t.items.c.position >= offset)
    if limit is not None:
        query = query.limit(limit)
    return [item_from_row(queue, r) for r in conn.execute(query).all()]


def _annotations(
    conn: Connection,
    queue: Queue,
    *,
    offset: int = 0,
    limit: int | None = None,
    positions: tuple[int, int | None] = (0, None),
) -> pd.DataFrame:
    first, end = positions
    query = (
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
        .offset(offset or None)
        .limit(limit)
    )
    if first:
        query = query.where(t.items.c.position >= first)
    if end is not None:
        query = query.where(t.items.c.position < end)
    frame = pd.DataFrame(
        conn.execute(query).all(), columns=["item", "rater", "label", "comment", "source", "created_at"]
    )
    frame["label"] = [json.loads(v) for v in frame["label"]]
    return frame


def _gold(conn: Connection, queue: Queue) -> dict[int, Any]:
    rows = conn.execute(
        sa.select(t.items.c.position, t.items.c.gold_label).where(
            t.items.c.queue_id == queue.id, t.items.c.gold_label.is_not(None)
        )
    ).all()
    return {r.position: json.loads(r.gold_label) for r in rows}


def _adjudications(conn: Connection, queue: Queue) -> pd.DataFrame:
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


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _request_ids(request_ids: Sequence[str], n: int) -> np.ndarray:
    """The request ids as an object array, one non-empty string of at most 200 characters per row."""
    ids = np.asarray(list(request_ids), dtype=object)
    if len(ids) != n:
        raise InputError(f"request_ids has {len(ids)} entries for {n} rows")
    bad = [i for i in ids if not isinstance(i, str) or not i or len(i) > 200]
    if bad:
        raise InputError(f"request ids must be non-empty strings of at most 200 characters, got {bad[0]!r}")
    return ids


def _queued_keys(conn: Connection, queue_id: int, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` the queue already holds (as row keys)."""
    found: set[str] = set()
    for start in range(0, len(keys), IN_CHUNK):
        found.update(
            conn.execute(
                sa.select(t.items.c.row_key).where(
                    t.items.c.queue_id == queue_id, t.items.c.row_key.in_(keys[start : start + IN_CHUNK])
                )
            ).scalars()
        )
    return found
