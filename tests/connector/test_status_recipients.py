"""Which delivery statuses go to the inbox (issue 16: CPU per message).

The inbox acts only on statuses of messages it sent itself (agent replies, satisfaction questions,
templates: straight to the Graph API with its `kl-reply-` send key); a status of the bot's reply answers
`{"accepted": 0}`. So a status of a message this connector sent (its send key echoed, or its id in the
outbound log) is stored `not_needed` and never forwarded; everything else is forwarded as before. Store
tests run on SQLite and PostgreSQL (the `store_url` fixture).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional

import pytest
from sqlalchemy import select

from connectors.inbound import parse_webhook
from connectors.send_keys import CALLBACK_FIELD
from connectors.store import (
    FORWARD_DONE,
    FORWARD_NOT_NEEDED,
    FORWARD_PENDING,
    FORWARD_SKIPPED,
    PersistOutcome,
    WhatsAppStore,
    statuses,
)
from tests.connector.support import change, encode, webhook
from tests.connector.test_store_work import QUESTION, connector  # noqa: F401  (the whole connector, a fixture)

CUSTOMER = "919812345388"
INBOX_KEY = "kl-reply-0123456789abcdef0123456789abcdef"  # inbox/services/replies.py, new_send_key()


def status(message_id: str, name: str, key: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    raw = {"id": message_id, "status": name, "timestamp": str(int(time.time())), "recipient_id": CUSTOMER, **extra}
    return raw if key is None else {**raw, CALLBACK_FIELD: key}


FAILED_131047 = {"errors": [{"code": 131047, "title": "Re-engagement message"}]}


@pytest.fixture
def store(store_url: str):
    store = WhatsAppStore(store_url)
    store.create_schema()
    yield store
    store.close()


def persist(store: WhatsAppStore, *raw: Dict[str, Any], forward: bool = True) -> PersistOutcome:
    parsed = parse_webhook(encode(webhook(change(statuses=list(raw)))))
    return store.persist_webhook([], parsed.statuses, [], forward_statuses=forward)


def states(store: WhatsAppStore, message_id: str) -> Dict[str, str]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(statuses.c.status, statuses.c.forward_state).where(statuses.c.message_id == message_id)
        ).all()
    return dict(rows)


def bot_reply(store: WhatsAppStore, wamid: str, key: Optional[str]) -> None:
    """What MessageSender/KeyedSender write for a bot reply: the key before the POST, then the log row."""
    if key is not None:
        assert store.claim_send_key(key, CUSTOMER, settle_seconds=60) is None
    store.record_outbound(
        recipient_id=CUSTOMER, kind="text", request={"to": CUSTOMER}, wamid=wamid, http_status=200,
        error_code=None, error_title=None, attempts=1, send_key=key,
    )


def test_statuses_of_a_keyed_bot_reply_are_stored_but_not_forwarded(store):
    bot_reply(store, "wamid.BOT1", "wamid.IN1:0")
    outcome = persist(store, *(status("wamid.BOT1", name, "wamid.IN1:0") for name in ("sent", "delivered", "read")))
    assert (outcome.new_statuses, outcome.statuses_to_forward) == (3, 0)
    assert states(store, "wamid.BOT1") == {name: FORWARD_NOT_NEEDED for name in ("sent", "delivered", "read")}
    assert store.statuses_due() == [] and store.next_forward_time() is None
    again = persist(store, status("wamid.BOT1", "read", "wamid.IN1:0"))  # Meta repeats itself
    assert (again.new_statuses, again.statuses_to_forward) == (0, 0)


def test_a_bot_reply_status_faster_than_the_outbound_log_is_known_by_its_send_key(store):
    """Meta can report a message before the connector has written the send's log row; its key was written
    before the POST."""
    assert store.claim_send_key("wamid.IN2:0", CUSTOMER, settle_seconds=60) is None
    assert persist(store, status("wamid.BOT2", "sent", "wamid.IN2:0")).statuses_to_forward == 0
    assert states(store, "wamid.BOT2") == {"sent": FORWARD_NOT_NEEDED}


def test_an_unkeyed_bot_send_is_known_by_its_outbound_log_row(store):
    """Rasa's HTTP API sending proactively: no send key, the wamid in the outbound log."""
    bot_reply(store, "wamid.BOT3", key=None)
    assert persist(store, status("wamid.BOT3", "delivered")).statuses_to_forward == 0
    assert states(store, "wamid.BOT3") == {"delivered": FORWARD_NOT_NEEDED}


def test_a_failed_bot_reply_is_not_forwarded_either(store):
    """Nothing in the inbox acts on a bot reply's failure (it matches statuses to its own messages only);
    the connector logs it (connectors/service.py) and keeps it in wa_statuses."""
    bot_reply(store, "wamid.BOT4", "wamid.IN4:0")
    assert persist(store, status("wamid.BOT4", "failed", "wamid.IN4:0", **FAILED_131047)).statuses_to_forward == 0
    assert states(store, "wamid.BOT4") == {"failed": FORWARD_NOT_NEEDED}


def test_statuses_of_the_inbox_s_messages_and_unknown_ids_are_forwarded_as_received(store):
    bot_reply(store, "wamid.BOT5", "wamid.IN5:0")  # the connector's own sends around them change nothing
    raw: List[Dict[str, Any]] = [
        status("wamid.AGENT1", "sent", INBOX_KEY),  # an agent reply or satisfaction question
        status("wamid.AGENT1", "failed", INBOX_KEY, **FAILED_131047),
        status("wamid.TEMPLATE1", "delivered"),  # no key: the inbox matches it by the id it stored
        status("wamid.UNKNOWN1", "read", "someone-else:1"),  # a key that is not the connector's
        status("wamid.BOT5", "read", "wamid.IN5:0"),
    ]
    outcome = persist(store, *raw)
    assert (outcome.new_statuses, outcome.statuses_to_forward) == (5, 4)
    due = store.statuses_due()
    assert [s.raw for s in due] == raw[:4]  # in arrival order, exactly as Meta sent them
    store.mark_forwarded([s.id for s in due])
    assert states(store, "wamid.AGENT1") == {"sent": FORWARD_DONE, "failed": FORWARD_DONE}
    assert states(store, "wamid.BOT5") == {"read": FORWARD_NOT_NEEDED}


def test_an_unkeyed_status_before_its_send_is_logged_is_forwarded(store):
    """Without a key, a status that beats the log row cannot be told from the inbox's: it is forwarded
    (forwarding too much is safe; the inbox answers `accepted: 0`)."""
    assert persist(store, status("wamid.BOT6", "sent")).statuses_to_forward == 1
    bot_reply(store, "wamid.BOT6", key=None)
    assert persist(store, status("wamid.BOT6", "delivered")).statuses_to_forward == 0
    assert states(store, "wamid.BOT6") == {"sent": FORWARD_PENDING, "delivered": FORWARD_NOT_NEEDED}


def test_without_an_inbox_every_status_is_skipped_as_before(store):
    bot_reply(store, "wamid.BOT7", "wamid.IN7:0")
    outcome = persist(store, status("wamid.BOT7", "sent", "wamid.IN7:0"), status("wamid.X", "sent"), forward=False)
    assert (outcome.new_statuses, outcome.statuses_to_forward) == (2, 0)
    assert states(store, "wamid.BOT7") == {"sent": FORWARD_SKIPPED}
    assert states(store, "wamid.X") == {"sent": FORWARD_SKIPPED}


# --- the whole connector: webhook, dispatcher, keyed sender, forwarder (test_store_work.py) --------


@pytest.mark.asyncio
async def test_the_inbox_gets_its_own_statuses_and_none_of_the_bots(connector, caplog):
    await connector.customer_asks(QUESTION)  # the reply's sent/delivered/read, one webhook each
    [reply] = connector.meta.sent
    bot_wamid = connector.store_wamid(reply[CALLBACK_FIELD])
    assert connector.forward_states() == [FORWARD_NOT_NEEDED] * 3
    assert not connector.forwarder.woken and connector.inbox.accepted == []

    with caplog.at_level(logging.ERROR, logger="connectors.service"):
        await connector.accept(webhook(change(statuses=[
            status(bot_wamid, "failed", reply[CALLBACK_FIELD], **FAILED_131047)])))
    assert not connector.forwarder.woken
    assert any("131047" in record.getMessage() for record in caplog.records)  # the operator still sees it

    await connector.accept(webhook(change(statuses=[status("wamid.AGENT9", "delivered", INBOX_KEY)])))
    await connector.accept(webhook(change(statuses=[status("wamid.UNKNOWN9", "read")])))
    assert connector.forwarder.woken
    await connector.forwarder.forward_if_woken()
    assert connector.inbox.accepted == ["wamid.AGENT9", "wamid.UNKNOWN9"]
    assert connector.forward_states() == [FORWARD_NOT_NEEDED] * 4 + [FORWARD_DONE] * 2


def test_an_sqlite_without_returning_still_decides_and_only_over_wakes(store, monkeypatch):
    """SQLite before 3.35 has no `RETURNING`: the state is decided the same; every new status wakes the
    forwarder, which then finds nothing due for a bot reply's."""
    import connectors.store

    if not store.is_sqlite:
        pytest.skip("only SQLite uses this statement; PostgreSQL stores a status with _store_and_settle_status")
    monkeypatch.setattr(store, "_insert_status_to_forward", connectors.store._INSERT_STATUS_TO_FORWARD_COUNTED)
    bot_reply(store, "wamid.BOT8", "wamid.IN8:0")
    outcome = persist(store, status("wamid.BOT8", "sent", "wamid.IN8:0"), status("wamid.AGENT8", "sent", INBOX_KEY))
    assert (outcome.new_statuses, outcome.statuses_to_forward) == (2, 2)
    assert persist(store, status("wamid.BOT8", "sent", "wamid.IN8:0")).new_statuses == 0
    assert [s.raw["id"] for s in store.statuses_due()] == ["wamid.AGENT8"]
    assert states(store, "wamid.BOT8") == {"sent": FORWARD_NOT_NEEDED}
