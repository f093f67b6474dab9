"""What the rest of mlflow-hitl may ask of a review store, one ``Protocol`` per concern.

:class:`~mlflow_hitl.review.ReviewStore` (SQL) implements them all; a client of the store served by
``mlflow server --app-name hitl`` over ``/hitl/api/`` implements the same methods in one module.
Code that only reads queues types its parameter as :class:`QueueStore`, code that gates as
:class:`GovernanceStore` and :class:`AuditStore`, and code that needs everything as
:class:`ReviewStoreProtocol`. Each method's behaviour is documented on the SQL store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._progress import Progress
from ._audit import ChainVerification
from ._records import AnnotationRecord, ImportReport, Item, Queue, QueueLabels

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AuditStore", "GovernanceStore", "QueueStore", "ReviewStoreProtocol"]


@runtime_checkable
class QueueStore(Protocol):
    """Queues and their labels: creation, reading, reservations, labelling, imports, adjudication."""

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
    ) -> Queue: ...

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
    ) -> ImportReport: ...

    def queue(self, name: str) -> Queue: ...

    def queues(self) -> list[Queue]: ...

    def progress(self, name: str) -> dict[str, int]: ...

    def items(self, name: str, *, offset: int = 0, limit: int | None = None) -> list[Item]: ...

    def annotations(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        from_position: int = 0,
        to_position: int | None = None,
    ) -> pd.DataFrame: ...

    def gold(self, name: str) -> dict[int, Any]: ...

    def adjudications(self, name: str) -> pd.DataFrame: ...

    def label_counts(self, name: str) -> pd.DataFrame: ...

    def queue_labels(self, name: str) -> QueueLabels: ...

    def next_item(self, name: str, *, user: str, exclude: Collection[int] = ()) -> Item | None: ...

    def release(self, name: str, *, position: int, user: str) -> None: ...

    def annotate(
        self,
        name: str,
        *,
        position: int,
        user: str,
        label: Any,
        comment: str | None = None,
        source: str = "python",
    ) -> None: ...

    def withdraw(self, name: str, *, position: int, user: str) -> None: ...

    def import_annotations(
        self, name: str, records: Iterable[AnnotationRecord], *, actor: str, source: str
    ) -> ImportReport: ...

    def adjudicate(
        self, name: str, *, position: int, user: str, label: Any, note: str | None = None
    ) -> None: ...


@runtime_checkable
class GovernanceStore(Protocol):
    """Roles, sign-offs, verified-label snapshots and gate policies."""

    def grant_role(self, user: str, role: str, *, actor: str) -> None: ...

    def revoke_role(self, user: str, role: str, *, actor: str) -> None: ...

    def roles(self, user: str | None = None) -> pd.DataFrame: ...

    def sign_off(
        self,
        *,
        run_id: str,
        check: str,
        user: str,
        approve: bool,
        note: str | None = None,
        evidence_sha256: str | None = None,
    ) -> dict[str, Any]: ...

    def signoffs(self, run_id: str | None = None) -> pd.DataFrame: ...

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
    ) -> dict[str, Any]: ...

    def snapshots(self, name: str | None = None, *, run_id: str | None = None) -> pd.DataFrame: ...

    def set_policy(self, model_name: str, *, policy: str, policy_hash: str, actor: str) -> dict[str, Any]: ...

    def policy(self, model_name: str) -> dict[str, Any] | None: ...


@runtime_checkable
class AuditStore(Protocol):
    """The tamper-evident chain of every human action."""

    def record_event(
        self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]: ...

    def audit_head(self) -> tuple[int, str]: ...

    def verify_audit(
        self, *, incremental: bool = False, progress: Progress | None = None
    ) -> ChainVerification: ...

    def audit_event(self, seq: int) -> dict[str, Any] | None: ...

    def audit_events(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> pd.DataFrame: ...


@runtime_checkable
class ReviewStoreProtocol(QueueStore, GovernanceStore, AuditStore, Protocol):
    """A whole review store, as the CLI, the adapter and the gate use it."""

    def close(self) -> None: ...
