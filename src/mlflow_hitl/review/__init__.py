"""The human loop, free of MLflow: which rows people review, their labels, consensus, roles, audit.

- :func:`select_for_review`, :func:`uncertainty_scores`: route the least-confident rows (plus a
  random control share and edge cases) to reviewers; every pick records why.
- :class:`ReviewStore`: queues, reservations, annotations, adjudications, roles, sign-offs and
  verified-label snapshots in SQLite or PostgreSQL, every human action in a tamper-evident hash chain.
- :func:`label_studio_tasks`, :func:`read_label_studio_export`, :func:`csv_tasks`,
  :func:`read_annotations_csv`: round trips through Label Studio and spreadsheets.
- :func:`consensus` (:func:`majority_vote`, :func:`dawid_skene`), :func:`agreement`,
  :func:`needs_adjudication`: one label per item, how much raters agree, and what a person must settle.
"""

from ._agreement import AgreementResult, agreement
from ._anchors import AnchorLog, FileAnchorLog
from ._audit import ChainVerification
from ._consensus import ConsensusResult, consensus, dawid_skene, majority_vote, needs_adjudication
from ._interchange import (
    csv_tasks,
    label_studio_config,
    label_studio_tasks,
    read_annotations_csv,
    read_label_studio_export,
)
from ._keyring import AuditKeyring
from ._queueing import queue_for_review, queue_from_validation
from ._sampling import STRATEGIES, select_for_review, uncertainty_scores
from ._store import ROLES, SIGNOFF_ROLES, AnnotationRecord, ImportReport, Item, Queue, ReviewStore
from ._verified import QueueConsensus, queue_consensus

__all__ = [
    "ROLES",
    "SIGNOFF_ROLES",
    "STRATEGIES",
    "AgreementResult",
    "AnchorLog",
    "AuditKeyring",
    "AnnotationRecord",
    "ChainVerification",
    "ConsensusResult",
    "FileAnchorLog",
    "ImportReport",
    "Item",
    "Queue",
    "ReviewStore",
    "agreement",
    "consensus",
    "csv_tasks",
    "label_studio_config",
    "label_studio_tasks",
    "read_annotations_csv",
    "read_label_studio_export",
    "dawid_skene",
    "majority_vote",
    "needs_adjudication",
    "queue_for_review",
    "queue_from_validation",
    "queue_consensus",
    "QueueConsensus",
    "select_for_review",
    "uncertainty_scores",
]
