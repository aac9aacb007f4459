"""Test clients for the production profile: tests/e2e/clients.py's, with the inbox database on PostgreSQL."""
from __future__ import annotations

from tests.e2e.clients import InboxDB


class PostgresInboxDB(InboxDB):
    """Read-only view of the inbox's PostgreSQL database (same queries as the SQLite one: `?` placeholders)."""

    def __init__(self, url: str):
        super().__init__(path=None)
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)

    def query(self, sql: str, *args):
        import psycopg2
        import psycopg2.extras

        connection = psycopg2.connect(self.url, cursor_factory=psycopg2.extras.DictCursor)
        try:
            connection.set_session(readonly=True, autocommit=True)
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), args)
                return cursor.fetchall()
        finally:
            connection.close()
