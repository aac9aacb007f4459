"""A retrying turn is woken when the dependencies answer again (issue 16).

A turn whose handling failed waits out a doubling pause (up to 30 s) before its next try; when any
other turn in the same process succeeds meanwhile, the pause ends at once. Same rig as
test_resilience.py (real dispatcher, store, output channel, keyed sender, RasaConversations), but
Rasa fails for chosen customers, and pauses from `gate_from` seconds on never end by themselves: a
test sees a turn retried only if something woke it. Conditions are waited on, never wall-clock time.
"""

from __future__ import annotations

import asyncio
import math
from typing import List, Optional, Set

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import UserUttered

from connectors.conversations import RasaConversations
from connectors.output import WhatsAppOutput
from connectors.processing import InboundDispatcher
from connectors.send_keys import keyed_sender
from connectors.store import DONE, HANDED_OFF, WhatsAppStore
from tests.connector.support import text_message
from tests.connector.test_resilience import BOT_UNAVAILABLE, FakeClock, Meta
from tests.connector.test_unanswered_turns import ANSWERED, ScriptedRasa
from tests.connector.test_work_sharing import persist

pytestmark = pytest.mark.asyncio

FAILING = "919812345301"  # turns fail (Rasa raises) while `rig.failing_for` holds the customer or message
OTHER = "919812345302"
ANSWER = "Free returns within 14 days."


class GatedClock(FakeClock):
    """FakeClock whose pauses of `gate_from` seconds or more only end by being cancelled (woken)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate_from = math.inf
        self.waiting = 0
        self.cut_short: List[float] = []

    async def sleep(self, seconds: float) -> None:
        if seconds < self.gate_from:
            return await super().sleep(seconds)
        self.sleeps.append(seconds)
        self.waiting += 1
        try:
            await asyncio.get_running_loop().create_future()  # never resolved
        except asyncio.CancelledError:
            self.cut_short.append(seconds)
            raise
        finally:
            self.waiting -= 1


class Rig:
    def __init__(self, store: WhatsAppStore, budget: float = 300.0) -> None:
        self.store = store
        self.clock = GatedClock()
        self.meta = Meta()
        self.rasa = ScriptedRasa()
        self.rasa.next_turn = ANSWERED
        self.failing_for: Set[str] = set()
        self.handling: Set[str] = set()
        self.overlaps = 0  # two turns of one customer at once: must stay 0
        conversations = RasaConversations(self.rasa.app, self.on_new_message, BOT_UNAVAILABLE)
        self.dispatcher = InboundDispatcher(
            store, conversations, self.output_channel, input_channel_name="whatsapp",
            claim_ttl_seconds=30, sweep_interval_seconds=60, owner="test",
            retry_budget_seconds=budget, retry_first_pause_seconds=1.0,
            clock=self.clock, sleep=self.clock.sleep,
        )

    async def on_new_message(self, message: UserMessage) -> None:
        if message.sender_id in self.handling:
            self.overlaps += 1
        self.handling.add(message.sender_id)
        try:
            await asyncio.sleep(0)
            if {message.sender_id, message.message_id} & self.failing_for:
                raise ConnectionError("lock store unavailable")
            await self.rasa.on_new_message(message)
        finally:
            self.handling.discard(message.sender_id)

    def output_channel(self, turn_key: Optional[str] = None) -> WhatsAppOutput:
        return WhatsAppOutput(keyed_sender(self.meta, self.store, turn_key, settle_seconds=60))

    def writes(self, wa_id: str, *texts: str) -> List[str]:
        messages = [text_message(wa_id, text) for text in texts]
        persist(self.store, *messages)
        self.dispatcher.wake(wa_id)
        return [message["id"] for message in messages]

    async def until(self, condition, what: str) -> None:
        for _ in range(20_000):
            if condition():
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"never happened: {what}")

    async def settled(self, message_ids: List[str]) -> None:
        await self.until(lambda: all(self.state(m) not in ("pending", "processing") for m in message_ids),
                         f"messages {message_ids} finished")

    async def in_long_pause(self) -> None:
        await self.until(lambda: self.clock.waiting == 1, "a turn waiting out a long pause")

    def state(self, message_id: str) -> str:
        from sqlalchemy import select

        from connectors.store import inbound_messages

        with self.store.engine.connect() as connection:
            return connection.execute(
                select(inbound_messages.c.state).where(inbound_messages.c.message_id == message_id)
            ).scalar()

    async def user_texts(self, wa_id: str) -> List[str]:
        tracker = await self.rasa.agent.tracker_store.retrieve(wa_id)
        return [e.text for e in tracker.events if isinstance(e, UserUttered)] if tracker else []


async def make_rig(store_url: str, budget: float = 300.0) -> Rig:
    store = WhatsAppStore(store_url)
    store.create_schema()
    rig = Rig(store, budget)
    rig.dispatcher.start()
    return rig


@pytest.fixture
async def rig(store_url: str):
    rig = await make_rig(store_url)
    yield rig
    await rig.dispatcher.stop()
    rig.store.close()


async def test_a_turn_in_a_long_pause_is_retried_as_soon_as_another_customers_turn_succeeds(rig):
    rig.clock.gate_from = 16
    rig.failing_for.add(FAILING)
    ids = rig.writes(FAILING, "what is your return policy", "and for sale items?")
    await rig.in_long_pause()
    # Failures with no success in between: the doubling pauses exactly, the second message waiting.
    assert rig.clock.sleeps == [1, 2, 4, 8, 16]
    assert [rig.state(m) for m in ids] == ["processing", "pending"]

    rig.failing_for.clear()  # the dependency is back; nothing has proved it yet
    other = rig.writes(OTHER, "hi")
    await rig.settled(other + ids)

    assert rig.clock.cut_short == [16] and rig.clock.now == 15  # the 16 s pause was not slept out
    assert [rig.state(m) for m in other + ids] == [DONE, DONE, DONE]
    assert rig.meta.texts(FAILING) == [ANSWER, ANSWER] and rig.meta.texts(OTHER) == [ANSWER]
    # In order, each once, never two turns of one customer at a time.
    assert await rig.user_texts(FAILING) == ["what is your return policy", "and for sale items?"]
    assert rig.overlaps == 0


async def test_woken_retries_that_fail_again_keep_doubling_their_pause(rig):
    rig.clock.gate_from = 16
    rig.failing_for.add(FAILING)
    ids = rig.writes(FAILING, "where is my order 5176")
    await rig.in_long_pause()

    # Another customer is answered while this one's turn still fails: each success wakes it once,
    # and the failed retry goes on to the next pause of the doubling series, not back to 1 s.
    for woken, text in enumerate(("hi", "hello"), start=1):
        await rig.settled(rig.writes(OTHER, text))
        await rig.until(lambda: len(rig.clock.cut_short) == woken and rig.clock.waiting == 1,
                        "the woken retry paused again")
    assert rig.clock.sleeps == [1, 2, 4, 8, 16, 30, 30]
    assert rig.clock.cut_short == [16, 30]
    assert rig.state(ids[0]) == "processing"

    # The retried turn's own success ends its loop (nothing else is paused to wake).
    rig.failing_for.clear()
    await rig.settled(rig.writes(OTHER, "thanks"))
    await rig.settled(ids)
    assert rig.state(ids[0]) == DONE and rig.meta.texts(FAILING) == [ANSWER]
    assert rig.clock.sleeps == [1, 2, 4, 8, 16, 30, 30] and rig.clock.waiting == 0


async def test_woken_retries_spend_the_same_budget_and_end_in_the_same_hand_off(store_url):
    rig = await make_rig(store_url, budget=60)
    try:
        rig.clock.gate_from = 16
        ids = rig.writes(FAILING, "where is my order 5176", "hello??")
        rig.failing_for.add(ids[0])  # only the first message: the one behind it is fine
        await rig.in_long_pause()  # failed at 0, 1, 3, 7, 15 s

        await rig.settled(rig.writes(OTHER, "hi"))  # woken at 15 s: fails, 45 s of budget left
        await rig.until(lambda: rig.clock.cut_short == [16] and rig.clock.waiting == 1, "paused again")
        assert rig.clock.sleeps[-1] == 30 and rig.state(ids[0]) == "processing"

        rig.clock.now = 61  # the budget is spent; a success wakes the turn for its last try
        await rig.settled(rig.writes(OTHER, "hello"))
        await rig.settled(ids)

        assert rig.state(ids[0]) == HANDED_OFF
        assert rig.state(ids[1]) == DONE  # behind it, in order: reached Rasa after the hand-off
        assert rig.meta.texts(FAILING) == [BOT_UNAVAILABLE]
        assert rig.clock.sleeps == [1, 2, 4, 8, 16, 30] and rig.clock.waiting == 0
        assert await rig.user_texts(FAILING) == ["where is my order 5176", "hello??"]
        assert rig.overlaps == 0
    finally:
        await rig.dispatcher.stop()
        rig.store.close()


async def test_stopping_wakes_a_paused_turn_which_gives_its_message_back(store_url):
    rig = await make_rig(store_url)
    try:
        rig.clock.gate_from = 16
        rig.failing_for.add(FAILING)
        ids = rig.writes(FAILING, "where is my order 5176")
        await rig.in_long_pause()
        await rig.dispatcher.stop(grace_seconds=60)  # would wait the whole grace if not woken
        assert rig.clock.cut_short == [16]
        assert rig.state(ids[0]) == "pending"  # given back for another process (or a restart)
    finally:
        rig.store.close()
