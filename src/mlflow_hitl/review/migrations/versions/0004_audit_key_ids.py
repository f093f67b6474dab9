"""the key that signed each audit event

Revision ID: 0004
Revises: 0003

Events written with an audit key (``MLFLOW_HITL_AUDIT_KEY``, held by the server) carry the key's id;
their hash is an HMAC-SHA256 under that key. Events written before, or without a key, keep a null
``key_id`` and a plain sha256. A plain ADD COLUMN (not a batch table rebuild), so SQLite keeps the
change-counting triggers of migration 0003 on the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("hitl_audit_events", sa.Column("key_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hitl_audit_events") as batch:
        batch.drop_column("key_id")
