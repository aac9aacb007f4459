"""A turn the bot neither answers nor hands off (action server down) gets an honest reply and a
hand-off. Real Rasa tracker store, lock store and domain; only the NLU/policy turn is scripted."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from typing import List

import pytest
import yaml
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    Event,
    Restarted,
    SlotSet,
    UserUttered,
)

from connectors.conversations import RasaConversations
from connectors.handoff_contract import PROJECT_ROOT, bot_unavailable_message
from connectors.output import WhatsAppOutput
from connectors.unanswered_turns import find_unanswered_turn, handoff_events

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
CUSTOMER = "919800000001"


def user(text: str, message_id: str) -> UserUttered:
    return UserUttered(text, intent={"name": "ask_question", "confidence": 0.9}, message_id=message_id)


class ScriptedRasa:
    """Plays Rasa's part of a turn: records the user message, then what the script says."""

    def __init__(self) -> None:
        self.agent = SimpleNamespace(
            lock_store=InMemoryLockStore(),
            tracker_store=InMemoryTrackerStore(DOMAIN),
            domain=DOMAIN,
            is_ready=lambda: True,
        )
        self.app = SimpleNamespace(ctx=SimpleNamespace(agent=self.agent))
        self.next_turn: List[Event] = []

    async def on_new_message(self, message: UserMessage) -> None:
        store = self.agent.tracker_store
        tracker = await store.get_or_create_tracker(message.sender_id)
        events: List[Event] = [user(message.text, message.message_id)]
        turn = [] if tracker.is_paused() else self.next_turn  # a paused conversation: Rasa says nothing
        tracker.update_with_events(events + turn, DOMAIN)
        for event in turn:
            if isinstance(event, BotUttered):
                await message.output_channel.send_text_message(message.sender_id, event.text)
        await store.save(tracker)


ACTION_SERVER_DOWN = [ActionExecuted("action_answer_question"), ActionExecuted("action_listen")]
ANSWERED = [ActionExecuted("action_answer_question"), BotUttered("Free returns within 14 days."),
            ActionExecuted("action_listen")]


@pytest.fixture
def rasa() -> ScriptedRasa:
    return ScriptedRasa()


@pytest.fixture
def conversations(rasa: ScriptedRasa) -> RasaConversations:
    return RasaConversations(rasa.app, rasa.on_new_message)


async def say(conversations: RasaConversations, text: str, message_id: str) -> CollectingOutputChannel:
    channel = CollectingOutputChannel()
    await conversations.deliver(
        UserMessage(text, channel, sender_id="919800000001", input_channel="whatsapp", message_id=message_id)
    )
    return channel


def texts(channel: CollectingOutputChannel) -> List[str]:
    return [message["text"] for message in channel.messages]


async def test_silent_turn_gets_honest_reply_and_is_handed_off(rasa, conversations):
    rasa.next_turn = ACTION_SERVER_DOWN
    channel = await say(conversations, "what is your return policy", "wamid.1")

    expected = bot_unavailable_message()
    assert texts(channel) == [expected]
    designer = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text())
    assert "technical problem" in expected and designer["inbox"]["default_eta_text"] in expected
    tracker = await rasa.agent.tracker_store.retrieve("919800000001")
    assert tracker.is_paused()
    assert tracker.get_slot("escalation_reason") == "bot_unavailable"
    assert tracker.get_slot("handoff_id")
    details = tracker.get_slot("handoff_details")
    assert details["priority"] == "high" and details["tags"] == ["bot_unavailable"]
    assert "what is your return policy" in details["summary"]
    assert details["failed_actions"] == ["action_answer_question"]
    # The contract's order: what the customer read, the hand-off slots, then the pause.
    tail = [type(event) for event in tracker.events][-6:]
    assert tail == [BotUttered, SlotSet, SlotSet, SlotSet, SlotSet, ConversationPaused]


async def test_after_the_handoff_further_messages_stay_with_the_humans(rasa, conversations):
    rasa.next_turn = ACTION_SERVER_DOWN
    await say(conversations, "hello?", "wamid.1")
    second = await say(conversations, "anyone there??", "wamid.2")

    assert texts(second) == []
    tracker = await rasa.agent.tracker_store.retrieve("919800000001")
    assert sum(isinstance(event, ConversationPaused) for event in tracker.events) == 1


async def test_answered_turn_is_left_alone(rasa, conversations):
    rasa.next_turn = ANSWERED
    channel = await say(conversations, "what is your return policy", "wamid.1")

    assert texts(channel) == ["Free returns within 14 days."]
    tracker = await rasa.agent.tracker_store.retrieve("919800000001")
    assert not tracker.is_paused()
    assert tracker.get_slot("escalation_reason") is None


def test_a_regular_handoff_is_not_an_unanswered_turn():
    events = [user("refund please", "m1"), ActionExecuted("action_handoff"), ConversationPaused()]
    assert find_unanswered_turn(events, "m1", paused=True, sender_id=CUSTOMER) is None


def test_only_the_turn_of_this_message_is_judged():
    events = [
        user("first", "m1"), ActionExecuted("action_listen"),
        user("second", "m2"), ActionExecuted("action_answer_question"), BotUttered("answer"),
    ]
    # m1 was followed by another message before any reply: judged on its own turn, not here.
    assert find_unanswered_turn(events, "m1", paused=False, sender_id=CUSTOMER) is None
    assert find_unanswered_turn(events, "m2", paused=False, sender_id=CUSTOMER) is None
    assert find_unanswered_turn(events, "unknown", paused=False, sender_id=CUSTOMER) is None


def test_a_restart_the_customer_asked_for_is_not_a_failure():
    events = [user("/restart", "m1"), ActionExecuted("action_restart"), Restarted(),
              ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
    assert find_unanswered_turn(events, "m1", paused=False, sender_id=CUSTOMER) is None


def test_unanswered_turn_lists_what_rasa_tried():
    events = [user("where is my order", "m1"), ActionExecuted("order_status_form"),
              ActionExecuted("action_handoff"), ActionExecuted("action_listen")]
    turn = find_unanswered_turn(events, "m1", paused=False, sender_id=CUSTOMER)
    assert turn is not None
    assert turn.user_text == "where is my order"
    assert turn.failed_actions == ["order_status_form", "action_handoff"]


def test_the_hand_off_after_a_failed_action_carries_the_id_the_actions_hand_off_had():
    """action_handoff may reach the inbox and die before answering Rasa; the connector's hand-off for the
    same message then has the same id, so the inbox keeps one hand-off, not two (a chaos run counted two)."""
    from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
    from rasa_sdk import Tracker

    from actions.handoff import handoff_id_for

    events = [user("I want to talk to a person", "m1"), ActionExecuted("action_handoff")]
    turn = find_unanswered_turn(events, "m1", paused=False, sender_id=CUSTOMER)
    hand_off = {event.key: event.value for event in handoff_events(turn, "Sorry", active_loop=None)
                if isinstance(event, SlotSet)}  # fmt: skip
    # What the action server got for that turn: Rasa's tracker as JSON, read by rasa_sdk.
    state = DialogueStateTracker.from_events(CUSTOMER, events[:1]).current_state(EventVerbosity.ALL)
    state = json.loads(json.dumps(state))
    action_tracker = Tracker.from_dict(state)
    assert hand_off["handoff_id"] == handoff_id_for(action_tracker)
    # Another message gets another id.
    other = find_unanswered_turn([user("hello?", "m2"), ActionExecuted("action_handoff")], "m2", paused=False,
                                 sender_id=CUSTOMER)  # fmt: skip
    assert other.handoff_id != turn.handoff_id


def test_missing_designer_message_fails_at_start_up(tmp_path, monkeypatch):
    document = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text())
    broken = copy.deepcopy(document)
    del broken["messages"]["bot_unavailable"]
    (tmp_path / "escalation.yml").write_text(yaml.safe_dump(broken, allow_unicode=True))
    monkeypatch.setenv("ESCALATION_SETTINGS", str(tmp_path / "escalation.yml"))  # like the actions and the NLU
    with pytest.raises(ValueError, match="messages.bot_unavailable"):
        RasaConversations(app=SimpleNamespace(ctx=SimpleNamespace()), on_new_message=None)


async def test_a_turn_that_sent_a_reply_is_not_looked_up_at_all():
    class RecordingSender:
        def __init__(self):
            self.sent = []

        async def send(self, recipient_id, message):
            self.sent.append((recipient_id, message))

    sender = RecordingSender()
    channel = WhatsAppOutput(sender)
    await channel.send_text_message("919800000001", "Free returns within 14 days.")
    assert channel.messages_sent == 1 and len(sender.sent) == 1
    no_rasa = SimpleNamespace(ctx=SimpleNamespace(agent=None))  # reading the tracker would fail
    conversations = RasaConversations(no_rasa, on_new_message=None, bot_unavailable_text="unused")
    message = UserMessage("returns?", channel, sender_id="919800000001", message_id="wamid.9")
    assert await conversations.hand_off_if_unanswered(message) is False
    assert len(sender.sent) == 1
