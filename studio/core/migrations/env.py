"""Alembic environment: runs on the connection that `studio.core.db` hands over."""

from alembic import context

from studio.core.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("studio migrations run only through studio.core.db.migrate()")
    # SQLite cannot ALTER most things in place; batch mode copies tables instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
