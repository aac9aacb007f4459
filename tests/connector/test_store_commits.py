"""Fewer store transactions per customer message (issue 16, session 15), the same guarantees.

- A keyed reply writes its outbound log row and settles its send key in one transaction (two before):
  claim + log-and-settle. If that transaction fails, the outcome is settled on its own (as before);
  if that fails too, the key stays `sending` and a retried turn does not send the reply again before
  the settle time (as after a crash).
- 131062 (BSUID recipient refused): the key stays `sending` while the send to the phone is under way,
  and is settled from the final outcome (`sent`, or `failed` when no phone is known).
- The sweep looks for customers with work in one statement (two before), oldest first, and still
  finds a customer whose claim ran out.
Runs on SQLite and PostgreSQL (the `store_url` fixture).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List

import pytest

from connectors.customer_identities import CustomerIdentities
from connectors.outbound_messages import OutboundMessage, custom_message
from connectors.output import MessageSender
from connectors.send_keys import CALLBACK_FIELD, KeyedSender
from connectors.store import SEND_FAILED, SEND_SENDING, SEND_SENT, WhatsAppStore, outbound_messages
from whatsapp_cloud import SendResult

from tests.connector import test_units
from tests.connector.store_counter import StoreCounter
from tests.connector.support import new_wa_id, text_message
from tests.connector.test_usernames import BSUID, PHONE, _Meta

CUSTOMER = "919812345678"
store = test_units.store  # the fixture: a fresh store on SQLite and on PostgreSQL
persist = test_units.persist


class Meta:
    """The Graph API as MessageSender sees it; `during` runs inside each send (the POST in flight)."""

    def __init__(self, during: Any = None) -> None:
        self.bodies: List[Dict[str, Any]] = []
        self.during = during

    async def send(self, body: Dict[str, Any]) -> SendResult:
        self.bodies.append(body)
        if self.during is not None:
            self.during(body)
        return SendResult(wamid=f"wamid.OUT{len(self.bodies)}x{time.time_ns()}", http_status=200, error=None, attempts=1)


def reply() -> OutboundMessage:
    return OutboundMessage("text", {"to": CUSTOMER, "type": "text", "text": {"body": "Free returns within 14 days."}})


def logged(store: WhatsAppStore) -> List[Any]:
    with store.engine.connect() as connection:
        return connection.execute(
            outbound_messages.select().order_by(outbound_messages.c.id)).all()


@pytest.mark.asyncio
async def test_a_keyed_reply_is_logged_and_settled_in_one_transaction(store):
    meta = Meta()
    counter = StoreCounter(store)
    before = counter.now()
    result = await KeyedSender(MessageSender(meta, store), store, "wamid.IN1").send(CUSTOMER, reply())
    assert (counter.now() - before).transactions == 2  # the key claimed; the log and the outcome (3 before)

    assert result.ok and len(meta.bodies) == 1 and meta.bodies[0][CALLBACK_FIELD] == "wamid.IN1:0"
    assert store.send_key_state("wamid.IN1:0") == SEND_SENT
    [row] = logged(store)
    assert (row.wamid, row.state, row.recipient_id) == (result.wamid, "sent", CUSTOMER)
    # Known `sent` in this process: its statuses need no UPDATE (connectors/store_outbound.py, KnownSentKeys).
    assert store.keys_not_known_sent([("wamid.IN1:0", result.wamid)]) == []
    # A retried turn does not send it again.
    await KeyedSender(MessageSender(meta, store), store, "wamid.IN1").send(CUSTOMER, reply())
    assert len(meta.bodies) == 1


@pytest.mark.asyncio
async def test_when_the_log_cannot_be_written_the_outcome_is_still_settled(store, monkeypatch):
    meta = Meta()

    def broken(**_kwargs: Any) -> None:
        raise ValueError("the log row cannot be written")

    monkeypatch.setattr(store, "record_outbound", broken)
    result = await KeyedSender(MessageSender(meta, store), store, "wamid.IN2").send(CUSTOMER, reply())
    assert result.ok  # the reply went out; the turn goes on
    assert store.send_key_state("wamid.IN2:0") == SEND_SENT  # as before: the outcome on its own


@pytest.mark.asyncio
async def test_when_nothing_can_be_written_the_key_stays_sending_and_is_not_resent(store, monkeypatch, caplog):
    meta = Meta()

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionError("store went away")

    monkeypatch.setattr(store, "record_outbound", broken)
    monkeypatch.setattr(store, "settle_send_key", broken)
    with caplog.at_level(logging.ERROR, logger="connectors.output"):
        result = await KeyedSender(MessageSender(meta, store), store, "wamid.IN5").send(CUSTOMER, reply())
    assert result.ok
    assert store.send_key_state("wamid.IN5:0") == SEND_SENDING
    assert any("outcome of WhatsApp message wamid.IN5:0" in record.getMessage() for record in caplog.records)
    monkeypatch.undo()

    waited: List[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    # A retried turn right away: Meta accepted the reply (the process kept its message id while the store
    # was down), so it is not sent again and nothing waits for a status the outage may have lost (session 23).
    again = await KeyedSender(MessageSender(meta, store), store, "wamid.IN5", sleep=no_wait).send(CUSTOMER, reply())
    assert len(meta.bodies) == 1 and waited == [] and again.wamid == result.wamid
    assert store.send_key_state("wamid.IN5:0") == SEND_SENT  # written now that the store is back


@pytest.mark.asyncio
async def test_131062_keeps_the_key_sending_while_the_phone_send_is_under_way(store):
    CustomerIdentities(store).remember([(BSUID, PHONE)])
    meta = _Meta()
    states: List[Any] = []
    send = meta.send

    async def watched(body: Dict[str, Any]) -> SendResult:
        states.append(store.send_key_state("wamid.IN3:0"))
        return await send(body)

    meta.send = watched
    message = custom_message(BSUID, {"type": "template", "template": {"name": "otp"}})
    result = await KeyedSender(MessageSender(meta, store), store, "wamid.IN3").send(BSUID, message)

    assert result.ok and meta.bodies[1]["to"] == PHONE
    assert states == [SEND_SENDING, SEND_SENDING]  # never `failed` (re-sendable) while the phone send runs
    assert store.send_key_state("wamid.IN3:0") == SEND_SENT
    assert [(row.state, row.error_code) for row in logged(store)] == [("failed", 131062), ("sent", None)]


@pytest.mark.asyncio
async def test_131062_without_a_phone_settles_the_key_failed(store):
    meta = _Meta()
    user_id = "IN.77" + str(time.time_ns())[-10:]
    message = custom_message(user_id, {"type": "template", "template": {"name": "otp"}})
    result = await KeyedSender(MessageSender(meta, store), store, "wamid.IN4").send(user_id, message)
    assert not result.ok and result.error.code == 131062 and len(meta.bodies) == 1
    assert store.send_key_state("wamid.IN4:0") == SEND_FAILED
    assert [(row.state, row.error_code) for row in logged(store)] == [("failed", 131062)]


def test_the_sweep_finds_customers_with_work_in_one_statement_oldest_first(store):
    waiting_longest, abandoned, newest, in_hand = (new_wa_id() for _ in range(4))
    persist(store, text_message(waiting_longest, "first"))
    persist(store, text_message(abandoned, "second"))
    persist(store, text_message(in_hand, "third"))
    persist(store, text_message(newest, "fourth"))
    store.claim_next(abandoned, "dead", lease_seconds=0.1)
    store.claim_next(in_hand, "alive", lease_seconds=30)
    time.sleep(0.2)
    counter = StoreCounter(store)

    assert store.customers_with_work() == [waiting_longest, abandoned, newest]
    assert counter.now().statements == 1
    assert store.customers_with_work(limit=2) == [waiting_longest, abandoned]
