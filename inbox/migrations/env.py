"""Alembic environment: uses the connection handed over by `inbox.migrate`, else DATABASE_URL."""

from alembic import context

from inbox.db import make_engine
from inbox.models import Base
from inbox.settings import Settings

target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    # Full-text search objects are created with raw DDL per dialect and are not in the models.
    return not (name or "").startswith(("messages_fts", "search_vector", "ix_messages_search"))


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = make_engine(Settings().resolved_database_url)
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()
