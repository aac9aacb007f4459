"""action_handoff: the right reason, an honest named message, the inbox call, and the pause."""
from __future__ import annotations


import pytest
from rasa_sdk.events import ConversationPaused

from actions.handoff import ActionHandoff, decide_escalation, handoff_id_for
from tests.actions.conftest import bot_event, make_tracker, slots_of, user_event, whatsapp_metadata


def refund_tracker():
    meta = whatsapp_metadata(name="Priya Sharma")
    return make_tracker(
        [
            user_event("hi, where is my order #2840", "order_status", metadata=meta,
                       entities=[{"entity": "order_number", "value": "order #2840"}]),
            bot_event("Thanks, I've noted order #2840."),
            user_event("I want a refund for #2812", "request_refund", metadata=meta,
                       entities=[{"entity": "order_number", "value": "#2812"}]),
        ]
    )


async def run_handoff(tracker, dispatcher):
    return await ActionHandoff().run(dispatcher, tracker, {})


async def test_topic_handoff_names_the_agent_and_time_and_pauses(inbox, dispatcher):
    events = await run_handoff(refund_tracker(), dispatcher)

    message = dispatcher.messages[0]["text"]
    assert "Anita" in message and "she'll reply within 5 minutes" in message
    assert "transferring" not in message.lower()
    slots = slots_of(events)
    assert slots["escalation_reason"] == "topic"
    assert slots["escalation_topic"] == "refund"
    assert slots["handoff_id"].startswith("hf_")
    assert slots["handoff_details"]["delivered_to_inbox"] is True
    assert events[-1] == ConversationPaused()


async def test_inbox_receives_the_contract_payload(inbox, dispatcher):
    await run_handoff(refund_tracker(), dispatcher)

    [payload] = inbox.requests
    assert inbox.headers[0]["Authorization"] == "Bearer bot-secret"
    assert payload["conversation_id"] == "919876543210"
    assert payload["channel"] == "whatsapp"
    assert payload["customer"] == {
        "whatsapp_id": "919876543210", "name": "Priya Sharma", "phone_number_id": "106540352242922"
    }
    assert payload["reason"] == "topic" and payload["topic"] == "refund"
    assert payload["tags"] == ["refund"] and payload["priority"] == "high"
    assert payload["order_numbers"] == ["#2840", "#2812"]
    assert [m["role"] for m in payload["transcript"]] == ["customer", "bot", "customer"]
    assert payload["transcript"][-1]["text"] == "I want a refund for #2812"
    assert "I want a refund for #2812" in payload["summary"]


async def test_urgent_words_raise_priority_and_add_the_tag(inbox, dispatcher):
    tracker = make_tracker([user_event("the serum gave me a rash, this is an emergency", "complaint")])
    await run_handoff(tracker, dispatcher)
    payload = inbox.requests[0]
    assert payload["topic"] == "complaint"
    assert "urgent" in payload["tags"] and payload["priority"] == "urgent"


async def test_queued_handoff_gives_the_opening_time_without_a_name(inbox, dispatcher):
    inbox.mode = "queued"
    events = await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    message = dispatcher.messages[0]["text"]
    assert "by 9:00 AM tomorrow" in message
    assert slots_of(events)["escalation_reason"] == "customer_request"
    assert events[-1] == ConversationPaused()


async def test_inbox_down_still_gives_an_honest_message_and_pauses(inbox, dispatcher, config):
    inbox.mode = "down_500"
    events = await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    message = dispatcher.messages[0]["text"]
    assert config.default_eta_text in message
    assert "transferring" not in message.lower()
    assert len(inbox.requests) == config.inbox_attempts  # retried, then gave up
    assert slots_of(events)["handoff_details"]["delivered_to_inbox"] is False
    assert events[-1] == ConversationPaused()


async def test_inbox_unreachable_port(monkeypatch, dispatcher, config):
    monkeypatch.setenv("INBOX_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    events = await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    assert config.default_eta_text in dispatcher.messages[0]["text"]
    assert events[-1] == ConversationPaused()


async def test_a_transient_inbox_error_is_retried(inbox, dispatcher):
    inbox.mode = "fail_then_assign"
    await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    assert len(inbox.requests) == 2
    assert inbox.requests[0]["handoff_id"] == inbox.requests[1]["handoff_id"]
    assert "Anita" in dispatcher.messages[0]["text"]


async def test_slow_inbox_does_not_keep_the_customer_waiting(inbox, dispatcher, config):
    # The inbox never answers: the hand-off can only finish because each attempt times out.
    inbox.mode = "slow"
    events = await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    assert len(inbox.requests) == config.inbox_attempts
    assert config.default_eta_text in dispatcher.messages[0]["text"]
    assert events[-1] == ConversationPaused()


@pytest.mark.parametrize("mode", ["bad_json", "unauthorized", "incomplete"])
async def test_bad_inbox_answers_fall_back_without_retrying(inbox, dispatcher, config, mode):
    inbox.mode = mode
    events = await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    assert len(inbox.requests) == 1
    assert config.default_eta_text in dispatcher.messages[0]["text"]
    assert events[-1] == ConversationPaused()


async def test_no_inbox_configured_still_pauses(dispatcher, config):
    events = await run_handoff(make_tracker([user_event("agent please", "request_human")]), dispatcher)
    assert config.default_eta_text in dispatcher.messages[0]["text"]
    assert slots_of(events)["handoff_id"].startswith("hf_")
    assert events[-1] == ConversationPaused()


async def test_handoff_from_inside_a_form_ends_the_form(dispatcher):
    tracker = make_tracker([user_event("asdf", "nlu_fallback")], active_loop="order_status_form")
    events = await run_handoff(tracker, dispatcher)
    assert {"event": "active_loop", "timestamp": None, "name": None} in events
    assert events[-1] == ConversationPaused()


@pytest.mark.parametrize(
    "intent, slots, expected",
    [
        ("request_human", {}, ("customer_request", None)),
        ("request_refund", {}, ("topic", "refund")),
        ("complaint", {}, ("topic", "complaint")),
        ("urgent_problem", {}, ("topic", "urgent")),
        ("cancel_order", {}, ("topic", "cancellation")),
        ("nlu_fallback", {}, ("low_confidence", None)),
        ("greet", {"turn_limit_reached": True}, ("unresolved_turns", None)),
        ("request_human", {"turn_limit_reached": True}, ("customer_request", None)),
    ],
)
def test_reason_follows_the_pattern(config, intent, slots, expected):
    tracker = make_tracker([user_event("…", intent)], slots=slots)
    escalation = decide_escalation(tracker, config)
    assert (escalation.reason, escalation.topic) == expected


def fallback_tracker(ranking):
    event = user_event("packaging was filthy and the box came crushed 😡", "nlu_fallback", confidence=0.6)
    event["parse_data"]["intent_ranking"] = [{"name": "nlu_fallback", "confidence": 0.6}] + [
        {"name": name, "confidence": confidence} for name, confidence in ranking
    ]
    return make_tracker([event])


# FallbackClassifier also falls back when the top two intents are close; two close topics still need a
# person, and the first one routes it. Anything else stays an honest low_confidence hand-off.
@pytest.mark.parametrize(
    "ranking, expected",
    [
        ([("complaint", 0.71), ("urgent_problem", 0.66), ("ask_question", 0.1)], ("topic", "complaint")),
        ([("urgent_problem", 0.64), ("request_refund", 0.6)], ("topic", "urgent")),
        ([("complaint", 0.55), ("urgent_problem", 0.5)], ("low_confidence", None)),  # below the threshold
        ([("complaint", 0.71), ("ask_question", 0.66)], ("low_confidence", None)),  # a topic against a question
        ([("ask_question", 0.71), ("complaint", 0.66)], ("low_confidence", None)),
    ],
)
def test_two_close_topics_route_to_the_first(config, ranking, expected):
    escalation = decide_escalation(fallback_tracker(ranking), config)
    assert (escalation.reason, escalation.topic) == expected


@pytest.mark.parametrize(
    "reason, intent, slots, wording",
    [
        ("low_confidence", "nlu_fallback", {}, "not sure"),
        ("customer_request", "request_human", {}, "Of course"),
        ("unresolved_turns", "greet", {"turn_limit_reached": True}, "getting this right"),
    ],
)
async def test_message_is_worded_per_pattern(inbox, dispatcher, reason, intent, slots, wording):
    await run_handoff(make_tracker([user_event("hmm", intent)], slots=slots), dispatcher)
    message = dispatcher.messages[0]["text"]
    assert wording in message and "Anita" in message
    assert inbox.requests[0]["reason"] == reason


def test_handoff_id_is_stable_for_the_same_message_and_new_for_the_next():
    first = user_event("agent please", "request_human", timestamp=1000.0)
    tracker = make_tracker([first])
    assert handoff_id_for(tracker) == handoff_id_for(make_tracker([first]))
    later = make_tracker([first, user_event("agent please", "request_human", timestamp=2000.0)])
    assert handoff_id_for(later) != handoff_id_for(tracker)
