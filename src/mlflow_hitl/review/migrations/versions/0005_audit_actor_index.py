"""an index on the audit events' actor

Revision ID: 0005
Revises: 0004

The audit page filters by actor, paged by sequence number. Without an index, a page of a rare actor's
events walked the whole chain after ``after_seq`` (250-770 ms at 1,000,000 events); the index holds
each actor's events in sequence order (SQLite keeps the row id, which is ``seq``, in every index).
An index, not a table rebuild: SQLite keeps the change-counting triggers of migration 0003.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_hitl_audit_actor", "hitl_audit_events", ["actor", "seq"])


def downgrade() -> None:
    op.drop_index("ix_hitl_audit_actor", table_name="hitl_audit_events")
