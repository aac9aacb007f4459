"""A short fragment right after a knowledge-base answer that the NLU fell back on is answered from the entry
just answered (escalation.yml `knowledge_base.elliptical_follow_ups.rescue_fallbacks`); anything else that
fell back is still handed off as before, and patterns 2, 3 and 4 are never answered.

The rule nlu_fallback -> action_handoff (data/rules/escalation.yml) is unchanged: action_handoff tries the
rescue first (actions/answers.py `fallback_follow_up`). The NLU rankings are written here as the shipped
model gives them for such fragments (nlu_fallback at the threshold, the question intent next at 0.3)."""
from __future__ import annotations

import dataclasses

import pytest
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from actions import answers, handoff
from actions.answers import ActionAnswerQuestion
from actions.handoff import ActionHandoff
from tests.actions.conftest import bot_event, make_tracker, user_event

FALLBACK = 0.6  # FallbackClassifier's threshold (config.yml): the confidence Rasa gives nlu_fallback


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def fell_back(text: str, ranking, question: str | None = None):
    """The user event of a message the NLU fell back on: nlu_fallback first, then `ranking` ((intent,
    confidence) pairs, best first). `question`: what FollowUpQuestion left after cutting "and" / "aur"."""
    event = user_event(text, "nlu_fallback", confidence=FALLBACK)
    event["parse_data"]["intent_ranking"] = [{"name": "nlu_fallback", "confidence": FALLBACK}] + [
        {"name": name, "confidence": confidence} for name, confidence in ranking
    ]
    if question is not None:
        event["parse_data"]["question"] = question
        if question != text:  # the NLU cut a leading marker ("and", "aur") and says so, as the shipped one does
            event["parse_data"]["follow_up"] = {"markers": [text[: len(text) - len(question)].strip()]}
    return event


async def answered_turn(question: str, entry_id: str) -> list:
    """The events of a turn in which the bot answered `question` from `entry_id`."""
    first = user_event(question, "ask_question")
    events = await ActionAnswerQuestion().run(CollectingDispatcher(), make_tracker([first]), {})
    assert slots_of(events)["kb_match"]["entry_id"] == entry_id and slots_of(events)["kb_match"]["answered"]
    return [first, bot_event("(the entry's answer)"), *events]


async def run_handoff(dispatcher, history, message, slots=None, active_loop=None):
    tracker = make_tracker([*history, message], slots=slots, active_loop=active_loop)
    return await ActionHandoff().run(dispatcher, tracker, {})


def assert_answered_from(kb, dispatcher, events, entry_id):
    assert dispatcher.messages[0]["text"].startswith(kb.entry(entry_id).answer.rstrip("\n"))
    match = slots_of(events)["kb_match"]
    assert match["entry_id"] == entry_id and match["answered"] is True and match["nlu_fallback"] is True
    assert "escalation_reason" not in slots_of(events)
    assert ConversationPaused() not in events


def assert_handed_off(dispatcher, events, reason="low_confidence"):
    assert slots_of(events)["escalation_reason"] == reason
    assert events[-1] == ConversationPaused()
    assert "kb_match" not in slots_of(events)  # no lookup recorded: the hand-off is exactly as before


# Rescued: a fragment that only makes sense with the answer just given.
@pytest.mark.parametrize(
    "first, entry_id, text, question",
    [
        ("what are your customer care hours", "contact_support", "and the calling hours", "the calling hours"),
        ("is cod available", "cash_on_delivery", "and the highest amount", "the highest amount"),
        ("cod milega kya", "cash_on_delivery", "aur upar ki limit kitni", "upar ki limit kitni"),
        ("delivery kitne din mein hogi", "shipping", "videsh bhi?", None),
    ],
)
async def test_a_fragment_after_an_answer_is_answered_from_that_entry(kb, dispatcher, first, entry_id, text, question):
    history = await answered_turn(first, entry_id)
    message = fell_back(text, [("ask_question", 0.33), ("complaint", 0.07), ("affirm", 0.0)], question)
    events = await run_handoff(dispatcher, history, message)
    assert_answered_from(kb, dispatcher, events, entry_id)
    assert slots_of(events)["bot_answer_count"] == 1.0  # counted for pattern 4 like any answer


async def test_the_fragment_alone_or_read_with_the_topic_says_which_in_kb_match(kb, dispatcher, config):
    history = await answered_turn("is cod available", "cash_on_delivery")
    assert kb.best_match("the upper cap").probability < config.kb_answer_threshold  # alone: nothing
    events = await run_handoff(dispatcher, history, fell_back("and the upper cap", [("ask_question", 0.3)],
                                                              "the upper cap"))
    assert slots_of(events)["kb_match"]["context"] == "previous_question"
    history = await answered_turn("what are your customer care hours", "contact_support")
    dispatcher.messages.clear()
    events = await run_handoff(dispatcher, history, fell_back("and the calling hours", [("ask_question", 0.35)],
                                                              "the calling hours"))
    assert "context" not in slots_of(events)["kb_match"]  # its entry answers it alone: it sets the topic itself


async def test_a_rescued_answer_can_reach_the_turn_limit(kb, dispatcher):
    history = await answered_turn("is cod available", "cash_on_delivery")
    events = await run_handoff(dispatcher, history, fell_back("and the upper cap", [("ask_question", 0.3)],
                                                              "the upper cap"), slots={"bot_answer_count": 2.0})
    assert slots_of(events)["bot_answer_count"] == 3.0 and slots_of(events)["turn_limit_reached"] is True


# Not rescued: handed off exactly as before.
async def test_a_fragment_that_names_another_entrys_topic_is_handed_off(kb, dispatcher, config):
    history = await answered_turn("is cod available", "cash_on_delivery")
    assert kb.topics_named("the refund window", besides="cash_on_delivery") == ["returns"]
    events = await run_handoff(dispatcher, history, fell_back("and the refund window", [("ask_question", 0.34)],
                                                              "the refund window"))
    assert_handed_off(dispatcher, events)


async def test_a_long_message_is_handed_off(kb, dispatcher, config):
    history = await answered_turn("is cod available", "cash_on_delivery")
    text = "and what would be the ceiling for paying this way on a big wedding order"
    assert len(text.split()) - 1 > config.kb_elliptical_follow_ups.max_words
    events = await run_handoff(dispatcher, history, fell_back(text, [("ask_question", 0.34)], text[4:]))
    assert_handed_off(dispatcher, events)


async def test_without_a_previous_answer_a_fragment_is_handed_off(kb, dispatcher):
    history = [user_event("hello", "greet"), bot_event("Hi! I'm the Kesar Lane assistant.")]
    events = await run_handoff(dispatcher, history, fell_back("and the upper cap", [("ask_question", 0.3)],
                                                              "the upper cap"))
    assert_handed_off(dispatcher, events)


async def test_after_a_hand_off_instead_of_an_answer_a_fragment_is_handed_off(kb, dispatcher):
    unanswered = user_event("do you have a shop in kochi", "ask_question")
    events = await ActionAnswerQuestion().run(CollectingDispatcher(), make_tracker([unanswered]), {})
    assert slots_of(events)["kb_match"]["answered"] is False
    history = [unanswered, bot_event("(not sure)"), *[e for e in events if e["event"] == "slot"]]
    events = await run_handoff(dispatcher, history, fell_back("aur timing?", [("ask_question", 0.3)], "timing?"))
    assert_handed_off(dispatcher, events)


@pytest.mark.parametrize(
    "ranking",
    [
        [("request_human", 0.41), ("ask_question", 0.33)],  # a request for a person ranked first (pattern 2)
        [("complaint", 0.45), ("ask_question", 0.4)],  # a complaint ranked first (pattern 3)
        [("ask_question", 0.42), ("complaint", 0.38)],  # a complaint close behind: a person decides
        [("ask_question", 0.4), ("request_human", 0.31)],
        [("affirm", 0.25), ("ask_question", 0.2)],  # an acknowledgement ranked first: not a question
    ],
)
async def test_a_fallback_read_as_a_request_topic_or_acknowledgement_is_handed_off(kb, dispatcher, ranking):
    history = await answered_turn("cod milega kya", "cash_on_delivery")
    events = await run_handoff(dispatcher, history, fell_back("aur upar ki limit kitni", ranking, "upar ki limit kitni"))
    assert_handed_off(dispatcher, events)


async def test_two_topics_too_close_to_call_still_hand_off_with_the_topic(kb, dispatcher):
    history = await answered_turn("is cod available", "cash_on_delivery")
    message = fell_back("and the box came torn and wet", [("complaint", 0.62), ("urgent_problem", 0.6)],
                        "the box came torn and wet")
    events = await run_handoff(dispatcher, history, message)
    assert_handed_off(dispatcher, events, reason="topic")


async def test_after_the_turn_limit_a_fragment_hands_off_as_unresolved(kb, dispatcher):
    history = await answered_turn("is cod available", "cash_on_delivery")
    events = await run_handoff(dispatcher, history, fell_back("and the upper cap", [("ask_question", 0.3)],
                                                              "the upper cap"),
                               slots={"bot_answer_count": 3.0, "turn_limit_reached": True})
    assert_handed_off(dispatcher, events, reason="unresolved_turns")


async def test_inside_the_order_form_a_fragment_is_handed_off(kb, dispatcher):
    history = await answered_turn("is cod available", "cash_on_delivery")
    events = await run_handoff(dispatcher, history, fell_back("and the upper cap", [("ask_question", 0.3)],
                                                              "the upper cap"), active_loop="order_status_form")
    assert_handed_off(dispatcher, events)


async def test_with_rescue_fallbacks_off_every_fallback_hands_off(kb, dispatcher, config, monkeypatch):
    off = dataclasses.replace(config, kb_elliptical_follow_ups=dataclasses.replace(
        config.kb_elliptical_follow_ups, rescue_fallbacks=False))
    monkeypatch.setattr(answers, "settings", lambda: off)
    monkeypatch.setattr(handoff, "settings", lambda: off)
    history = await answered_turn("is cod available", "cash_on_delivery")
    events = await run_handoff(dispatcher, history, fell_back("and the upper cap", [("ask_question", 0.3)],
                                                              "the upper cap"))
    assert_handed_off(dispatcher, events)


async def test_a_message_that_did_not_fall_back_is_never_touched_by_action_handoff(kb, dispatcher):
    history = await answered_turn("is cod available", "cash_on_delivery")
    request = user_event("and could someone ring me back", "request_human", confidence=1.0)
    events = await run_handoff(dispatcher, history, request)
    assert_handed_off(dispatcher, events, reason="customer_request")


# Session 25: a fallback that is no follow-up is answered from its own entry when the knowledge base is sure of it
# (`elliptical_follow_ups.rescue_min_probability`); the same guards as above, and a marker ("aur", "and") means the
# message leans on what came before, so it is never judged alone this way.
@pytest.mark.parametrize("text, entry_id", [
    ("tell me how the kesar circle membership works", "loyalty_vip"),
    ("which payment options does the website take", "payment_methods"),
])
async def test_a_question_the_kb_is_sure_of_is_answered_though_the_nlu_fell_back(kb, dispatcher, config, text, entry_id):
    assert kb.best_match(text).probability >= config.kb_elliptical_follow_ups.rescue_min_probability
    history = [user_event("hello", "greet"), bot_event("Hi! I'm the Kesar Lane assistant.")]
    events = await run_handoff(dispatcher, history, fell_back(text, [("ask_question", 0.45), ("greet", 0.1)]))
    assert_answered_from(kb, dispatcher, events, entry_id)
    assert slots_of(events)["kb_match"]["rescue"] == "confident"
    assert slots_of(events)["bot_answer_count"] == 1.0


async def test_a_question_the_kb_is_not_sure_of_is_still_handed_off(kb, dispatcher, config):
    text = "do you have a showroom in kochi"
    assert kb.best_match(text).probability < config.kb_elliptical_follow_ups.rescue_min_probability
    events = await run_handoff(dispatcher, [], fell_back(text, [("ask_question", 0.45)]))
    assert_handed_off(dispatcher, events)


@pytest.mark.parametrize("ranking", [
    [("request_human", 0.5), ("ask_question", 0.4)],  # pattern 2 ranked first
    [("ask_question", 0.45), ("request_refund", 0.35)],  # pattern 3 close behind: a person decides
    [("affirm", 0.5), ("ask_question", 0.3)],  # an acknowledgement ranked first
])
async def test_a_sure_entry_never_overrides_a_request_a_topic_or_an_acknowledgement(kb, dispatcher, ranking):
    events = await run_handoff(dispatcher, [], fell_back("which payment options does the website take", ranking))
    assert_handed_off(dispatcher, events)


async def test_a_sure_entry_is_not_used_inside_the_form_after_the_turn_limit_or_when_switched_off(
        kb, dispatcher, config, monkeypatch):
    text = "which payment options does the website take"
    events = await run_handoff(dispatcher, [], fell_back(text, [("ask_question", 0.45)]), active_loop="order_status_form")
    assert_handed_off(dispatcher, events)
    events = await run_handoff(dispatcher, [], fell_back(text, [("ask_question", 0.45)]),
                               slots={"bot_answer_count": 3.0, "turn_limit_reached": True})
    assert slots_of(events)["escalation_reason"] == "unresolved_turns"
    off = dataclasses.replace(config, kb_elliptical_follow_ups=dataclasses.replace(
        config.kb_elliptical_follow_ups, rescue_min_probability=None))
    monkeypatch.setattr(answers, "settings", lambda: off)
    monkeypatch.setattr(handoff, "settings", lambda: off)
    events = await run_handoff(dispatcher, [], fell_back(text, [("ask_question", 0.45)]))
    assert_handed_off(dispatcher, events)


async def test_a_message_with_a_follow_up_marker_is_never_judged_alone_by_the_sure_entry_rule(kb, dispatcher, config):
    assert kb.best_match("payment options on the website").probability >= 0.8
    events = await run_handoff(dispatcher, [], fell_back("aur payment options on the website", [("ask_question", 0.45)],
                                                         "payment options on the website"))
    assert_handed_off(dispatcher, events)
