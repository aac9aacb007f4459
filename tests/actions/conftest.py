"""Tracker fixtures for action tests: build rasa-sdk Trackers the way Rasa sends them."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge_base import KnowledgeBase
from actions.settings import settings


def user_event(
    text: str,
    intent: str,
    confidence: float = 0.95,
    entities: Optional[List[Dict[str, Any]]] = None,
    metadata: Optional[Dict[str, Any]] = None,
    timestamp: Optional[float] = None,
) -> Dict[str, Any]:
    parse_data = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
    }
    return {
        "event": "user",
        "timestamp": timestamp or time.time(),
        "text": text,
        "parse_data": parse_data,
        "input_channel": "whatsapp" if metadata else "rest",
        "metadata": metadata or {},
    }


def bot_event(text: str) -> Dict[str, Any]:
    return {"event": "bot", "timestamp": time.time(), "text": text, "data": {}, "metadata": {}}


def whatsapp_metadata(wa_id: str = "919876543210", name: str = "Priya Sharma") -> Dict[str, Any]:
    return {
        "whatsapp": {
            "wa_id": wa_id,
            "profile_name": name,
            "phone_number_id": "106540352242922",
            "message_id": f"wamid.{wa_id}.{time.time_ns()}",
            "type": "text",
            "timestamp": str(int(time.time())),
        }
    }


def make_tracker(
    events: List[Dict[str, Any]],
    slots: Optional[Dict[str, Any]] = None,
    sender_id: str = "919876543210",
    paused: bool = False,
    active_loop: Optional[str] = None,
) -> Tracker:
    latest = next((e["parse_data"] for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(
        sender_id=sender_id,
        slots={"bot_answer_count": 0.0, "turn_limit_reached": False, **(slots or {})},
        latest_message=latest,
        events=events,
        paused=paused,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The real knowledge base with the real encoder (loaded once for the session)."""
    from actions import answers

    return answers.knowledge_base()


def slots_of(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """{slot: value} of an action's events."""
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.fixture
async def inbox(monkeypatch):
    """A fake inbox the hand-off reaches (INBOX_URL and its token set for the test)."""
    from tests.actions.fake_inbox import FakeInbox

    server = await FakeInbox().start()
    monkeypatch.setenv("INBOX_URL", server.url)
    monkeypatch.setenv("INBOX_BOT_TOKEN", server.token)
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
def no_inbox_by_default(monkeypatch):
    """Tests opt in to an inbox; by default INBOX_URL is unset (event-stream-only hand-off)."""
    monkeypatch.delenv("INBOX_URL", raising=False)
    monkeypatch.delenv("INBOX_BOT_TOKEN", raising=False)


@pytest.fixture
def config():
    return settings()
