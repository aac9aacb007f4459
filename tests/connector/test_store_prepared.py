"""The connector store's hot statements run as prepared statements on PostgreSQL (issue 16, session 18).

PostgreSQL planned the store's statements for longer than it executed them (0.86 vs 0.65 ms per customer message
in the capacity benchmark). On PostgreSQL each hot statement is now prepared once per connection and then sent as
`EXECUTE` (connectors/prepared_statements.py), the tracker store's mechanism; on SQLite nothing changes. A new
connection (a PostgreSQL restart, a terminated backend) prepares again; a session that lost its prepared statements
(SQLSTATE 26000) is dropped by the pool and the next call prepares on a new one.
"""

from __future__ import annotations

import time
from typing import Any, List

import pytest
from sqlalchemy import event, exc, select

from connectors.inbound import parse_webhook
from connectors.store import inbound_messages
from tests.connector.support import new_wa_id
from tests.connector.test_store_round_trips import sent_reply, status_webhook, two_instances  # noqa: F401
from tests.connector.test_usernames import customer_text


class SentSql:
    """The SQL the store's engines send to the server (after the store's own rewriting)."""

    def __init__(self, store: Any) -> None:
        self.sent: List[str] = []
        for engine in {store.engine, store._bookkeeping, store._autocommit} - {None}:
            event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sent.append(statement)

    def take(self) -> List[str]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture(autouse=True)
def postgres_only(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("prepared statements are PostgreSQL's (SQLite's statements are unchanged)")


async def one_customer_message(sender: Any, other: Any) -> None:
    """What the cluster does for a customer message: the message webhook (with the customer's identity), the claim,
    the keyed reply (send key, outbound log and its outcome), the finish, and the reply's statuses on the instance
    that sent it and on the other."""
    phone, bsuid = new_wa_id(), "IN.7" + new_wa_id()
    outcome = await sender.accept(parse_webhook(customer_text("hi", phone=phone, user_id=bsuid)))
    assert len(outcome.new_messages) == 1
    claimed = sender.store.claim_next(phone, "worker-1", 60.0)
    assert claimed is not None and claimed.message.wa_id == phone
    reply = sent_reply(sender, phone)
    assert sender.store.finish_and_claim_next(claimed.seq, "worker-1", phone, 60.0) is None
    for instance, status in ((other, "sent"), (sender, "delivered"), (other, "read")):
        stored = await instance.accept(status_webhook(reply["wamid"], phone, status, reply["key"]))
        assert stored.new_statuses == 1


def prepared_on_connection(engine: Any) -> dict:
    """The prepared statements of the connection the engine's (LIFO) pool hands out next: executions by the name's
    prefix (`kesar_status_3` -> `kesar_status`; the number tells a connection's statements apart)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements")
        executions: dict = {}
        for name, count in rows:
            prefix = name.rsplit("_", 1)[0]
            executions[prefix] = executions.get(prefix, 0) + count
        return executions


async def test_the_hot_statements_are_prepared_once_per_connection_and_executed(two_instances):
    sender, other, reader = two_instances
    sent = SentSql(sender.store), SentSql(other.store)
    await one_customer_message(sender, other)
    first = [statement for record in sent for statement in record.take()]
    assert first and all(statement.startswith("EXECUTE kesar_") for statement in first), first
    await one_customer_message(sender, other)  # the same statements, the same prepared ones
    second = [statement for record in sent for statement in record.take()]
    assert all(statement.startswith("EXECUTE kesar_") for statement in second), second
    assert {statement.split("(")[0] for statement in second} <= {statement.split("(")[0] for statement in first}
    names = {statement.split()[1].split("(")[0].rsplit("_", 1)[0] for statement in first}
    assert names == {"kesar_inbound", "kesar_identities", "kesar_identity_upsert", "kesar_bsuid_keyed",
                     "kesar_oldest", "kesar_claim", "kesar_finish", "kesar_send_key", "kesar_log_settle",
                     "kesar_status"}
    # On the server: the statements are in the connection's session and were executed there, twice each at least.
    executions = prepared_on_connection(sender.store._autocommit)
    assert executions.get("kesar_status", 0) >= 2 and executions.get("kesar_log_settle", 0) >= 2, executions
    # The rows are the same as ever.
    with reader.connect() as connection:
        assert connection.execute(select(inbound_messages.c.state)).scalars().all() == ["done", "done"]


async def test_a_new_connection_prepares_again(two_instances):
    """A PostgreSQL restart or terminated backend: the store's new connections start without prepared statements
    and prepare them again; nothing fails."""
    sender, other, reader = two_instances
    await one_customer_message(sender, other)
    with reader.connect() as connection:
        terminated = connection.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar()
    assert terminated >= 2
    time.sleep(0.2)
    sent = SentSql(sender.store)
    await one_customer_message(sender, other)
    assert all(statement.startswith("EXECUTE kesar_") for statement in sent.take())
    assert "kesar_status" in prepared_on_connection(sender.store._autocommit)


async def test_a_session_that_lost_its_prepared_statements_is_replaced(two_instances):
    """DEALLOCATE ALL (or DISCARD ALL): the call that finds its statement gone fails as on a broken connection, the
    pool drops the connection, and the next call prepares on a new one."""
    sender, other, _reader = two_instances
    await one_customer_message(sender, other)
    customer = new_wa_id()
    with sender.store._autocommit.connect() as connection:
        connection.exec_driver_sql("DEALLOCATE ALL")
    with pytest.raises(exc.DBAPIError) as raised:
        sender.store.claim_next(customer, "worker-1", 60.0)
    assert raised.value.connection_invalidated
    assert sender.store.claim_next(customer, "worker-1", 60.0) is None
    await one_customer_message(sender, other)  # the store goes on as before
