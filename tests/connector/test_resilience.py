"""Short outages lose nothing (issue 13, item 6).

The real dispatcher, store (SQLite and PostgreSQL), output channel, keyed sender, RasaConversations
and Rasa's in-memory tracker and lock stores; the tracker store can be switched "down" (every call
raises, as a PostgreSQL that refuses connections would). Only the NLU/policy part of Rasa's turn is
scripted, and Meta is a recording sender. The retry pauses run on an injected clock: minutes of
back-off take no wall-clock time, and no test depends on a timing margin.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationPaused, UserUttered
from sqlalchemy.exc import OperationalError

from connectors.conversations import RasaConversations
from connectors.graph_api import SendResult
from connectors.handoff_contract import bot_unavailable_message
from connectors.outbound_messages import OutboundMessage
from connectors.output import WhatsAppOutput
from connectors.processing import CUSTOMER_TEXT_LIMIT, MAX_CLAIMS, InboundDispatcher
from connectors.send_keys import CALLBACK_FIELD, KeyedSender, keyed_sender
from connectors.store import DONE, HANDED_OFF, WhatsAppStore
from connectors.inbound import parse_webhook
from tests.connector.support import change, encode, text_message, webhook
from tests.connector.test_unanswered_turns import ANSWERED, DOMAIN, ScriptedRasa
from tests.connector.test_work_sharing import persist

pytestmark = pytest.mark.asyncio

CUSTOMER = "919812345210"
BOT_UNAVAILABLE = bot_unavailable_message()


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: List[float] = []
        self.on_tick: List[Any] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for callback in self.on_tick:
            callback(self.now)
        await asyncio.sleep(0)


class FlakyTrackerStore(InMemoryTrackerStore):
    """Rasa's in-memory tracker store that can be "down", or fail its next saves."""

    def __init__(self) -> None:
        super().__init__(DOMAIN)
        self.down = False
        self.failing_saves = 0

    async def retrieve(self, sender_id: str) -> Any:
        if self.down:
            raise ConnectionError("tracker store unavailable")
        return await super().retrieve(sender_id)

    async def save(self, tracker: Any) -> None:
        if self.down:
            raise ConnectionError("tracker store unavailable")
        if self.failing_saves:
            self.failing_saves -= 1
            raise ConnectionError("tracker store went away during the save")
        await super().save(tracker)


class Meta:
    """Records what reaches the customer; `uncertain` answers the next sends with no answer."""

    def __init__(self) -> None:
        self.delivered: List[Dict[str, Any]] = []
        self.uncertain = 0

    async def send(self, recipient_id: str, message: OutboundMessage) -> SendResult:
        self.delivered.append(message.body)  # whether or not the answer comes back, Meta has it
        if self.uncertain:
            self.uncertain -= 1
            return SendResult(wamid=None, http_status=None, error=None, attempts=1, uncertain=True)
        return SendResult(wamid=f"wamid.OUT{len(self.delivered)}", http_status=200, error=None, attempts=1)

    async def reply_id_for(self, payload: str, limit: int) -> str:
        return payload

    def texts(self, wa_id: str = CUSTOMER) -> List[str]:
        return [body["text"]["body"] for body in self.delivered if body.get("to") == wa_id]


class Rig:
    def __init__(self, store: WhatsAppStore, budget: float = 300.0) -> None:
        self.store = store
        self.clock = FakeClock()
        self.meta = Meta()
        self.rasa = ScriptedRasa()
        self.tracker_store = FlakyTrackerStore()
        self.rasa.agent.tracker_store = self.tracker_store
        self.rasa.next_turn = ANSWERED
        self.conversations = RasaConversations(self.rasa.app, self.rasa.on_new_message, BOT_UNAVAILABLE)
        self.dispatcher = InboundDispatcher(
            store, self.conversations, self.output_channel, input_channel_name="whatsapp",
            claim_ttl_seconds=30, sweep_interval_seconds=60, owner="test",
            retry_budget_seconds=budget, retry_first_pause_seconds=1.0,
            clock=self.clock, sleep=self.clock.sleep,
        )

    def output_channel(self, turn_key: Optional[str] = None) -> WhatsAppOutput:
        return WhatsAppOutput(keyed_sender(self.meta, self.store, turn_key, settle_seconds=60))

    def outage_until(self, seconds: float) -> None:
        """The tracker store is down from now until the clock reaches `seconds`."""
        self.tracker_store.down = True

        def tick(now: float) -> None:
            if now >= seconds:
                self.tracker_store.down = False

        self.clock.on_tick.append(tick)

    async def customer_writes(self, *texts: str) -> List[str]:
        messages = [text_message(CUSTOMER, text) for text in texts]
        persist(self.store, *messages)
        self.dispatcher.wake(CUSTOMER)
        return [message["id"] for message in messages]

    async def settled(self, message_ids: List[str]) -> None:
        """Waits (on the condition, not a clock) until every message is finished."""
        for _ in range(20_000):
            rows = [self.state(message_id) for message_id in message_ids]
            if all(state not in ("pending", "processing") for state in rows):
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"messages never finished: {rows}")

    def state(self, message_id: str) -> str:
        from sqlalchemy import select

        from connectors.store import inbound_messages

        with self.store.engine.connect() as connection:
            return connection.execute(
                select(inbound_messages.c.state).where(inbound_messages.c.message_id == message_id)
            ).scalar()

    async def tracker(self) -> Any:
        return await InMemoryTrackerStore.retrieve(self.tracker_store, CUSTOMER)

    async def each_answered_once(self, *texts: str) -> Any:
        """Each message answered exactly once and in the tracker exactly once, in order."""
        assert self.meta.texts() == ["Free returns within 14 days."] * len(texts)
        tracker = await self.tracker()
        assert [e.text for e in tracker.events if isinstance(e, UserUttered)] == list(texts)
        return tracker


@pytest.fixture
async def rig(store_url: str):
    store = WhatsAppStore(store_url)
    store.create_schema()
    rig = Rig(store)
    rig.dispatcher.start()
    yield rig
    await rig.dispatcher.stop()
    store.close()


async def test_a_20_second_tracker_store_outage_delays_answers_but_loses_none(rig):
    rig.outage_until(20)
    ids = await rig.customer_writes("what is your return policy", "and for sale items?")
    await rig.settled(ids)

    # Both answered exactly once, in order, nobody handed off.
    tracker = await rig.each_answered_once("what is your return policy", "and for sale items?")
    assert [rig.state(message_id) for message_id in ids] == [DONE, DONE]
    assert not tracker.is_paused()
    # Pauses double from 1 s; the second message never ran before the first was done.
    assert rig.clock.sleeps == [1, 2, 4, 8, 16]


async def test_an_outage_longer_than_the_budget_ends_in_one_honest_reply_and_a_handoff(rig):
    rig.outage_until(400)  # five minutes of retries, then the hand-off waits for the tracker store too
    ids = await rig.customer_writes("where is my order 5176", "hello??")
    await rig.settled(ids)

    # Told once, although the hand-off could only be written at 400 s (after 4 tries 30 s apart).
    assert rig.meta.texts() == [BOT_UNAVAILABLE]
    assert rig.state(ids[0]) == HANDED_OFF
    assert rig.state(ids[1]) == DONE  # reached Rasa after the hand-off: a person has it now
    retries = rig.clock.sleeps[: rig.clock.sleeps.index(30) + 9]
    assert sum(retries) == 300 and max(retries) == 30  # 1, 2, 4, 8, 16, then every 30 s
    tracker = await rig.tracker()
    assert tracker.is_paused() and tracker.get_slot("escalation_reason") == "bot_unavailable"
    assert [e.text for e in tracker.events if isinstance(e, UserUttered)] == ["where is my order 5176", "hello??"]
    assert sum(isinstance(e, ConversationPaused) for e in tracker.events) == 1
    assert [e.text for e in tracker.events if isinstance(e, BotUttered)] == [BOT_UNAVAILABLE]


async def test_a_turn_retried_after_its_reply_went_out_does_not_send_it_again(rig):
    rig.tracker_store.failing_saves = 1  # the reply is sent, then saving the turn fails
    ids = await rig.customer_writes("what is your return policy")
    await rig.settled(ids)

    assert rig.meta.texts() == ["Free returns within 14 days."]
    assert rig.state(ids[0]) == DONE
    assert rig.clock.sleeps == [1]
    sent = rig.meta.delivered[0]
    assert sent[CALLBACK_FIELD] == f"{ids[0]}:0"  # our key travels with the message


async def test_a_message_that_kept_killing_its_process_is_handed_off_not_handled_again(rig):
    [message_id] = await rig.customer_writes("a message that crashes the bot")
    await rig.settled([message_id])
    # Simulate MAX_CLAIMS crashes: the row was claimed that often and never finished.
    from sqlalchemy import update

    from connectors.store import inbound_messages

    [second] = [text_message(CUSTOMER, "crash me")]
    persist(rig.store, second)
    with rig.store.engine.begin() as connection:
        connection.execute(update(inbound_messages).where(inbound_messages.c.message_id == second["id"])
                           .values(attempts=MAX_CLAIMS))
    rig.dispatcher.wake(CUSTOMER)
    await rig.settled([second["id"]])

    assert rig.state(second["id"]) == HANDED_OFF
    assert rig.meta.texts() == ["Free returns within 14 days.", BOT_UNAVAILABLE]


async def test_customer_text_reaches_rasa_capped_and_stays_whole_in_the_store(rig):
    seen: List[str] = []
    original = rig.rasa.on_new_message

    async def recording(message: UserMessage) -> None:
        seen.append(message.text)
        await original(message)

    rig.conversations._on_new_message = recording
    long_text = "my order " + "x" * 3_000_000
    [message_id] = await rig.customer_writes(long_text)
    await rig.settled([message_id])

    assert [len(text) for text in seen] == [CUSTOMER_TEXT_LIMIT]
    assert seen[0] == long_text[:CUSTOMER_TEXT_LIMIT]
    from sqlalchemy import select

    from connectors.store import inbound_messages

    with rig.store.engine.connect() as connection:
        raw = connection.execute(
            select(inbound_messages.c.raw).where(inbound_messages.c.message_id == message_id)
        ).scalar()
    assert long_text in raw


# --- the keyed sender on its own ------------------------------------------------------------


async def test_a_send_with_no_answer_is_not_repeated_until_checked(store_url):
    store = WhatsAppStore(store_url)
    store.create_schema()
    meta = Meta()
    meta.uncertain = 1
    waited: List[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    message = OutboundMessage("text", {"to": CUSTOMER, "type": "text", "text": {"body": "Your order ships today."}})
    try:
        first = KeyedSender(meta, store, "wamid.IN1", settle_seconds=60, sleep=no_wait)
        assert (await first.send(CUSTOMER, message)).uncertain
        assert store.send_key_state("wamid.IN1:0") == "unknown"

        # The turn is retried at once: the reply may be on the customer's phone, so not again.
        retry = KeyedSender(meta, store, "wamid.IN1", settle_seconds=60, sleep=no_wait)
        await retry.send(CUSTOMER, message)
        assert len(meta.delivered) == 1 and len(waited) == 1 and 0 < waited[0] <= 60

        # Meta's status webhook echoes our key: it has the message; a later retry skips it for good.
        sent = {"id": "wamid.OUT1", "status": "sent", "timestamp": "1760000000", "recipient_id": CUSTOMER,
                CALLBACK_FIELD: "wamid.IN1:0"}
        echoed = parse_webhook(encode(webhook(change(statuses=[sent]))))
        store.persist_webhook([], echoed.statuses, [], forward_statuses=True)
        assert store.send_key_state("wamid.IN1:0") == "sent"
        await KeyedSender(meta, store, "wamid.IN1", settle_seconds=0, sleep=no_wait).send(CUSTOMER, message)
        assert len(meta.delivered) == 1

        # No status within the settle time: Meta does not have it, so it is sent again.
        meta.uncertain = 1
        await KeyedSender(meta, store, "wamid.IN2", settle_seconds=60, sleep=no_wait).send(CUSTOMER, message)
        await KeyedSender(meta, store, "wamid.IN2", settle_seconds=0, sleep=no_wait).send(CUSTOMER, message)
        assert len(meta.delivered) == 3
        assert store.send_key_state("wamid.IN2:0") == "sent"
    finally:
        store.close()


async def test_a_send_meta_accepted_while_the_store_was_down_is_not_sent_again(store_url):
    """Session 23: PostgreSQL shut down mid-turn; Meta accepted the reply, but its outcome could not be written and
    the status webhook was lost in the same outage, so the retried turn sent the reply a second time."""
    store = WhatsAppStore(store_url)
    store.create_schema()
    meta = Meta()
    settle = store.settle_send_key
    calls: List[str] = []

    def settle_while_down(key, wamid, uncertain):
        calls.append(key)
        if len(calls) == 1:
            raise OperationalError("UPDATE wa_send_keys", {}, Exception("connection refused"))
        return settle(key, wamid, uncertain)

    store.settle_send_key = settle_while_down
    message = OutboundMessage("text", {"to": CUSTOMER, "type": "text", "text": {"body": "Your order ships today."}})

    async def no_wait(seconds: float) -> None:
        raise AssertionError("the retried turn must not wait for a status")

    try:
        first = await KeyedSender(meta, store, "wamid.IN9", settle_seconds=0, sleep=no_wait).send(CUSTOMER, message)
        assert first.wamid and store.send_key_state("wamid.IN9:0") == "sending"  # the store missed the outcome
        # settle_seconds=0: without the outcome kept in the process, the retry would POST the reply again
        retry = await KeyedSender(meta, store, "wamid.IN9", settle_seconds=0, sleep=no_wait).send(CUSTOMER, message)
        assert len(meta.delivered) == 1 and retry.wamid == first.wamid and retry.attempts == 0
        assert store.send_key_state("wamid.IN9:0") == "sent"  # written once the store was back
        again = await KeyedSender(meta, store, "wamid.IN9", settle_seconds=0, sleep=no_wait).send(CUSTOMER, message)
        assert len(meta.delivered) == 1 and again.attempts == 0
    finally:
        store.close()


# --- the Graph API client: no retry when the request may have reached Meta ------------------


async def test_a_send_that_gets_no_answer_is_not_posted_again():
    from aiohttp import web

    from connectors.graph_api import GraphApiClient
    from connectors.settings import WhatsAppSettings

    hits: List[Dict[str, Any]] = []
    never = asyncio.Event()

    async def swallow(request: web.Request) -> web.Response:
        hits.append(await request.json())
        await never.wait()  # Meta took the message and the answer never comes back
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v21.0/{phone}/messages", swallow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings = WhatsAppSettings(
        verify_token="v", app_secret="s", access_token="t", phone_number_id="1",
        api_base_url=f"http://127.0.0.1:{port}/v21.0", send_attempts=5, send_backoff_seconds=0.01,
        send_timeout_seconds=0.5,  # the server never answers, so any timeout ends the wait
    )
    client = GraphApiClient(settings)
    try:
        result = await client.send({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text",
                                    "text": {"body": "Your order ships today."}})
        assert result.uncertain and not result.ok
        assert len(hits) == 1  # 5 attempts allowed, but a second POST could be a second message
    finally:
        never.set()
        await client.close()
        await runner.cleanup()


async def test_the_outage_settings_come_from_the_environment():
    from connectors.settings import InvalidSettingError, WhatsAppSettings

    base = {"WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "t",
            "WHATSAPP_PHONE_NUMBER_ID": "1"}
    defaults = WhatsAppSettings.from_env(base)
    assert (defaults.retry_budget_seconds, defaults.retry_first_pause_seconds, defaults.max_body_bytes,
            defaults.send_settle_seconds) == (300.0, 1.0, 4 * 1024 * 1024, 60.0)
    tuned = WhatsAppSettings.from_env({**base, "WHATSAPP_RETRY_BUDGET_SECONDS": "600",
                                       "WHATSAPP_MAX_BODY_BYTES": "1000000"})
    assert (tuned.retry_budget_seconds, tuned.max_body_bytes) == (600.0, 1_000_000)
    with pytest.raises(InvalidSettingError, match="WHATSAPP_RETRY_BUDGET_SECONDS"):
        WhatsAppSettings.from_env({**base, "WHATSAPP_RETRY_BUDGET_SECONDS": "five minutes"})


async def test_a_handled_message_is_marked_done_even_if_the_store_blinks_at_that_moment(rig):
    real_finish = rig.store.finish
    failures = {"left": 2}

    def flaky_finish(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("connector store unavailable")
        return real_finish(*args, **kwargs)

    rig.store.finish = flaky_finish
    ids = await rig.customer_writes("what is your return policy", "and for sale items?")
    await rig.settled(ids)

    # Handled once each (not again because the first stayed `processing`), in order.
    await rig.each_answered_once("what is your return policy", "and for sale items?")
    assert rig.clock.sleeps == [1, 2]


async def test_a_turn_that_failed_after_rasa_saved_it_is_not_run_again(rig):
    # Rasa saved the turn, then releasing the conversation lock failed (Redis timing out).
    original = rig.conversations._on_new_message
    failures = {"left": 1}

    async def save_then_fail(message: UserMessage) -> None:
        await original(message)
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("Timeout reading from socket (releasing the lock)")

    rig.conversations._on_new_message = save_then_fail
    ids = await rig.customer_writes("what is your return policy", "and for sale items?")
    await rig.settled(ids)

    # Counted once: a second run would have made the next message look like a further unthanked turn.
    tracker = await rig.each_answered_once("what is your return policy", "and for sale items?")
    assert not tracker.is_paused()


async def test_a_turn_run_by_a_process_killed_before_marking_it_done_is_not_run_again(rig, caplog):
    caplog.set_level(logging.INFO, logger="connectors.conversations")
    # Another Rasa instance claimed the message, ran the turn (reply sent, tracker saved) and was
    # SIGKILLed before marking it done (tests/cluster/test_chaos.py found this).
    message = text_message(CUSTOMER, "what is your return policy")
    message_id = message["id"]
    persist(rig.store, message)
    claimed = rig.store.claim_next(CUSTOMER, "rasa1", 15)
    assert claimed is not None and claimed.message.message_id == message_id
    await rig.conversations.deliver(UserMessage(
        "what is your return policy", rig.output_channel(turn_key=message_id), sender_id=CUSTOMER,
        input_channel="whatsapp", message_id=message_id, metadata=claimed.message.rasa_metadata(),
    ))
    from sqlalchemy import update

    from connectors.store import inbound_messages

    with rig.store.engine.begin() as connection:  # its 15 s lease has run out
        connection.execute(update(inbound_messages).where(inbound_messages.c.message_id == message_id)
                           .values(lease_until=0))
    rig.rasa.next_turn = [ActionExecuted("action_answer_question"), BotUttered("a second run"),
                          ActionExecuted("action_listen")]

    rig.dispatcher.wake(CUSTOMER)
    await rig.settled([message_id])

    assert "Taking over WhatsApp message" in caplog.text
    assert "already in Rasa's tracker" in caplog.text  # tells the operator why it was not run again
    assert rig.state(message_id) == DONE
    # One reply on the phone, and the turn once in the tracker (so once in the inbox's transcript).
    tracker = await rig.each_answered_once("what is your return policy")
    assert [e.text for e in tracker.events if isinstance(e, BotUttered)] == ["Free returns within 14 days."]


async def test_a_background_loop_failing_every_quarter_second_logs_once_a_minute(caplog):
    from connectors.processing import FailureLog

    clock = FakeClock()
    log = FailureLog(clock)
    with caplog.at_level("WARNING", logger="connectors.processing"):
        for _ in range(4 * 150):  # 150 s of a sweep failing every 0.25 s
            try:
                raise ConnectionError("connector store unavailable")
            except ConnectionError:
                log.failed("Looking for unhandled WhatsApp messages")
            clock.now += 0.25
        log.recovered("Looking for unhandled WhatsApp messages")
        log.recovered("Looking for unhandled WhatsApp messages")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "Looking for unhandled WhatsApp messages failed; retrying",
        "Looking for unhandled WhatsApp messages still failing (241 attempts so far)",
        "Looking for unhandled WhatsApp messages still failing (481 attempts so far)",
        "Looking for unhandled WhatsApp messages works again after 600 failed attempts",
    ]
    assert caplog.records[0].exc_info is not None  # the first one carries the traceback
