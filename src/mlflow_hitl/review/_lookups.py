"""What the parts of the SQL review store share: a queue and an item by name, a user's roles, label text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import InputError, NotFoundError, PermissionDeniedError
from . import _schema as t
from ._records import Item, Queue

__all__ = [
    "dump_label",
    "item_from_row",
    "item_id_at",
    "label_reader",
    "load_queue",
    "queue_from_row",
    "require_role",
    "roles_of",
]


def dump_label(label: Any) -> str:
    return json.dumps(label.item() if isinstance(label, np.generic) else label)


def label_reader(queue: Queue) -> Callable[[Any], str]:
    """A function from a label to its stored JSON text, refusing labels outside the queue's classes.

    Labels typed at a terminal or read from CSV arrive as strings: they match the class they spell.
    """
    allowed = {dump_label(c): dump_label(c) for c in queue.classes}
    allowed_strings = {str(c): dump_label(c) for c in queue.classes}

    def read(label: Any) -> str:
        if isinstance(label, str) and label in allowed_strings:
            return allowed_strings[label]
        text = dump_label(label)
        if text not in allowed:
            raise InputError(f"label {label!r} is not one of the queue's classes: {list(queue.classes)}")
        return text

    return read


def queue_from_row(row: Any) -> Queue:
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


def load_queue(conn: Connection, name: str) -> Queue:
    """Queue ``name``, or a :class:`NotFoundError` naming the queues that exist."""
    row = conn.execute(sa.select(t.queues).where(t.queues.c.name == name)).first()
    if row is None:
        names = conn.execute(sa.select(t.queues.c.name).order_by(t.queues.c.name).limit(10)).scalars().all()
        known = f"; known queues: {', '.join(names)}" if names else "; no queues exist yet"
        raise NotFoundError(f"unknown queue {name!r}{known}")
    return queue_from_row(row)


def item_from_row(queue: Queue, row: Any) -> Item:
    """An item as reviewers may see it: blind queues hide the model's prediction and confidence."""
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


def item_id_at(conn: Connection, queue: Queue, position: int) -> int:
    item_id = conn.execute(
        sa.select(t.items.c.id).where(t.items.c.queue_id == queue.id, t.items.c.position == position)
    ).scalar()
    if item_id is None:
        raise NotFoundError(f"queue {queue.name!r} has no item {position}")
    return int(item_id)


def roles_of(conn: Connection, user: str) -> set[str]:
    return set(conn.execute(sa.select(t.roles.c.role).where(t.roles.c.user == user)).scalars())


def require_role(conn: Connection, user: str, role: str, doing: str) -> None:
    """Refuse unless ``user`` holds ``role`` or ``admin``, naming the roles they do hold."""
    held = roles_of(conn, user)
    if role not in held and "admin" not in held:
        raise PermissionDeniedError(
            f"{user} cannot {doing}: needs the {role!r} role (roles held: {', '.join(sorted(held)) or 'none'})"
        )
