"""Run Alembic migrations against a Database (start-up runs `upgrade head`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from inbox.db import Database
from inbox.settings import INBOX_DIR


def alembic_config() -> Config:
    return Config(str(INBOX_DIR / "alembic.ini"))


def upgrade(database: Database, revision: str = "head") -> None:
    _run(database, command.upgrade, revision)


def downgrade(database: Database, revision: str) -> None:
    _run(database, command.downgrade, revision)


def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _run(database: Database, action, revision: str) -> None:
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)
