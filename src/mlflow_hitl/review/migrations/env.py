"""Alembic environment for the review store: runs on the connection the store hands over."""

from alembic import context

from mlflow_hitl.review._schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
