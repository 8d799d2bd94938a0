"""Alembic environment: runs on the connection FreshID hands it (see freshid.storage.migrate)."""

from __future__ import annotations

from alembic import context

from freshid.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
