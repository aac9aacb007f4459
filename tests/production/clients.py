"""Test clients for the production profile: tests/e2e/clients.py's, with the inbox database and the connector's
store on PostgreSQL (read-only sessions)."""
from __future__ import annotations

from tests.e2e.clients import ConnectorStore, InboxDB

# A frozen PostgreSQL (tests/production/test_outages.py) accepts the TCP connection and never answers: a
# query then fails after this many seconds instead of hanging the test.
CONNECT_TIMEOUT_SECONDS = 10


def readonly_query(url: str, sql: str, *args) -> list:
    """Runs `sql` (with `?` placeholders, as the SQLite views write them) in a read-only session at `url`."""
    import psycopg2
    import psycopg2.extras

    connection = psycopg2.connect(url.replace("postgresql+psycopg://", "postgresql://", 1),
                                  cursor_factory=psycopg2.extras.DictCursor, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        connection.set_session(readonly=True, autocommit=True)
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), args)
            return cursor.fetchall()
    finally:
        connection.close()


class PostgresInboxDB(InboxDB):
    """Read-only view of the inbox's PostgreSQL database (same queries as the SQLite one: `?` placeholders)."""

    def __init__(self, url: str):
        super().__init__(path=None)
        self.url = url

    def query(self, sql: str, *args):
        return readonly_query(self.url, sql, *args)


class PostgresConnectorStore(ConnectorStore):
    """Read-only view of the connector's PostgreSQL store (the profile's WHATSAPP_STORE_URL): `turn_finished`
    as in the end-to-end suite, so Customer.say() waits for the end of the bot's turn here too."""

    def __init__(self, url: str):
        super().__init__(path=None)
        self.url = url

    def query(self, sql: str, *args):
        return readonly_query(self.url, sql, *args)
