"""Run Alembic migrations against a Database (start-up runs `upgrade head`)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config

from inbox.db import Database
from inbox.settings import INBOX_DIR


def alembic_config() -> Config:
    return Config(str(INBOX_DIR / "alembic.ini"))


logger = logging.getLogger(__name__)


def upgrade(database: Database, revision: str = "head") -> None:
    """One line when the schema changed, none when it was already current: Alembic's own INFO lines
    (two at every start, one more per migration with its whole docstring) buried the start-up."""
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(logging.WARNING)
    try:
        before = current_revision(database)
        _run(database, command.upgrade, revision)
        after = current_revision(database)
    finally:
        alembic_logger.setLevel(level)
    if after != before:
        logger.info("Database schema upgraded from %s to %s", before or "empty", after)


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
