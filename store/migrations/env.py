"""Alembic environment: always run from triage.store.migrate with a live connection."""

from alembic import context

from triage.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
