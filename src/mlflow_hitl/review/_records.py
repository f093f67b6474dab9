"""The values the review store takes and gives, whatever its backend (SQL here, HTTP next).

``check_user`` is the one rule every backend applies to an acting user's name, ``check_page`` the one
for the bounds of a paged read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnnotationRecord", "ImportReport", "Item", "Queue", "QueueLabels", "check_page", "check_user"]


def check_user(user: str, what: str = "user") -> str:
    """``user`` stripped, or one clear line when it is empty or too long for the store's columns."""
    if not isinstance(user, str) or not user.strip():
        raise InputError(f"{what} must be a non-empty name (use --user or MLFLOW_HITL_USER)")
    if len(user) > 200:
        raise InputError(f"{what} is longer than 200 characters")
    return user.strip()


def check_page(start: int, limit: int | None, what: str = "offset") -> None:
    """Refuse a page that starts below 0 or holds fewer than one row (``limit=None``: to the end)."""
    for name, value, minimum in ((what, start, 0), ("limit", 1 if limit is None else limit, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(f"{name} must be a whole number ≥ {minimum}, got {value!r}")


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


@dataclass(frozen=True)
class QueueLabels:
    """A queue's items and labels as one read saw them, so consensus and published files agree.

    ``items`` are in position order; ``annotations`` and ``adjudications`` are the frames
    :meth:`ReviewStore.annotations` and :meth:`ReviewStore.adjudications` return.
    """

    queue: Queue
    items: tuple[Item, ...]
    annotations: pd.DataFrame
    adjudications: pd.DataFrame
    gold: Mapping[int, Any]
