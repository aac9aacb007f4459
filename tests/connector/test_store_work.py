"""The database work of the connector's store per customer message (issue 16: CPU per message).

A knowledge-base question answered by the bot, end to end through the connector's own parts: the
webhook accepted and persisted (`WhatsAppService.accept`), the message claimed and handled by the
dispatcher (Rasa's turn scripted, as in test_resilience.py), the reply sent through the keyed sender
and logged, then Meta's sent / delivered / read statuses accepted one webhook each (stored, and not
forwarded to the inbox: they are a bot reply's, which the inbox does not act on). `StoreCounter` counts what the store sends to the database on the way; the test's own
queries use an engine of their own. Runs on SQLite and on PostgreSQL (the `store_url` fixture).
"""

from __future__ import annotations

import asyncio
import glob
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from connectors.conversations import RasaConversations
from connectors.graph_api import SendResult
from connectors.handoff_contract import bot_unavailable_message
from connectors.inbound import parse_webhook
from connectors.output import MessageSender
from connectors.processing import InboundDispatcher
from connectors.send_keys import CALLBACK_FIELD
from connectors.service import WhatsAppService
from connectors.settings import WhatsAppSettings
from connectors.status_forwarding import StatusForwarder
from connectors.store import DONE, FORWARD_NOT_NEEDED, inbound_messages, send_keys, statuses
from tests.connector.store_counter import StoreCounter, Work
from tests.connector.support import change, encode, text_message, webhook
from tests.connector.test_status_refusals import PickyInbox
from tests.connector.test_unanswered_turns import ANSWERED, ScriptedRasa

CUSTOMER = "919812345377"
QUESTION = "what is your return policy"


class Meta:
    """The Graph API as MessageSender sees it: every send accepted with a new wamid."""

    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []

    async def send(self, body: Dict[str, Any]) -> SendResult:
        self.sent.append(body)
        return SendResult(wamid=f"wamid.OUT{len(self.sent)}x{time.time_ns()}", http_status=200, error=None, attempts=1)

    async def close(self) -> None:
        pass


class ManualForwarder(StatusForwarder):
    """The real forwarder, run one `forward_due()` after a status webhook that woke it (what its loop does
    on each wake-up), by the test, so no background loop adds work between the measured steps."""

    woken = False

    async def _run(self) -> None:
        await asyncio.Event().wait()

    def wake(self) -> None:
        self.woken = True

    async def forward_if_woken(self) -> None:
        if self.woken:
            self.woken = False
            await self.forward_due()


class Connector:
    def __init__(self, store_url: str, inbox_url: str) -> None:
        settings = WhatsAppSettings.from_env({
            "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "a",
            "WHATSAPP_PHONE_NUMBER_ID": "123", "WHATSAPP_STORE_URL": store_url,
            "INBOX_URL": inbox_url, "INBOX_BOT_TOKEN": "t",
        })
        self.service = WhatsAppService(settings)
        self.meta = Meta()
        self.service.client = self.meta
        self.service.sender = MessageSender(self.meta, self.service.store)
        self.service.prepare()
        self.store = self.service.store
        self.rasa = ScriptedRasa()
        self.rasa.next_turn = ANSWERED
        conversations = RasaConversations(self.rasa.app, self.rasa.on_new_message, bot_unavailable_message())
        self.dispatcher = InboundDispatcher(
            self.store, conversations, self.service.output_channel, input_channel_name="whatsapp",
            claim_ttl_seconds=600, sweep_interval_seconds=600, owner="work-test",
        )
        self.forwarder = ManualForwarder(self.store, inbox_url, "t")
        self.service.dispatcher, self.service.forwarder = self.dispatcher, self.forwarder
        self.reader = create_engine(store_url, poolclass=NullPool)  # the test's own queries: not counted

    async def start(self) -> None:
        self.dispatcher.start()
        self.forwarder.start()
        await self.idle()  # the start-up sweep

    async def stop(self) -> None:
        await self.service.stop()
        self.reader.dispose()

    async def idle(self) -> None:
        """Waits (on the condition) until the dispatcher has no customer and no sweep in flight."""
        for _ in range(20_000):
            await asyncio.sleep(0.001)
            if not self.dispatcher._customer_tasks:
                return
        raise AssertionError("the dispatcher never became idle")

    async def accept(self, payload: Dict[str, Any]) -> None:
        await self.service.accept(parse_webhook(encode(payload)))

    def state(self, message_id: str) -> str:
        with self.reader.connect() as connection:
            return connection.execute(
                select(inbound_messages.c.state).where(inbound_messages.c.message_id == message_id)).scalar()

    def forward_states(self) -> List[str]:
        with self.reader.connect() as connection:
            return list(connection.execute(select(statuses.c.forward_state).order_by(statuses.c.id)).scalars())

    async def customer_asks(self, text: str) -> None:
        """One customer message and everything that follows from it, each step awaited."""
        message = text_message(CUSTOMER, text)
        replies_before = len(self.meta.sent)
        await self.accept(webhook(change([message])))
        for _ in range(20_000):
            if self.state(message["id"]) == DONE:
                break
            await asyncio.sleep(0.001)
        await self.idle()
        assert self.state(message["id"]) == DONE
        for reply in self.meta.sent[replies_before:]:
            wamid = self.store_wamid(reply[CALLBACK_FIELD])
            for status in ("sent", "delivered", "read"):
                await self.accept(webhook(change(statuses=[{
                    "id": wamid, "status": status, "timestamp": str(int(time.time())),
                    "recipient_id": CUSTOMER, CALLBACK_FIELD: reply[CALLBACK_FIELD],
                }])))
                await self.forwarder.forward_if_woken()

    def store_wamid(self, key: str) -> str:
        with self.reader.connect() as connection:
            return connection.execute(select(send_keys.c.wamid).where(send_keys.c.key == key)).scalar()


@pytest.fixture
async def connector(store_url: str):
    inbox = PickyInbox()
    connector = Connector(store_url, inbox.url)
    connector.inbox = inbox
    await connector.start()
    yield connector
    await connector.stop()
    inbox.server.shutdown()


def per_message(total: Work, messages: int) -> Work:
    return Work(total.statements // messages, total.transactions // messages, total.pings // messages,
                total.autocommitted // messages)


@pytest.mark.asyncio
async def test_a_knowledge_base_answer_costs_few_store_transactions_and_no_pings(connector, store_url):
    counter = StoreCounter(connector.store)
    await connector.customer_asks(QUESTION)  # warms the pool and the caches
    before = counter.now()
    counter.statement_texts.clear()
    messages = 3
    for _ in range(messages):
        await connector.customer_asks(QUESTION)
    work = per_message(counter.now() - before, messages)
    print(f"\n{store_url.split(':')[0]}: per customer message {work}, {work.round_trips} round trips")
    for statement, count in sorted(counter.statement_texts.items(), key=lambda item: -item[1]):
        print(f"  {count / messages:5.1f}  {statement}")

    # What the customer sees is unchanged: each question answered once. Every status is stored; none is a
    # status the inbox acts on (they are the bot reply's), so none is forwarded (test_status_recipients.py).
    assert [body["text"]["body"] for body in connector.meta.sent] == ["Free returns within 14 days."] * (messages + 1)
    assert connector.forward_states() == [FORWARD_NOT_NEEDED] * 3 * (messages + 1)
    assert connector.inbox.accepted == []
    # Before (pool_pre_ping, every part its own transaction): 27 statements, 26 transactions, 26 pings.
    assert work.pings == 0
    # 16 before session 15 (the log row and the send key's outcome: one), 15 and 23 statements until the bot
    # reply's statuses stopped going to the inbox (each wake-up's forwarding transaction is gone).
    assert work.transactions <= 9
    assert work.statements <= 11
    if store_url.startswith("postgresql"):
        # Session 18: 29 round trips before (every step its own BEGIN ... COMMIT). Now the message webhook, each
        # status webhook, the claims, the finish, the send key's claim and the reply's log row with its key's
        # outcome (one statement) are statements committed on their own (autocommit): 10.
        assert work.round_trips <= 10


# --- PostgreSQL: pings only when in doubt ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_connection_idle_longer_than_the_limit_is_pinged_before_use(store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose")
    from connectors.store import IDLE_PING_SECONDS, WhatsAppStore

    clock = FakeClock()
    store = WhatsAppStore(store_url, clock=clock)
    store.create_schema()
    counter = StoreCounter(store)
    try:
        store.statuses_due()
        store.statuses_due()
        assert counter.now().pings == 0  # used a moment ago, and the server said nothing since
        clock.now += IDLE_PING_SECONDS + 1
        store.statuses_due()
        assert counter.now().pings == 1
        store.statuses_due()
        assert counter.now().pings == 1
    finally:
        store.close()


class RestartablePostgres:
    """A PostgreSQL cluster of this test's own (inbox/scripts/start_test_postgres.sh), restarted with pg_ctl."""

    def __init__(self, data_dir: Path) -> None:
        from tests.production.harness import PostgresCluster

        self.cluster = PostgresCluster(data_dir)
        self.cluster.start()
        self.cluster.execute("CREATE DATABASE wa_restart")
        self.url = self.cluster.admin_url.rsplit("/", 1)[0] + "/wa_restart"

    def restart(self) -> None:
        pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        data_dir = self.cluster.data_dir
        # With a log file: the restarted server must not hold on to this call's output pipes.
        command = f"{pg_ctl} -D '{data_dir}' -l '{data_dir}/server.log' -m fast -w restart"
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        self.cluster.stop()


@pytest.fixture
def postgres() -> Iterator[RestartablePostgres]:
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl") or os.geteuid() != 0:
        if os.environ.get("WHATSAPP_REQUIRE_POSTGRES") == "1":
            pytest.fail("WHATSAPP_REQUIRE_POSTGRES=1 but no PostgreSQL to start and restart here")
        pytest.skip("needs PostgreSQL's pg_ctl and root (to run it as postgres)")
    data_dir = Path(tempfile.mkdtemp(prefix="wa-restart-postgres."))
    server = RestartablePostgres(data_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_a_postgresql_restart_between_two_messages_is_survived(postgres, monkeypatch):
    """The pooled connections die with the restart. No timer can tell (the idle limit is an hour here):
    the server's goodbye on each idle connection does, the ping fails, the pool connects anew, and the
    customer's next message is persisted, answered once and its statuses forwarded, with no error."""
    import connectors.store

    monkeypatch.setattr(connectors.store, "IDLE_PING_SECONDS", 3600.0)
    inbox = PickyInbox()
    connector = Connector(postgres.url, inbox.url)
    connector.inbox = inbox
    counter = StoreCounter(connector.store)
    await connector.start()
    try:
        await connector.customer_asks(QUESTION)
        assert counter.now().pings == 0
        postgres.restart()
        await connector.customer_asks("and for sale items?")

        assert [body["text"]["body"] for body in connector.meta.sent] == ["Free returns within 14 days."] * 2
        assert connector.forward_states() == [FORWARD_NOT_NEEDED] * 6  # stored; a bot reply's: not forwarded
        assert inbox.accepted == []
        assert counter.now().pings >= 1  # the dead connection was found out before a transaction used it
    finally:
        await connector.stop()
        inbox.server.shutdown()
