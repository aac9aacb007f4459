"""What a session start writes, and that the policies see the same conversation without the slots it no
longer writes (session 16, bench/README_cluster.md "per-message events").

`actions/session.py` used to carry over every slot with a value, including the four still at their domain
`initial_value` (`bot_answer_count` 0, `turn_limit_reached` false, `order_form_let_go` false,
`order_form_re_asks` 0): four SlotSets per new customer that changed nothing, since `SessionStarted` resets
every slot to its initial value. Runs the trained model in-process with the real action server.
"""
from __future__ import annotations

import uuid
from typing import List

import pytest
import pytest_asyncio
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.constants import SESSION_START_METADATA_SLOT
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from tests.integration.conftest import load_agent

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

INITIAL = {"bot_answer_count": 0, "turn_limit_reached": False, "order_form_let_go": False, "order_form_re_asks": 0}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent(action_server_url):
    return load_agent(action_endpoint=EndpointConfig(url=action_server_url))


def metadata(sender: str, message_id: str) -> dict:
    """The shape of connectors/inbound.py's rasa_metadata()."""
    return {"whatsapp": {"wa_id": sender, "user_id": None, "username": None, "profile_name": "Asha",
                         "phone_number_id": "1234", "message_id": message_id, "type": "text",
                         "timestamp": "1764730000"}}


async def say(agent, sender: str, text: str, message_id: str) -> List[str]:
    message = UserMessage(text, sender_id=sender, metadata=metadata(sender, message_id))
    return [m.get("text") for m in await agent.handle_message(message) or []]


def session_start(events: List[Event]) -> List[Event]:
    """The events from the last `action_session_start` up to the first user message after it."""
    start = max(i for i, e in enumerate(events) if isinstance(e, ActionExecuted)
                and e.action_name == "action_session_start")
    end = next(i for i in range(start, len(events)) if isinstance(events[i], UserUttered))
    return events[start:end]


def with_initial_slot_sets(events: List[Event]) -> List[Event]:
    """The same events as the session start wrote them before session 16: the initial values carried over
    right after `SessionStarted`."""
    out: List[Event] = []
    for event in events:
        out.append(event)
        if isinstance(event, SessionStarted):
            out += [SlotSet(name, float(value) if isinstance(value, int) and not isinstance(value, bool) else value)
                    for name, value in INITIAL.items()]
    return out


def prediction_points(events: List[Event]) -> List[int]:
    """Where Rasa predicts the next action: after each user message and each action other than listening."""
    return [i + 1 for i, e in enumerate(events)
            if isinstance(e, UserUttered)
            or (isinstance(e, ActionExecuted) and e.action_name not in ("action_listen", "action_session_start"))]


async def test_a_new_customers_session_start_carries_the_metadata_and_nothing_at_its_initial_value(agent):
    sender = f"91{uuid.uuid4().int % 10**10:010d}"
    replies = await say(agent, sender, "what is your return policy?", "wamid.1")
    assert replies and replies[0]
    tracker = await agent.tracker_store.retrieve(sender)
    events = list(tracker.events)
    # Rasa's own SlotSet of the first message's metadata, just before the session start runs
    first_metadata = next(e for e in events if isinstance(e, SlotSet))
    assert first_metadata.key == SESSION_START_METADATA_SLOT and first_metadata.value == metadata(sender, "wamid.1")
    start = session_start(events)
    assert [type(e).__name__ for e in start] == ["ActionExecuted", "SessionStarted", "SlotSet", "ActionExecuted"]
    assert start[2] == SlotSet(SESSION_START_METADATA_SLOT, metadata(sender, "wamid.1"))
    assert not [e for e in start if isinstance(e, SlotSet) and e.key in INITIAL]
    # ... and yet the slots hold their values in the session, and the answer counted
    assert tracker.get_slot(SESSION_START_METADATA_SLOT) == metadata(sender, "wamid.1")
    assert tracker.get_slot("turn_limit_reached") is False and tracker.get_slot("order_form_let_go") is False
    assert tracker.get_slot("order_form_re_asks") == 0
    assert tracker.get_slot("bot_answer_count") == 1.0


async def test_a_later_session_carries_what_was_set_and_the_new_metadata(agent):
    sender = f"91{uuid.uuid4().int % 10**10:010d}"
    assert await say(agent, sender, "what is your return policy?", "wamid.1")
    tracker = await agent.tracker_store.retrieve(sender)
    for event in tracker.events:  # an hour and more of silence: session_expiration_time is 60 minutes
        event.timestamp -= 2 * 60 * 60
    await agent.tracker_store.save(tracker)
    assert await say(agent, sender, "how long does delivery take?", "wamid.2")
    tracker = await agent.tracker_store.retrieve(sender)
    start = session_start(list(tracker.events))
    carried = {e.key: e.value for e in start if isinstance(e, SlotSet)}
    assert carried[SESSION_START_METADATA_SLOT] == metadata(sender, "wamid.2")
    assert carried["bot_answer_count"] == 1.0  # not its initial value: carried over
    assert not set(carried) & (set(INITIAL) - {"bot_answer_count"})
    assert tracker.get_slot("bot_answer_count") == 2.0  # counting went on across the sessions
    assert tracker.get_slot(SESSION_START_METADATA_SLOT) == metadata(sender, "wamid.2")


@pytest.mark.parametrize("texts", [
    ["what is your return policy?", "ok", "how long does delivery take?", "and cod?", "hmm"],
    ["where is my order", "2840", "thanks!"],
    ["hi", "agent please"],
])
async def test_the_policies_see_the_same_conversation_without_the_initial_slot_sets(agent, texts):
    """Every prediction of the trained policies (probabilities of every action) along a real conversation is
    the same on the tracker as written now and on the same tracker with the old session start's four
    SlotSets put back; so are the slot values at every step."""
    sender = f"91{uuid.uuid4().int % 10**10:010d}"
    for n, text in enumerate(texts):
        await say(agent, sender, text, f"wamid.{n}")
    events = list((await agent.tracker_store.retrieve(sender)).events)
    old = with_initial_slot_sets(events)
    assert len(old) == len(events) + 4
    slots = agent.domain.slots
    compared = 0
    for point in prediction_points(events):
        now = DialogueStateTracker.from_events(sender, events[:point], slots)
        before = DialogueStateTracker.from_events(sender, with_initial_slot_sets(events[:point]), slots)
        assert now.current_slot_values() == before.current_slot_values()
        assert now.past_states(agent.domain) == before.past_states(agent.domain)
        predicted_now = agent.processor._predict_next_with_tracker(now)
        predicted_before = agent.processor._predict_next_with_tracker(before)
        assert predicted_now.probabilities == predicted_before.probabilities
        assert predicted_now.policy_name == predicted_before.policy_name
        compared += 1
    assert compared >= 2 * len(texts)
