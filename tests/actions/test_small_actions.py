"""Resolution counting, order numbers, marketing consent and the paused session start."""
from __future__ import annotations

import pytest
from rasa_sdk.events import ActionExecuted, ConversationPaused, SessionStarted, SlotSet

from actions.consent import ActionUpdateMarketingConsent
from actions.conversation import normalize_order_number
from actions.orders import ActionAnswerOrderStatus, ActionAskOrderNumber, ValidateOrderStatusForm
from actions.resolution import ActionCountAnswer, ActionMarkResolved
from actions.session import ActionSessionStart
from tests.actions.conftest import make_tracker, user_event


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def test_counting_answers_reaches_the_limit_from_escalation_yml(dispatcher, config):
    count = 0.0
    for answer in range(1, config.turn_limit + 1):
        events = await ActionCountAnswer().run(
            dispatcher, make_tracker([user_event("no", "deny")], slots={"bot_answer_count": count}), {}
        )
        count = slots_of(events)["bot_answer_count"]
        assert count == answer
        assert slots_of(events).get("turn_limit_reached", False) is (answer >= config.turn_limit)


async def test_resolution_resets_the_count(dispatcher):
    tracker = make_tracker([user_event("thanks", "thank")],
                           slots={"bot_answer_count": 3.0, "turn_limit_reached": True})
    events = await ActionMarkResolved().run(dispatcher, tracker, {})
    assert slots_of(events) == {"bot_answer_count": 0.0, "turn_limit_reached": False}


@pytest.mark.parametrize(
    "raw, expected",
    [("order #2840", "#2840"), ("#2840", "#2840"), ("order no 2791", "#2791"), ("2840", "#2840"),
     ("my order is 12 days late", None), ("", None), (None, None)],
)
def test_order_numbers_are_normalised(raw, expected):
    assert normalize_order_number(raw) == expected


async def test_form_accepts_a_bare_number_while_asking_for_it_or_in_an_order_question(dispatcher):
    form = ValidateOrderStatusForm()
    asking = make_tracker([user_event("2840", "nlu_fallback")], slots={"requested_slot": "order_number"})
    assert await form.extract_order_number(dispatcher, asking, {}) == {"order_number": "#2840"}
    order_question = make_tracker([user_event("2840 ka kya hua", "order_status")])
    assert await form.extract_order_number(dispatcher, order_question, {}) == {"order_number": "#2840"}
    not_asking = make_tracker([user_event("2840", "nlu_fallback")])
    assert await form.extract_order_number(dispatcher, not_asking, {}) == {}
    assert form.validate_order_number("no idea", dispatcher, asking, {}) == {"order_number": None}


async def test_order_status_answer_is_the_tracking_entry_verbatim(kb, dispatcher):
    tracker = make_tracker([user_event("#2840", "order_status")], slots={"order_number": "#2840"})
    events = await ActionAnswerOrderStatus().run(dispatcher, tracker, {})
    assert kb.entry("order_tracking").answer.strip() in dispatcher.messages[0]["text"]
    assert slots_of(events)["bot_answer_count"] == 1.0


async def test_form_question_comes_from_messages_yml(dispatcher):
    await ActionAskOrderNumber().run(dispatcher, make_tracker([user_event("where is my order", "order_status")]), {})
    assert "#2840" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize(
    "entities, opted_in",
    [(["opt_out"], False), (["opt_in"], True), (["opt_in", "opt_out"], False), ([], False)],
)
async def test_stop_and_start(dispatcher, entities, opted_in):
    tracker = make_tracker([user_event("…", "stop_messages", entities=[{"entity": e, "value": e} for e in entities])])
    events = await ActionUpdateMarketingConsent().run(dispatcher, tracker, {})
    assert events == [SlotSet("marketing_opt_in", opted_in)]


async def test_a_paused_conversation_stays_paused_in_the_new_session(dispatcher):
    tracker = make_tracker([user_event("agent", "request_human")],
                           slots={"handoff_id": "hf_1", "escalation_reason": "customer_request"}, paused=True)
    events = await ActionSessionStart().run(dispatcher, tracker, {"session_config": {"carry_over_slots_to_new_session": True}})
    assert events[0] == SessionStarted()
    assert SlotSet("handoff_id", "hf_1") in events
    assert events[-2:] == [ConversationPaused(), ActionExecuted("action_listen")]


async def test_an_active_conversation_starts_its_new_session_unpaused(dispatcher):
    tracker = make_tracker([user_event("hi", "greet")], paused=False)
    events = await ActionSessionStart().run(dispatcher, tracker, {})
    assert ConversationPaused() not in events
    assert events[-1] == ActionExecuted("action_listen")
