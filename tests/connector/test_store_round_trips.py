"""Round trips to the database per webhook (issue 16, session 18: SQL per customer message).

Per customer message the cluster receives one message webhook and three status webhooks (sent, delivered, read),
and with two instances behind the load balancer a status often lands on the instance that did not send the reply.
What the connector's store sends for them (`StoreCounter`, on SQLite and on PostgreSQL):
- a status webhook is one statement on PostgreSQL, autocommitted (no BEGIN, no COMMIT), which also settles the send
  key it echoes and tells the process that the key is `sent` (before: BEGIN, INSERT, COMMIT, and on the other
  instance, every time, a second transaction BEGIN, UPDATE, COMMIT that changed nothing);
- a message webhook is one statement too once its customer is known to the process (before: BEGIN, INSERT,
  COMMIT), and the customer identity's lookup and upsert each commit on their own (before: a transaction each);
- a reply's outbound log row and its send key's outcome are one statement (before: BEGIN, INSERT, UPDATE, COMMIT).
Behaviour is the same: every message and status stored before the 200, a `sending` key settled by its status, a
failed status settling nothing, duplicates stored once, `sent` final.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from connectors.inbound import parse_webhook
from connectors.send_keys import CALLBACK_FIELD
from connectors.service import WhatsAppService
from connectors.settings import WhatsAppSettings
from connectors.store import FORWARD_NOT_NEEDED, SEND_SENDING, SEND_SENT, inbound_messages, statuses
from tests.connector.store_counter import StoreCounter
from tests.connector.support import change, encode, new_message_id, new_wa_id, webhook
from tests.connector.test_usernames import customer_text


def service_on(store_url: str) -> WhatsAppService:
    service = WhatsAppService(WhatsAppSettings.from_env({
        "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "a",
        "WHATSAPP_PHONE_NUMBER_ID": "123", "WHATSAPP_STORE_URL": store_url,
        "INBOX_URL": "http://127.0.0.1:9/", "INBOX_BOT_TOKEN": "t",  # statuses decided, never forwarded here
    }))
    service.prepare()
    return service


@pytest.fixture
def two_instances(store_url: str) -> Iterator[Any]:
    """Two connector processes on one store: the one that sent the reply, and the other one."""
    sender, other = service_on(store_url), service_on(store_url)
    reader = create_engine(store_url, poolclass=NullPool)
    try:
        yield sender, other, reader
    finally:
        for service in (sender, other):
            service.store.close()
        reader.dispose()


def status_webhook(wamid: str, customer: str, status: str, key: str) -> Any:
    return parse_webhook(encode(webhook(change(statuses=[{
        "id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": customer,
        CALLBACK_FIELD: key,
    }]))))


def sent_reply(service: WhatsAppService, customer: str, settle: bool = True) -> Dict[str, str]:
    """A bot reply as `KeyedSender` leaves it: the key claimed, then (settle) logged and settled `sent`."""
    key, wamid = f"{new_message_id()}:0", "wamid.OUT" + new_message_id()[-12:]
    assert service.store.claim_send_key(key, customer, 60.0) is None
    if settle:
        service.store.record_outbound(recipient_id=customer, kind="text", request={"text": "hi"}, wamid=wamid,
                                      http_status=200, error_code=None, error_title=None, attempts=1, send_key=key)
    return {"key": key, "wamid": wamid}


def key_state(reader: Any, key: str) -> str:
    from connectors.store import send_keys

    with reader.connect() as connection:
        return connection.execute(select(send_keys.c.state).where(send_keys.c.key == key)).scalar()


@pytest.mark.asyncio
async def test_a_status_on_the_instance_that_did_not_send_the_reply_is_one_statement(two_instances, store_url):
    sender, other, reader = two_instances
    customer = new_wa_id()
    reply = sent_reply(sender, customer)
    counter = StoreCounter(other.store)
    works = []
    for status in ("sent", "delivered", "read"):
        before = counter.now()
        outcome = await other.accept(status_webhook(reply["wamid"], customer, status, reply["key"]))
        works.append(counter.now() - before)
        assert (outcome.new_statuses, outcome.statuses_to_forward) == (1, 0)  # a bot reply's: not forwarded
    if store_url.startswith("postgresql"):
        # The statement told the other process that the key is `sent`: no later status looks again.
        assert other.store.keys_not_known_sent([(reply["key"], reply["wamid"])]) == []
        # Before: BEGIN, INSERT, COMMIT, then BEGIN, UPDATE (0 rows), COMMIT for each of the three.
        assert [(work.statements, work.round_trips) for work in works] == [(1, 1)] * 3
    else:  # SQLite: the INSERT and, until the key is known, the settle, in one transaction
        assert [work.transactions for work in works] == [1, 1, 1]
        assert [work.statements for work in works] == [2, 2, 2]  # an UPDATE of 0 rows teaches SQLite nothing
    assert key_state(reader, reply["key"]) == SEND_SENT
    with reader.connect() as connection:
        assert list(connection.execute(select(statuses.c.forward_state).where(
            statuses.c.message_id == reply["wamid"])).scalars()) == [FORWARD_NOT_NEEDED] * 3


@pytest.mark.asyncio
async def test_a_status_settles_a_key_left_sending_in_the_same_transaction(two_instances, store_url):
    """A send whose answer never came (timeout, crash) stays `sending`; Meta's status settles it, once."""
    sender, other, reader = two_instances
    customer = new_wa_id()
    reply = sent_reply(sender, customer, settle=False)
    assert key_state(reader, reply["key"]) == SEND_SENDING
    counter = StoreCounter(other.store)
    await other.accept(status_webhook(reply["wamid"], customer, "sent", reply["key"]))
    work = counter.now()
    assert work.transactions == 1
    assert work.round_trips == (1 if store_url.startswith("postgresql") else 4)
    assert key_state(reader, reply["key"]) == SEND_SENT
    from connectors.store import send_keys

    with reader.connect() as connection:
        assert connection.execute(select(send_keys.c.wamid).where(send_keys.c.key == reply["key"])).scalar() \
            == reply["wamid"]
    before = counter.now()
    await other.accept(status_webhook(reply["wamid"], customer, "delivered", reply["key"]))
    assert (counter.now() - before).statements == 1  # known `sent` now: the INSERT only
    # Meta repeating a status: stored once, nothing new.
    again = await other.accept(status_webhook(reply["wamid"], customer, "delivered", reply["key"]))
    assert again.new_statuses == 0


@pytest.mark.asyncio
async def test_a_failed_status_settles_nothing(two_instances):
    sender, other, reader = two_instances
    customer = new_wa_id()
    reply = sent_reply(sender, customer, settle=False)
    outcome = await other.accept(status_webhook(reply["wamid"], customer, "failed", reply["key"]))
    assert outcome.new_statuses == 1
    assert key_state(reader, reply["key"]) == SEND_SENDING
    assert other.store.keys_not_known_sent([(reply["key"], reply["wamid"])]) == [(reply["key"], reply["wamid"])]


@pytest.mark.asyncio
async def test_a_message_webhook_is_one_statement_once_its_customer_is_known(two_instances, store_url):
    sender, other, reader = two_instances
    phone, bsuid = new_wa_id(), "IN.7" + new_wa_id()
    counter = StoreCounter(sender.store)
    outcome = await sender.accept(parse_webhook(customer_text("hi", phone=phone, user_id=bsuid)))
    assert len(outcome.new_messages) == 1 and outcome.new_messages[0].wa_id == phone
    work = counter.now()
    # The identity's SELECT and upsert, the look for a BSUID-keyed conversation, the message's INSERT, each on its
    # own (before: four transactions, twelve round trips on PostgreSQL).
    assert work.statements == 4
    if store_url.startswith("postgresql"):
        assert work.round_trips == 4
    assert other.identities.phone_for(bsuid) == phone  # committed: another process finds it
    before = counter.now()
    again = await sender.accept(parse_webhook(customer_text("again", phone=phone, user_id=bsuid)))
    work = counter.now() - before
    assert work.statements == 1  # known to this process: the INSERT only
    if store_url.startswith("postgresql"):
        assert work.round_trips == 1  # autocommitted (before: BEGIN, INSERT, COMMIT)
    with reader.connect() as connection:
        assert connection.execute(select(inbound_messages.c.wa_id).where(
            inbound_messages.c.message_id == again.new_messages[0].message_id)).scalar() == phone


@pytest.mark.asyncio
async def test_a_keyed_reply_is_logged_and_settled_in_one_statement(two_instances, store_url):
    sender, _other, reader = two_instances
    customer = new_wa_id()
    key, wamid = f"{new_message_id()}:0", "wamid.OUT" + new_message_id()[-12:]
    assert sender.store.claim_send_key(key, customer, 60.0) is None
    counter = StoreCounter(sender.store)
    sender.store.record_outbound(recipient_id=customer, kind="text", request={"text": "hi"}, wamid=wamid,
                                 http_status=200, error_code=None, error_title=None, attempts=1, send_key=key)
    work = counter.now()
    assert work.transactions == 1
    # Before: BEGIN, INSERT, UPDATE, COMMIT.
    assert work.round_trips == (1 if store_url.startswith("postgresql") else 4)
    assert key_state(reader, key) == SEND_SENT
    assert sender.store.keys_not_known_sent([(key, wamid)]) == []
    assert sender.store.sent_to(wamid, customer)
    # A send that failed: logged, the key `failed` (it may be sent again); and `sent` stays final.
    failed_key = f"{new_message_id()}:0"
    assert sender.store.claim_send_key(failed_key, customer, 60.0) is None
    sender.store.record_outbound(recipient_id=customer, kind="text", request={"text": "hi"}, wamid=None,
                                 http_status=400, error_code=131047, error_title="x", attempts=1, send_key=failed_key)
    assert key_state(reader, failed_key) == "failed"
    sender.store.record_outbound(recipient_id=customer, kind="text", request={"text": "hi"}, wamid=None,
                                 http_status=None, error_code=None, error_title=None, attempts=1, send_key=key,
                                 uncertain=True)
    assert key_state(reader, key) == SEND_SENT


@pytest.mark.asyncio
async def test_a_status_that_brings_a_new_identity_needs_no_transaction_around_it(two_instances, store_url):
    """Meta's statuses carry the recipient's BSUID and phone: the first one of a customer on an instance looks the
    pair up and remembers it. On PostgreSQL each of those statements commits on its own, as each was its own
    transaction before (BEGIN, SELECT, ROLLBACK; BEGIN, upsert, COMMIT; then BEGIN, INSERT, COMMIT)."""
    from tests.connector.test_usernames import delivered_status

    sender, other, reader = two_instances
    phone, bsuid = new_wa_id(), "IN.9" + new_wa_id()
    counter = StoreCounter(other.store)
    outcome = await other.accept(parse_webhook(delivered_status("wamid.OUT" + new_message_id()[-12:],
                                                                phone=phone, user_id=bsuid)))
    assert outcome.new_statuses == 1
    work = counter.now()
    assert work.statements == 3
    if store_url.startswith("postgresql"):
        assert work.round_trips == 3
    assert sender.identities.phone_for(bsuid) == phone
