"""Tables of the review store (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The schema is created and evolved by the alembic migrations in ``review/migrations``; these
definitions are what queries are written against, and ``tests/review/test_store.py`` checks that
the two agree. Every table is prefixed ``hitl_`` so the store can live in the same database as
MLflow's own tables; alembic's bookkeeping uses ``hitl_alembic_version`` for the same reason.

Labels and classes are stored as JSON text so an integer class stays an integer.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "adjudications",
    "annotations",
    "assignments",
    "audit_events",
    "chain_head",
    "items",
    "metadata",
    "policies",
    "queues",
    "roles",
    "signoffs",
    "snapshots",
]

VERSION_TABLE = "hitl_alembic_version"

metadata = MetaData()

queues = Table(
    "hitl_queues",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("run_id", String(64)),
    Column("classes", Text, nullable=False),
    Column("raters_per_item", Integer, nullable=False),
    Column("blind", Boolean, nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("columns", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

items = Table(
    "hitl_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("queue_id", Integer, ForeignKey("hitl_queues.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("row_key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prediction", Text),
    Column("confidence", Float),
    Column("score", Float),
    Column("reason", String(100), nullable=False),
    Column("group_value", String(200)),
    Column("inclusion_probability", Float),
    Column("gold_label", Text),
    Column("n_labels", Integer, nullable=False),
    UniqueConstraint("queue_id", "position", name="uq_hitl_items_position"),
    UniqueConstraint("queue_id", "row_key", name="uq_hitl_items_row_key"),
)

annotations = Table(
    "hitl_annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("hitl_items.id"), nullable=False),
    Column("user", String(200), nullable=False),
    Column("label", Text, nullable=False),
    Column("comment", Text),
    Column("source", String(32), nullable=False),
    Column("external_id", String(200)),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("item_id", "user", name="uq_hitl_annotations_item_user"),
)

assignments = Table(
    "hitl_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("hitl_items.id"), nullable=False),
    Column("user", String(200), nullable=False),
    Column("expires_at", String(32), nullable=False),
    UniqueConstraint("item_id", "user", name="uq_hitl_assignments_item_user"),
)

adjudications = Table(
    "hitl_adjudications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("hitl_items.id"), nullable=False, unique=True),
    Column("user", String(200), nullable=False),
    Column("label", Text, nullable=False),
    Column("note", Text),
    Column("created_at", String(32), nullable=False),
)

roles = Table(
    "hitl_roles",
    metadata,
    Column("user", String(200), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("granted_by", String(200), nullable=False),
    Column("granted_at", String(32), nullable=False),
)

signoffs = Table(
    "hitl_signoffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("user", String(200), nullable=False),
    Column("role", String(64), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("note", Text),
    Column("audit_seq", Integer, nullable=False),
    Column("audit_hash", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
)

snapshots = Table(
    "hitl_snapshots",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("queue_id", Integer, ForeignKey("hitl_queues.id"), nullable=False),
    Column("run_id", String(64)),
    Column("method", String(32), nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("labels_sha256", String(64), nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("audit_seq", Integer, nullable=False),
    Column("audit_hash", String(64), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# Gate policies per registered model; a new row per change, the newest one in force.
policies = Table(
    "hitl_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("policy", Text, nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("set_at", String(32), nullable=False),
    UniqueConstraint("model_name", "version", name="uq_hitl_policies_version"),
)

audit_events = Table(
    "hitl_audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(64), nullable=True),  # the audit key that signed it (migration 0004)
)

# One row (id = 1): the chain's head. Every write that appends events locks it first, so appends are
# serialised across processes (FOR UPDATE on PostgreSQL; SQLite transactions are already exclusive).
# ``changes`` is kept by a database trigger (migration 0003): every UPDATE or DELETE of a stored event.
chain_head = Table(
    "hitl_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("changes", BigInteger, nullable=False, server_default="0"),
)
