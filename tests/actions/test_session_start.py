"""actions/session.py: which slots a new session carries over (session 16). The whole session start in Rasa,
and the policies' view of it, is in tests/integration/test_session_start_events.py."""
from __future__ import annotations

from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet

from actions.session import ActionSessionStart, is_initial
from tests.actions.conftest import make_tracker, user_event

DOMAIN = {
    "session_config": {"carry_over_slots_to_new_session": True},
    "slots": {
        "bot_answer_count": {"type": "float", "initial_value": 0},
        "turn_limit_reached": {"type": "bool", "initial_value": False},
        "order_form_re_asks": {"type": "float", "initial_value": 0},
        "size": {"type": "text", "initial_value": None},
        "session_started_metadata": {"type": "any"},
    },
}


async def test_slots_at_their_initial_value_are_not_carried_over(dispatcher):
    metadata = {"whatsapp": {"wa_id": "919876543210", "message_id": "wamid.1"}}
    tracker = make_tracker([user_event("hi", "greet")],
                           slots={"order_form_re_asks": 0.0, "session_started_metadata": metadata, "size": None})
    events = await ActionSessionStart().run(dispatcher, tracker, DOMAIN)
    assert events == [SessionStarted(), SlotSet("session_started_metadata", metadata), ActionExecuted("action_listen")]


async def test_slots_away_from_their_initial_value_are_carried_over(dispatcher):
    tracker = make_tracker([user_event("hi", "greet")],
                           slots={"bot_answer_count": 2.0, "turn_limit_reached": True, "size": "M"})
    events = await ActionSessionStart().run(dispatcher, tracker, DOMAIN)
    assert SlotSet("bot_answer_count", 2.0) in events and SlotSet("turn_limit_reached", True) in events
    assert SlotSet("size", "M") in events


async def test_without_the_domains_slots_every_slot_with_a_value_is_carried_over(dispatcher):
    # e.g. with Rasa's selective domain the call may come without the domain: the session start of before
    tracker = make_tracker([user_event("hi", "greet")])
    events = await ActionSessionStart().run(dispatcher, tracker, {})
    assert SlotSet("bot_answer_count", 0.0) in events and SlotSet("turn_limit_reached", False) in events


def test_initial_means_the_same_value_of_the_same_kind():
    initial = {"count": 0, "flag": False, "tags": ["a"]}
    assert is_initial(0.0, "count", initial) and is_initial(0, "count", initial)
    assert is_initial(False, "flag", initial)
    assert not is_initial(False, "count", initial)  # a bool is not the number 0
    assert not is_initial(0, "flag", initial)
    assert not is_initial(1.0, "count", initial)
    assert not is_initial(["a"], "tags", initial)  # lists and dicts are always carried over
    assert not is_initial(0, "other", initial)
