"""After a hand-off the bot stays silent — across session expiry — until the inbox resumes it.

Runs the trained model in-process with the real action server, so the hand-off action really pauses
the conversation and Rasa's processor really skips prediction. (Rasa's story format has no pause
event, so `rasa test` cannot show this.)
"""
from __future__ import annotations

import uuid

import pytest
import pytest_asyncio
from rasa.shared.core.events import ActionExecuted, ConversationResumed, SessionStarted, SlotSet
from rasa.utils.endpoints import EndpointConfig

from tests.integration.conftest import load_agent, say

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent(action_server_url):
    return load_agent(action_endpoint=EndpointConfig(url=action_server_url))


async def age_conversation(agent, sender, seconds):
    """Pretend the conversation happened `seconds` ago (what an idle customer looks like)."""
    tracker = await agent.tracker_store.retrieve(sender)
    for event in tracker.events:
        event.timestamp -= seconds
    await agent.tracker_store.save(tracker)


async def resume_like_the_inbox(agent, sender):
    """The event list of actions/CONTRACT.md, applied as Rasa's HTTP API does."""
    tracker = await agent.processor.fetch_tracker_with_initial_session(sender)
    tracker.update_with_events(
        [
            ConversationResumed(),
            SlotSet("escalation_reason", None),
            SlotSet("escalation_topic", None),
            SlotSet("handoff_id", None),
            SlotSet("handoff_details", None),
            SlotSet("bot_answer_count", 0),
            SlotSet("turn_limit_reached", False),
            ActionExecuted("action_listen"),
        ],
        agent.domain,
    )
    await agent.tracker_store.save(tracker)


async def test_bot_is_silent_after_a_handoff_and_answers_again_after_resume(agent):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    [handoff_message] = await say(agent, sender, "agent please")
    assert "reply" in handoff_message and "transferring" not in handoff_message.lower()

    assert await say(agent, sender, "hello? anyone there") == []
    assert await say(agent, sender, "what is your return policy") == []
    tracker = await agent.tracker_store.retrieve(sender)
    assert tracker.is_paused()
    assert tracker.get_slot("escalation_reason") == "customer_request"
    # The customer's messages are still recorded for the agent.
    assert [e.text for e in tracker.events if e.type_name == "user"][-1] == "what is your return policy"

    await resume_like_the_inbox(agent, sender)
    replies = await say(agent, sender, "hi")
    assert replies and "Kesar Lane" in replies[0]


async def test_paused_conversation_stays_paused_after_session_expiry(agent):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    await say(agent, sender, "I want a refund for #2812")
    await age_conversation(agent, sender, seconds=3 * 60 * 60)  # session_expiration_time is 60 minutes

    assert await say(agent, sender, "hello, any update on my refund?") == []
    tracker = await agent.tracker_store.retrieve(sender)
    assert any(isinstance(e, SessionStarted) for e in tracker.events), "a new session should have started"
    assert tracker.is_paused()
    assert tracker.get_slot("escalation_topic") == "refund"


async def test_unpaused_conversation_starts_a_fresh_session_normally(agent):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    assert await say(agent, sender, "hi")
    await age_conversation(agent, sender, seconds=3 * 60 * 60)
    assert await say(agent, sender, "hello")


async def test_order_number_is_confirmed_once_normalised(agent):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    replies = await say(agent, sender, "where is my order #2840?")
    assert any("noted order #2840." in r for r in replies), replies
    tracker = await agent.tracker_store.retrieve(sender)
    assert tracker.get_slot("order_number") == "#2840"


async def test_order_form_accepts_a_bare_number(agent):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    [question] = await say(agent, sender, "mera order kab aayega")
    assert "order number" in question
    replies = await say(agent, sender, "2791")
    assert any("noted order #2791." in r for r in replies), replies
