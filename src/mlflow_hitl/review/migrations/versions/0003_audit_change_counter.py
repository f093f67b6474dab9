"""count every change to stored audit events

Revision ID: 0003
Revises: 0002

Audit events are only ever appended. A database trigger counts every UPDATE and DELETE of a stored
event in ``hitl_chain_head.changes``, so a process that has walked the whole chain can tell that
nothing before the head it verified has changed since, and walk only the events appended after it
(``ReviewStore.verify_audit(incremental=True)``, which the registry gates use). On databases other
than SQLite and PostgreSQL no trigger is created and every verification walks the whole chain.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = ("hitl_audit_events_updated", "hitl_audit_events_deleted")


def upgrade() -> None:
    with op.batch_alter_table("hitl_chain_head") as batch:
        batch.add_column(sa.Column("changes", sa.BigInteger(), nullable=False, server_default="0"))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name, event in zip(_SQLITE_TRIGGERS, ("UPDATE", "DELETE"), strict=True):
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON hitl_audit_events "
                "BEGIN UPDATE hitl_chain_head SET changes = changes + 1 WHERE id = 1; END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION hitl_count_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE hitl_chain_head SET changes = changes + 1 WHERE id = 1; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER hitl_audit_events_changed AFTER UPDATE OR DELETE OR TRUNCATE "
            "ON hitl_audit_events FOR EACH STATEMENT EXECUTE FUNCTION hitl_count_audit_change()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS hitl_audit_events_changed ON hitl_audit_events")
        op.execute("DROP FUNCTION IF EXISTS hitl_count_audit_change()")
    with op.batch_alter_table("hitl_chain_head") as batch:
        batch.drop_column("changes")
