"""The SQL tracker store publishes the same events, in the same order, with the counted event streaming
(connectors/rasa_speedups.py) as Rasa 3.6 ships it: one conversation over several turns and two sessions."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from connectors import rasa_speedups

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [ask_question]
slots:
  kb_match:
    type: any
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: hi}]
""")


class RecordingBroker(EventBroker):
    def __init__(self) -> None:
        self.published: List[Dict[str, Any]] = []

    def publish(self, event: Dict[str, Any]) -> None:
        self.published.append(event)


def turn(n: int, at: float) -> list:
    return [
        UserUttered(f"question {n}", {"name": "ask_question", "confidence": 0.9}, timestamp=at),
        ActionExecuted("action_answer_question", timestamp=at + 0.1),
        SlotSet("kb_match", {"entry_id": "returns", "score": 0.8}, timestamp=at + 0.2),
        BotUttered(f"answer {n}", timestamp=at + 0.3),
        ActionExecuted("action_listen", timestamp=at + 0.4),
    ]


def conversation(store: SQLTrackerStore, sender: str) -> None:
    """Saves the tracker after each turn, as Rasa does; a new session starts halfway."""
    async def run() -> None:
        tracker = DialogueStateTracker(sender, DOMAIN.slots)
        steps = [
            [ActionExecuted("action_session_start", timestamp=1.0), SessionStarted(timestamp=1.0),
             ActionExecuted("action_listen", timestamp=1.0)],
            turn(1, 2.0), turn(2, 3.0), [],  # a save without new events publishes nothing
            [ActionExecuted("action_session_start", timestamp=10.0), SessionStarted(timestamp=10.0),
             ActionExecuted("action_listen", timestamp=10.0)],
            turn(3, 11.0),
        ]
        for index, events in enumerate(steps):
            for event in events:
                tracker.update(event)
            await store.save(tracker)
            if index == 4:  # the new session's tracker: its events only
                tracker = await store.retrieve(sender)
    asyncio.run(run())


def store_at(tmp_path, name: str) -> SQLTrackerStore:
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / f"{name}.db"),
                            event_broker=RecordingBroker())
    return store


@pytest.fixture
def shipped_stream(monkeypatch):
    monkeypatch.setattr(SQLTrackerStore, "stream_events", SQLTrackerStore.stream_events)
    monkeypatch.setattr(SQLTrackerStore, rasa_speedups._INSTALLED_FLAG, False, raising=False)
    return SQLTrackerStore.stream_events


def test_the_same_events_are_published_in_the_same_order(tmp_path, shipped_stream, monkeypatch):
    shipped = store_at(tmp_path, "shipped")
    conversation(shipped, "customer-1")

    rasa_speedups.install_counted_sql_event_streaming()
    assert SQLTrackerStore.stream_events is not shipped_stream
    counted = store_at(tmp_path, "counted")
    loads: List[str] = []
    monkeypatch.setattr(SQLTrackerStore, "retrieve", lambda self, sender: loads.append(sender) or shipped_retrieve(
        self, sender))
    conversation(counted, "customer-1")

    published = counted.event_broker.published
    assert published == shipped.event_broker.published
    assert [event["event"] for event in published].count("user") == 3
    assert len(published) == 3 + 5 + 5 + 3 + 5
    assert loads == ["customer-1"]  # only Rasa's own load at the new session; none to find the new events


shipped_retrieve = SQLTrackerStore.retrieve


def test_with_an_empty_domain_rasa_runs_as_shipped(tmp_path, shipped_stream):
    """Rasa's retrieve gives no tracker without a domain, so every save publishes the whole session again."""
    def published(name: str) -> list:
        store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / f"{name}.db"),
                                event_broker=RecordingBroker())
        conversation(store, "customer-2")
        return store.event_broker.published

    shipped = published("shipped")
    rasa_speedups.install_counted_sql_event_streaming()
    assert published("counted") == shipped
