"""Alembic owns the schema: up, down, up again, and the models agree with the migrations."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from inbox import migrate
from inbox.db import Database
from inbox.models import Base

APP_TABLES = {
    "agents",
    "teams",
    "agent_teams",
    "customers",
    "conversations",
    "conversation_tags",
    "handoffs",
    "messages",
    "quick_replies",
    "kb_matches",
    "consumer_positions",
    "agent_sessions",
    "media_files",
    "csat_surveys",
    "snoozes",
}


def test_upgrade_downgrade_upgrade(database_url):
    database = Database(database_url)
    try:
        assert set(inspect(database.engine).get_table_names()) >= APP_TABLES
        migrate.downgrade(database, "base")
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
        assert migrate.current_revision(database) is None
        migrate.upgrade(database)
        assert set(inspect(database.engine).get_table_names()) >= APP_TABLES
        assert migrate.current_revision(database) == "0008"
    finally:
        database.dispose()


def test_the_models_match_the_migrated_schema(database_url):
    database = Database(database_url)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda obj, name, type_, reflected, compare_to: (
                        not (name or "").startswith(("messages_fts", "search_vector", "ix_messages_search"))
                    ),
                },
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        database.dispose()


def test_full_text_search_objects_exist_per_dialect(database_url):
    database = Database(database_url)
    try:
        inspector = inspect(database.engine)
        if database.is_sqlite:
            assert "messages_fts" in inspector.get_table_names()
        else:
            assert "search_vector" in {column["name"] for column in inspector.get_columns("messages")}
            assert "ix_messages_search" in {index["name"] for index in inspector.get_indexes("messages")}
    finally:
        database.dispose()


def test_start_up_says_once_that_the_schema_changed_and_nothing_when_it_is_current(database_url, caplog):
    database = Database(database_url)
    try:
        migrate.downgrade(database, "0006")
        caplog.clear()
        with caplog.at_level("INFO"):
            migrate.upgrade(database)
            migrate.upgrade(database)  # the next start: already current
        lines = [(record.name, record.getMessage()) for record in caplog.records]
        assert lines == [("inbox.migrate", "Database schema upgraded from 0006 to 0008")]
    finally:
        database.dispose()
