"""an index on the audit events' action

Revision ID: 0006
Revises: 0005

The audit page filters by action (a prefix, ``promotion.``) and Home reads the newest evidence
registrations. Without an index, a filter that few events match walked the whole chain (286 ms p50,
1.26 s p95 at 1,000,000 events). The index holds each action's events in sequence order, so the events
of one action after (or before) a sequence number are one index range; a prefix is answered as the
few actions it names (see ``SqlAudit.audit_events``). An index, not a table rebuild: SQLite keeps the
change-counting triggers of migration 0003.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_hitl_audit_action", "hitl_audit_events", ["action", "seq"])


def downgrade() -> None:
    op.drop_index("ix_hitl_audit_action", table_name="hitl_audit_events")
