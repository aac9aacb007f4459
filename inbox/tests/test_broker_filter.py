"""The cluster's RabbitMQ broker publishes only what its `publish_only` filter lets through
(deploy/cluster/endpoints.cluster.yml, connectors/event_filter.py); the inbox applies what
`RasaEventApplier.changes_anything` accepts. Every event the inbox applies must pass the filter, or the inbox
silently misses it: checked here on realistic turns' events and on every slot of the domain and of the hand-off
contract, with the filter built from the shipped endpoints file by the connector's own code (loaded from its
file: it needs no Rasa). A slot added to contracts/handoff.yml is in the hand-off turn below and must pass."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from inbox.services.event_stream import BrokerEvent, RasaEventApplier
from inbox.services.handoff_contract import HANDOFF_SLOTS
from inbox.services.order_numbers import ORDER_NUMBER_ENTITY
from inbox.services.rasa import RESUME_EVENTS
from inbox.settings import REPO_ROOT
from inbox.tests.rasa_events import bot_event, order_entities

ENDPOINTS = REPO_ROOT / "deploy" / "cluster" / "endpoints.cluster.yml"
CONTRACT = REPO_ROOT / "contracts" / "handoff.yml"
SENDER = "919800000042"
T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def connector_filter_module():
    spec = importlib.util.spec_from_file_location("kesar_event_filter", REPO_ROOT / "connectors" / "event_filter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FILTERS = connector_filter_module()


def shipped_filter():
    """The filter the cluster's Rasa builds from its endpoints file (the ${…} values do not matter to it)."""
    config = yaml.safe_load(ENDPOINTS.read_text(encoding="utf-8"))["event_broker"]
    return FILTERS.event_filter(config.get(FILTERS.OPTION), REPO_ROOT)


def applies(data: dict) -> bool:
    return RasaEventApplier.changes_anything(BrokerEvent(id=1, sender_id=SENDER, data={"sender_id": SENDER, **data}))


def stamped(events: list[dict], at: datetime) -> list[dict]:
    return [{"timestamp": (at + timedelta(milliseconds=10 * n)).timestamp(), **e} for n, e in enumerate(events)]


def user(text: str, order_numbers: tuple[str, ...] = ()) -> dict:
    return {
        "event": "user",
        "text": text,
        "parse_data": {
            "intent": {"name": "ask_question", "confidence": 0.9},
            "entities": order_entities(text, order_numbers),
            "text": text,
        },
        "input_channel": "whatsapp",
        "metadata": {"whatsapp": {"wa_id": SENDER, "profile_name": "Priya Sharma", "type": "text"}},
    }


def bot(text: str, **metadata) -> dict:
    return bot_event(text, metadata)


def action(name: str) -> dict:
    return {
        "event": "action",
        "name": name,
        "policy": None,
        "confidence": 1.0,
        "action_text": None,
        "hide_rule_turn": False,
    }


def slot(name: str, value) -> dict:
    return {"event": "slot", "name": name, "value": value}


def contract_handoff(bot_text: str, reason: str, details: dict) -> list[dict]:
    """The hand-off's events in the order contracts/handoff.yml lists them, whatever it lists."""
    values = {
        "escalation_reason": reason,
        "escalation_topic": "refund",
        "handoff_id": "hf_" + "0" * 32,
        "handoff_details": details,
    }
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    events = []
    for step in contract["handoff_events"]:
        if step == "bot":
            events.append(bot(bot_text, utter_action="utter_handoff"))
        elif step == "pause":
            events.append({"event": "pause"})
        else:
            events.append(slot(step["slot"], values.get(step["slot"], {"added": "to the contract"})))
    return events


DETAILS = {
    "tags": ["refund"],
    "priority": "high",
    "summary": "Refund",
    "order_numbers": ["#2812"],
    "delivered_to_inbox": True,
    "assignee": None,
}
TURNS = {
    # A new customer's first message, answered from the knowledge base (what the capacity benchmark sends).
    "new customer, knowledge-base answer": [
        action("action_session_start"),
        {"event": "session_started"},
        action("action_listen"),
        user("what is your return policy?"),
        {"event": "user_featurization", "use_text_for_featurization": False},
        action("action_answer_question"),
        bot("Returns are accepted within 7 days."),
        slot("kb_match", {"entry_id": "returns", "score": 0.8, "answered": True, "threshold": 0.55}),
        slot("bot_answer_count", 1.0),
        action("action_listen"),
    ],
    # The order form: the number from the entity, then the form's slot.
    "order status with a number": [
        user("where is my order 2840?", ("2840",)),
        {"event": "user_featurization", "use_text_for_featurization": False},
        action("order_form"),
        {"event": "active_loop", "name": "order_form"},
        slot(ORDER_NUMBER_ENTITY, "2840"),
        slot("requested_slot", None),
        {"event": "active_loop", "name": None},
        action("action_order_status"),
        bot("Order #2840 left our warehouse yesterday."),
        slot("order_form_re_asks", 0.0),
        action("action_listen"),
    ],
    # A hand-off by the action server: its bot message, the contract's slots, the pause.
    "hand-off by the bot": [
        user("I want my money back, this is the second time"),
        {"event": "user_featurization", "use_text_for_featurization": False},
        action("action_handoff"),
        *contract_handoff("I'm bringing in Anita; she will reply within 2 hours.", "customer_request", DETAILS),
        slot("kb_match", None),
        slot("bot_answer_count", 0.0),
    ],
    # The connector's hand-off when the action server is down (actions/CONTRACT.md).
    "hand-off by the connector": [
        user("hello?"),
        *contract_handoff(
            "Sorry, I can't answer right now; a colleague will reply soon.",
            "bot_unavailable",
            {
                "tags": ["bot_unavailable"],
                "priority": "high",
                "summary": "Bot error",
                "delivered_to_inbox": False,
                "failed_actions": ["action_answer_question"],
            },
        ),
    ],
    # While an agent has the conversation: a new session is paused again, the customer's messages still arrive.
    "agent has it: new session and a message": [
        action("action_session_start"),
        {"event": "session_started"},
        {"event": "pause"},
        action("action_listen"),
        user("any news on my refund?"),
    ],
    # The agent resolves: the inbox's own events to Rasa (services/rasa.py), then the bot answers again.
    "agent hands back": [
        *RESUME_EVENTS,
        user("thanks!"),
        action("utter_thanks"),
        bot("You're welcome!"),
        action("action_listen"),
    ],
}


@pytest.mark.parametrize("name", TURNS)
def test_the_broker_filter_lets_through_every_event_the_inbox_applies(name):
    events = stamped(TURNS[name], T0)
    published = shipped_filter()
    missed = [event for event in events if applies(event) and not published.lets_through(event)]
    assert missed == []
    assert any(applies(event) for event in events)  # the turn means something to the inbox


def test_most_of_a_knowledge_base_answer_is_not_published():
    published = shipped_filter()
    events = stamped(TURNS["new customer, knowledge-base answer"], T0)
    assert [e["event"] for e in events if published.lets_through(e)] == ["user", "bot", "slot"]
    assert sum(published.lets_through(e) for e in events) == 3 and len(events) == 10


def test_every_slot_the_inbox_keeps_passes_the_filter():
    """Any slot of the domain or the contract, with a value the inbox would keep (a dict, as kb_match's)."""
    domain = yaml.safe_load((REPO_ROOT / "domain.yml").read_text(encoding="utf-8"))
    names = set(domain["slots"]) | set(HANDOFF_SLOTS) | {e["name"] for e in RESUME_EVENTS if e["event"] == "slot"}
    published = shipped_filter()
    for name in sorted(names):
        event = stamped([slot(name, {"entry_id": "returns"})], T0)[0]
        assert published.lets_through(event) or not applies(event), name


def test_every_kind_the_inbox_applies_passes_the_filter():
    published = shipped_filter()
    for kind in sorted(FILTERS.RASA_EVENT_KINDS):
        event = stamped([{"event": kind, "text": "hello", "name": ORDER_NUMBER_ENTITY, "value": "2840"}], T0)[0]
        assert published.lets_through(event) or not applies(event), kind


def test_a_slot_added_to_the_contract_is_published_without_another_edit(tmp_path):
    """The filter reads the hand-off's slots from the contract file the endpoints name, not from a copy."""
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    contract["handoff_events"].insert(-1, {"slot": "handoff_language"})
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "handoff.yml").write_text(yaml.safe_dump(contract), encoding="utf-8")
    config = yaml.safe_load(ENDPOINTS.read_text(encoding="utf-8"))["event_broker"][FILTERS.OPTION]
    assert config["handoff_slots_from"] == "contracts/handoff.yml"
    widened = FILTERS.event_filter(config, tmp_path)
    assert widened.lets_through({"event": "slot", "name": "handoff_language", "value": "hi"})
    assert not shipped_filter().lets_through({"event": "slot", "name": "handoff_language", "value": "hi"})
