"""Alembic environment: runs migrations on the connection Crossdock hands it."""

from __future__ import annotations

from alembic import context

from crossdock.store.tables import metadata

config = context.config
target_metadata = metadata


def run() -> None:
    """Run migrations online, on ``config.attributes['connection']``."""
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
