"""The action server's side of contracts/handoff.yml: its reasons, priorities and hand-off events."""
from __future__ import annotations

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off, handoff_id_for
from actions.settings import PROJECT_ROOT, settings
from tests.actions.conftest import make_tracker, user_event

CONTRACT = yaml.safe_load((PROJECT_ROOT / "contracts" / "handoff.yml").read_text())
ACTION_REASONS = [name for name, reason in CONTRACT["reasons"].items() if reason["made_by"] == "actions"]


def test_every_reason_of_the_action_server_has_its_intro_in_escalation_yml():
    assert ACTION_REASONS == ["low_confidence", "customer_request", "topic", "unresolved_turns"]
    for reason in ACTION_REASONS:
        assert settings().intro(reason, "refund")


def test_topic_priorities_are_the_contract_ones():
    assert {route.priority for route in settings().topics.values()} <= set(CONTRACT["priorities"])


@pytest.mark.parametrize("reason", ACTION_REASONS)
async def test_a_hand_off_writes_the_contract_events_in_order(reason, monkeypatch):
    monkeypatch.delenv("INBOX_URL", raising=False)  # the inbox learns it from the event stream
    dispatcher = CollectingDispatcher()
    events = await hand_off(dispatcher, make_tracker([user_event("I want a refund", "request_refund")]), reason)
    written = ["bot"] * len(dispatcher.messages) + [
        {"slot": event["name"]} if event["event"] == "slot" else event["event"] for event in events
    ]
    assert written == CONTRACT["handoff_events"]
    details = next(e["value"] for e in events if e.get("name") == "handoff_details")
    assert set(CONTRACT["handoff_details_keys"]) <= set(details)
    assert next(e["value"] for e in events if e.get("name") == "escalation_reason") in CONTRACT["reasons"]
    assert details["priority"] in CONTRACT["priorities"]


def test_the_hand_off_id_of_a_message_is_the_contract_one():
    example = CONTRACT["handoff_id"]["example"]
    tracker = make_tracker([user_event(example["text"], "human_handoff", timestamp=example["timestamp"])],
                           sender_id=example["sender_id"])  # fmt: skip
    assert handoff_id_for(tracker) == example["handoff_id"]
