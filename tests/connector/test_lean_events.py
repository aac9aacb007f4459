"""The NLU's `text_embedding` (components/text_embedding.py, ~2.2 kB per user event) is needed within its turn only:
the project's tracker store writes, and its RabbitMQ brokers publish, user events without it
(connectors/event_filter.py `lean_event`), while the tracker Rasa holds during the turn keeps it."""
from __future__ import annotations

import asyncio
import json

import numpy as np
from rasa.core.brokers.pika import PikaEventBroker
from rasa.shared.core.events import UserUttered

from components import text_embedding
from connectors.event_filter import EventFilter, lean_event
from connectors.pika_broker import FilteringPikaEventBroker, RetryingPikaEventBroker
from tests.connector.test_postgres_tracker_store import ours, postgres, session_start  # noqa: F401 (fixture)
from tests.connector.test_sql_event_streaming import RecordingBroker

SENDER = "919812345212"
CARRIED = text_embedding.carried_value("what is your return policy?", "all-MiniLM-L6-v2:0123456789abcdef0123",
                                       np.full(384, 384 ** -0.5, dtype=np.float32))


def parse_data() -> dict:
    return {"intent": {"name": "ask_question", "confidence": 0.97}, "entities": [], "text": "what is your return policy?",
            "question": "what is your return policy?", text_embedding.KEY: CARRIED}


def user_event() -> dict:
    return {"sender_id": SENDER, "event": "user", "timestamp": 1764600000.0, "text": "what is your return policy?",
            "parse_data": parse_data(), "metadata": {}}


def without_vector(event: dict) -> dict:
    return {**event, "parse_data": {k: v for k, v in event["parse_data"].items() if k != text_embedding.KEY}}


def test_lean_event_drops_only_the_vector_and_leaves_the_tracker_event_alone():
    event = user_event()
    lean = lean_event(event)
    assert lean == without_vector(event)
    assert text_embedding.KEY in event["parse_data"]  # a copy: the turn's own event keeps it
    bot = {"event": "bot", "text": "hi", "data": {}}
    assert lean_event(bot) is bot and lean_event(lean) is lean  # nothing to drop: no copy


def test_the_tracker_store_row_and_the_published_event_of_a_user_event_have_no_vector(postgres):  # noqa: F811
    store = ours(postgres.database("ts_lean"), RecordingBroker())

    async def turn() -> UserUttered:
        tracker = await store.get_or_create_tracker(SENDER, append_action_listen=False)
        for event in session_start(1764600000.0):
            tracker.update(event)
        message = UserUttered("what is your return policy?", parse_data()["intent"], [], parse_data=parse_data(),
                              timestamp=1764600001.0)
        tracker.update(message)
        await store.save(tracker)
        return message

    message = asyncio.run(turn())
    assert message.parse_data[text_embedding.KEY] == CARRIED  # the turn's tracker had it
    [(data,)] = [row[-1:] for row in postgres.rows("ts_lean") if row[2] == "user"]
    stored = json.loads(data)
    assert text_embedding.KEY not in stored["parse_data"]
    assert stored["parse_data"]["question"] == "what is your return policy?" and stored["text"] == message.text
    assert CARRIED["vector"][:40] not in data
    [published] = [event for event in store.event_broker.published if event["event"] == "user"]
    assert text_embedding.KEY not in published["parse_data"]
    tracker = asyncio.run(store.retrieve(SENDER))
    assert text_embedding.KEY not in tracker.latest_message.parse_data
    store.close()


async def test_the_retrying_broker_publishes_user_events_without_the_vector():
    # Never connected: the event is kept as the bytes that will be sent.
    broker = RetryingPikaEventBroker("127.0.0.1", "kesar", "secret", queues=["q"], retry_interval_seconds=3600,
                                     close_timeout_seconds=0.1)
    event = user_event()
    broker.publish(event)
    [kept] = broker._pending[SENDER]
    assert json.loads(kept.body) == without_vector(event)
    assert text_embedding.KEY in event["parse_data"]
    await broker.close()  # RabbitMQ was never there: the kept event dies with the broker (logged)


async def test_rasas_own_broker_with_the_filter_publishes_user_events_without_the_vector(monkeypatch):
    published = []
    monkeypatch.setattr(PikaEventBroker, "publish", lambda self, event, headers=None: published.append(event))
    broker = FilteringPikaEventBroker("127.0.0.1", "kesar", "secret", queues=["q"],
                                      event_filter=EventFilter(frozenset({"user"}), None))
    broker.publish(user_event())
    assert published == [without_vector(user_event())]
