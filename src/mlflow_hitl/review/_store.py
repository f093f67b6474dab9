"""The review store: queues, items, annotations, adjudications, roles, sign-offs, snapshots, audit chain.

One SQL implementation serves SQLite (the default, a file beside a local MLflow store) and
PostgreSQL (teams), in one part per concern over a shared engine:

- :mod:`._engine`: engine creation and dialect quirks, migrations, the audited write transaction;
- :mod:`._queue_store` and :mod:`._label_store`: queues, items, reservations, labels, imports, adjudication;
- :mod:`._governance_store`: roles, sign-offs, verified-label snapshots, gate policies;
- :mod:`._audit_store`: the audit chain.

What the rest of the code may rely on is :class:`~._interface.ReviewStoreProtocol`; another backend
(the HTTP client of a ``mlflow server --app-name hitl``) implements that and nothing here.

The acting user is a plain string handed in by the caller. Locally it comes from ``--user``,
``MLFLOW_HITL_USER`` or the OS user: that is identification, not authentication.
"""

from __future__ import annotations

from .._roles import ROLES, SIGNOFF_ROLES
from ._audit_store import SqlAudit
from ._governance_store import SqlGovernance
from ._label_store import SqlLabels
from ._queue_store import SqlQueues
from ._records import AnnotationRecord, ImportReport, Item, Queue, QueueLabels

__all__ = [
    "ROLES",
    "SIGNOFF_ROLES",
    "AnnotationRecord",
    "ImportReport",
    "Item",
    "Queue",
    "QueueLabels",
    "ReviewStore",
]


class ReviewStore(SqlQueues, SqlLabels, SqlGovernance, SqlAudit):
    """The human loop's database. ``ReviewStore("sqlite:///hitl.db")`` or ``ReviewStore("postgresql+psycopg://...")``.

    The schema is created or upgraded (alembic) when the store is opened.
    """
