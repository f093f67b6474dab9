"""The human loop, free of MLflow: which rows people review, their labels, consensus, roles, audit.

- :func:`select_for_review`, :func:`uncertainty_scores`: route the least-confident rows (plus a
  random control share and edge cases) to reviewers; every pick records why.
- :class:`RoutingRule`, :class:`Router`, :class:`QueueFeeder`: the rule a served model routes its
  uncertain requests by, and the background feeder that appends them to a growing queue without ever
  holding up a prediction (:mod:`mlflow_hitl.serving` wraps a model with them).
- :class:`ReviewStore`: queues, reservations, annotations, adjudications, roles, sign-offs and
  verified-label snapshots in SQLite or PostgreSQL, every human action in a tamper-evident hash chain.
  The rest of the code depends on :class:`ReviewStoreProtocol` (and its parts :class:`QueueStore`,
  :class:`GovernanceStore`, :class:`AuditStore`), which another backend implements in one module.
- :func:`queue_consensus`, :func:`build_snapshot`: a queue's verified labels, and the files that publish them;
  :func:`queue_tally`: the same counts from the label counts the database makes (the Queues page).
- :func:`label_studio_tasks`, :func:`read_label_studio_export`, :func:`csv_tasks`,
  :func:`read_annotations_csv`: round trips through Label Studio and spreadsheets.
- :func:`queue_generator_audit`, :func:`generator_audit_inputs`: a blind queue in which people judge
  synthetic rows (stratified by group, real rows as controls) for realism, and their answers read back.
- :func:`consensus` (:func:`majority_vote`, :func:`dawid_skene`), :func:`agreement`,
  :func:`needs_adjudication`: one label per item, how much raters agree, and what a person must settle.
"""

from ._agreement import AgreementResult, agreement
from ._anchors import ANCHOR_PATH_ENV, AnchorLog, FileAnchorLog
from ._audit import ChainVerification, event_intact
from ._consensus import METHODS, ConsensusResult, consensus, dawid_skene, majority_vote, needs_adjudication
from ._engine import masked_url
from ._evidence import EVIDENCE_REGISTERED, registration_digest
from ._feeding import DROP_CAUSES, FeederSettings, QueueFeeder
from ._generator_audit import (
    AUDIT_CLASSES,
    AUDIT_TAGS,
    GENERATOR_AUDIT,
    NOT_REALISTIC,
    REALISTIC,
    AuditSample,
    audit_comment,
    generator_audit_inputs,
    generator_audit_sample,
    is_generator_audit,
    queue_generator_audit,
    read_audit_comment,
)
from ._http_store import HttpReviewStore
from ._interchange import (
    csv_tasks,
    label_studio_config,
    label_studio_tasks,
    read_annotations_csv,
    read_label_studio_export,
)
from ._interface import AuditStore, GovernanceStore, QueueStore, ReviewStoreProtocol
from ._keyring import KEY_ENV, KEY_FILE_ENV, AuditKeyring
from ._queueing import queue_for_review, queue_from_validation, queue_selection
from ._routing import ROUTING_STRATEGIES, Budget, Router, RoutingRule
from ._sampling import STRATEGIES, control_rows, select_among, select_for_review, uncertainty_scores
from ._snapshot import SNAPSHOT_FILES, LabelSnapshot, build_snapshot
from ._store import (
    ROLES,
    SIGNOFF_ROLES,
    AnnotationRecord,
    ImportReport,
    Item,
    Queue,
    QueueLabels,
    ReviewStore,
)
from ._verified import (
    DEFAULT_MIN_AGREEMENT,
    QueueConsensus,
    QueueTally,
    consensus_of,
    queue_consensus,
    queue_tally,
)

__all__ = [
    "ANCHOR_PATH_ENV",
    "EVIDENCE_REGISTERED",
    "AUDIT_CLASSES",
    "AUDIT_TAGS",
    "GENERATOR_AUDIT",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "NOT_REALISTIC",
    "REALISTIC",
    "AuditSample",
    "audit_comment",
    "generator_audit_inputs",
    "generator_audit_sample",
    "is_generator_audit",
    "queue_generator_audit",
    "read_audit_comment",
    "DEFAULT_MIN_AGREEMENT",
    "DROP_CAUSES",
    "ROUTING_STRATEGIES",
    "Budget",
    "FeederSettings",
    "QueueFeeder",
    "Router",
    "RoutingRule",
    "METHODS",
    "ROLES",
    "SIGNOFF_ROLES",
    "SNAPSHOT_FILES",
    "STRATEGIES",
    "AgreementResult",
    "AnchorLog",
    "AuditKeyring",
    "AnnotationRecord",
    "AuditStore",
    "ChainVerification",
    "ConsensusResult",
    "FileAnchorLog",
    "GovernanceStore",
    "HttpReviewStore",
    "ImportReport",
    "Item",
    "LabelSnapshot",
    "Queue",
    "QueueLabels",
    "QueueStore",
    "ReviewStore",
    "ReviewStoreProtocol",
    "build_snapshot",
    "consensus_of",
    "control_rows",
    "agreement",
    "consensus",
    "csv_tasks",
    "label_studio_config",
    "label_studio_tasks",
    "read_annotations_csv",
    "read_label_studio_export",
    "registration_digest",
    "dawid_skene",
    "event_intact",
    "majority_vote",
    "needs_adjudication",
    "queue_for_review",
    "queue_from_validation",
    "queue_selection",
    "queue_consensus",
    "queue_tally",
    "QueueConsensus",
    "QueueTally",
    "select_among",
    "select_for_review",
    "uncertainty_scores",
    "masked_url",
]
