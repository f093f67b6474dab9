"""an index on the items' label counts per queue

Revision ID: 0007
Revises: 0006

A queue's progress (items, labels given, complete items) sums ``n_labels`` over the queue's items; the
Queues and Home pages ask it for every queue they show. Read from the table, the sum visits each item's
whole row, payload included (about 50 ms for a queue of 60,000 items); from an index on
``(queue_id, n_labels)`` it reads the index alone.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_hitl_items_labels", "hitl_items", ["queue_id", "n_labels"])


def downgrade() -> None:
    op.drop_index("ix_hitl_items_labels", table_name="hitl_items")
