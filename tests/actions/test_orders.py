"""The order form that does not nag (actions/orders.py): when it asks, when it lets go, what it reads
as the order number. Trackers are built the way Rasa's form hands them to the action server: the
conversation so far, then `requested_slot`, the form's own execution and the slot candidates."""
from __future__ import annotations

import time

import pytest

from actions.orders import (
    FORM,
    LET_GO_SLOT,
    RE_ASKS_SLOT,
    ActionAnswerOrderStatus,
    ActionAskOrderNumber,
    OrderFormSettings,
    ValidateOrderStatusForm,
    ask_events,
    order_form_settings,
    parse_order_form_settings,
)
from actions.settings import SettingsError
from tests.actions.conftest import bot_event, make_tracker, user_event

DOMAIN = {
    "forms": {FORM: {"required_slots": ["order_number"]}},
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "from_entity", "entity": "order_number"},
                                                            {"type": "custom"}]}},
}
SECTION = {"ask_order_number": "What's your order number?", "ask_again": "And your order number?",
           "still_looking": "Take your time.", "re_ask_limit": 1, "not_an_answer_intents": ["ask_question", "out_of_scope"]}


def action(name):
    return {"event": "action", "timestamp": time.time(), "name": name}


def slot(name, value):
    return {"event": "slot", "timestamp": time.time(), "name": name, "value": value}


def rejected(events):
    return any(e["event"] == "action_execution_rejected" and e["name"] == FORM for e in events)


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def form_asked(**slots):
    """The form has started and asked; the customer has not written since."""
    return [user_event("where's my parcel?", "order_status"), action(FORM),
            {"event": "active_loop", "name": FORM}, slot("requested_slot", "order_number"),
            bot_event("What's your order number?"), action("action_listen")]


def customer_writes(text, intent, entities=None, **slots):
    """Validation of the customer's next message while the form asks for the number."""
    events = form_asked() + [user_event(text, intent, entities=entities),
                             slot("requested_slot", "order_number"), action(FORM)]
    return make_tracker(events, slots={"requested_slot": "order_number", **slots}, active_loop=FORM)


def back_after_side_answer(re_asks=0.0):
    """The form runs again after another action answered the customer's side message."""
    events = form_asked() + [user_event("do you deliver to Pune?", "ask_question"),
                             {"event": "action_execution_rejected", "name": FORM},
                             action("action_answer_question"), bot_event("Yes, we deliver across India."),
                             slot("requested_slot", "order_number"), action(FORM)]
    return make_tracker(events, slots={"requested_slot": "order_number", RE_ASKS_SLOT: re_asks},
                        active_loop=FORM)


# ---------------------------------------------------------------- asking, asking again, letting go
def test_the_first_question_is_asked_in_full(dispatcher):
    tracker = make_tracker([user_event("where's my parcel?", "order_status"), action(FORM),
                            {"event": "active_loop", "name": FORM}], active_loop=FORM)
    config = parse_order_form_settings(SECTION, frozenset(), "test")
    assert ask_events(tracker, config) == ("What's your order number?", [])


@pytest.mark.parametrize("limit", [0, 1, 2])
def test_after_side_messages_the_form_asks_again_up_to_the_limit_then_lets_go(limit):
    config = parse_order_form_settings({**SECTION, "re_ask_limit": limit}, frozenset(), "test")
    said = []
    re_asks = 0.0
    for _ in range(limit + 2):
        text, events = ask_events(back_after_side_answer(re_asks), config)
        if text is None:
            assert slots_of(events) == {LET_GO_SLOT: True, "requested_slot": None}
            break
        said.append(text)
        re_asks = slots_of(events)[RE_ASKS_SLOT]
    assert said == ["And your order number?"] * limit


def test_after_a_silent_reaction_the_form_neither_asks_nor_counts():
    events = form_asked() + [user_event("👍", "affirm", entities=[{"entity": "reaction", "value": "positive"}]),
                             {"event": "action_execution_rejected", "name": FORM},
                             action("action_mark_resolved"), slot("bot_answer_count", 0.0),
                             slot("requested_slot", "order_number"), action(FORM)]
    tracker = make_tracker(events, slots={"requested_slot": "order_number"}, active_loop=FORM)
    assert ask_events(tracker, order_form_settings()) == (None, [])


async def test_the_ask_action_says_nothing_when_it_lets_go(dispatcher):
    limit = order_form_settings().re_ask_limit
    events = await ActionAskOrderNumber().run(dispatcher, back_after_side_answer(re_asks=float(limit)), {})
    assert dispatcher.messages == []
    assert slots_of(events)[LET_GO_SLOT] is True


async def test_the_shipped_re_ask_text_comes_from_messages_yml(dispatcher):
    await ActionAskOrderNumber().run(dispatcher, back_after_side_answer(), {})
    assert dispatcher.messages[0]["text"] == order_form_settings().ask_again


# ---------------------------------------------------------------- "one sec, finding it"
STILL_LOOKING = [{"entity": "still_looking", "value": "still_looking"}]


def still_looking_turn(re_asks=0.0):
    """The form runs on "hold on, checking my mail" (components/still_looking.py marked it)."""
    events = form_asked() + [user_event("hold on, checking my mail for it", "order_status", entities=STILL_LOOKING),
                             slot("requested_slot", "order_number"), action(FORM)]
    return make_tracker(events, slots={"requested_slot": "order_number", RE_ASKS_SLOT: re_asks}, active_loop=FORM)


async def test_still_looking_keeps_the_form_waiting_without_taking_a_number(dispatcher):
    events = await ValidateOrderStatusForm().run(dispatcher, still_looking_turn(), DOMAIN)
    # Not rejected: a rejected form hands the message to the rules, and "hold on" was handed off as "not sure".
    assert not rejected(events)
    assert slots_of(events) == {"order_number": None}
    assert dispatcher.messages == []  # the ask action speaks


async def test_at_the_turn_limit_still_looking_is_rejected_like_any_message(dispatcher):
    tracker = still_looking_turn()
    tracker.slots["turn_limit_reached"] = True
    events = await ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN)
    assert rejected(events)  # pattern 4's in-form rule hands off


@pytest.mark.parametrize("re_asks", [0.0, 1.0])
def test_still_looking_gets_take_your_time_and_is_not_counted_as_asking_again(re_asks):
    config = parse_order_form_settings(SECTION, frozenset(), "test")
    # Even after the one re-ask was used up, the customer who is looking is told to take their time.
    assert ask_events(still_looking_turn(re_asks), config) == ("Take your time.", [])


async def test_the_shipped_still_looking_text_comes_from_messages_yml(dispatcher):
    await ActionAskOrderNumber().run(dispatcher, still_looking_turn(), {})
    assert [m["text"] for m in dispatcher.messages] == [order_form_settings().still_looking]


async def test_then_the_number_completes_the_form(dispatcher):
    events = form_asked() + [user_event("hold on, checking my mail for it", "order_status", entities=STILL_LOOKING),
                             action(FORM), bot_event("Take your time."), action("action_listen"),
                             user_event("found it: 2840", "order_status"),
                             slot("requested_slot", "order_number"), action(FORM)]
    tracker = make_tracker(events, slots={"requested_slot": "order_number"}, active_loop=FORM)
    result = await ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN)
    assert slots_of(result)["order_number"] == "#2840"


# ---------------------------------------------------------------- what counts as the order number
@pytest.mark.parametrize("text, intent", [("#2840", "order_status"), ("2840", "nlu_fallback"),
                                          ("mera order 2840 hai", "order_status"), ("i think it's 2840", "affirm")])
async def test_a_number_while_asking_completes_the_form(dispatcher, text, intent):
    events = await ValidateOrderStatusForm().run(dispatcher, customer_writes(text, intent), DOMAIN)
    assert slots_of(events)["order_number"] == "#2840"
    assert not rejected(events)


async def test_a_question_with_digits_is_answered_not_taken_as_the_number(dispatcher):
    events = await ValidateOrderStatusForm().run(
        dispatcher, customer_writes("do you deliver to 560001?", "ask_question"), DOMAIN)
    assert rejected(events)
    assert "order_number" not in slots_of(events)


async def test_a_refund_request_with_a_number_hands_off_and_keeps_the_number(dispatcher):
    entities = [{"entity": "order_number", "value": "#2812"}]
    events = await ValidateOrderStatusForm().run(
        dispatcher, customer_writes("I want a refund for #2812", "request_refund", entities), DOMAIN)
    assert rejected(events)
    assert slots_of(events)["order_number"] == "#2812"


async def test_at_the_turn_limit_even_the_number_is_rejected_so_the_hand_off_rule_runs(dispatcher):
    events = await ValidateOrderStatusForm().run(
        dispatcher, customer_writes("2840", "order_status", turn_limit_reached=True), DOMAIN)
    assert rejected(events)
    assert slots_of(events)["order_number"] == "#2840"


async def test_a_message_without_a_number_rejects_the_form(dispatcher):
    # Rasa rejects the form when validation returns nothing, so the message's own rule answers it.
    events = await ValidateOrderStatusForm().run(dispatcher, customer_writes("ok", "affirm"), DOMAIN)
    assert events == []


async def test_coming_back_after_a_side_answer_reads_nothing_again(dispatcher):
    assert await ValidateOrderStatusForm().run(dispatcher, back_after_side_answer(), DOMAIN) == []


@pytest.mark.parametrize("marked_active", [True, False])
async def test_a_new_form_forgets_how_the_last_one_ended_and_reads_an_order_question(dispatcher, marked_active):
    # Rasa validates on activation twice: with the form already marked active, and before.
    events = [user_event("2840 ka kya hua", "order_status")]
    if marked_active:
        events.append({"event": "active_loop", "name": FORM})
    events += [slot("requested_slot", None), action(FORM)]
    tracker = make_tracker(events, slots={LET_GO_SLOT: True, RE_ASKS_SLOT: 1.0},
                           active_loop=FORM if marked_active else None)
    events = await ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN)
    assert slots_of(events) == {LET_GO_SLOT: False, RE_ASKS_SLOT: 0.0, "order_number": "#2840"}


async def test_a_new_order_question_without_a_number_asks_instead_of_reusing_an_earlier_one(dispatcher):
    tracker = make_tracker(
        [user_event("and where is my other order?", "order_status"), {"event": "active_loop", "name": FORM},
         slot("requested_slot", None), action(FORM), slot("order_number", "#2840")],
        slots={"order_number": "#2840"}, active_loop=FORM)
    events = await ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN)
    assert slots_of(events) == {"order_number": None}


async def test_a_new_order_question_with_the_same_number_keeps_it(dispatcher):
    entities = [{"entity": "order_number", "value": "#2840"}]
    tracker = make_tracker(
        [user_event("any update on #2840?", "order_status", entities=entities),
         {"event": "active_loop", "name": FORM}, slot("requested_slot", None), action(FORM),
         slot("order_number", "#2840")],
        slots={"order_number": "#2840"}, active_loop=FORM)
    events = await ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN)
    assert slots_of(events) == {"order_number": "#2840"}


@pytest.mark.parametrize("text", ["my pincode is 411014", "pin 560034", "paid ₹1850 already", "it was rs 2340",
                                  "110001 pin code hai"])
async def test_a_pin_code_or_an_amount_while_asking_is_not_the_number(dispatcher, text):
    # messages.yml `not_order_numbers_next_to` (session 37): the digits are something else, the form asks again
    events = await ValidateOrderStatusForm().run(dispatcher, customer_writes(text, "nlu_fallback"), DOMAIN)
    assert "order_number" not in slots_of(events)


@pytest.mark.parametrize("text", ["order no.2840", "pincode 411014, order 2840", "2840, pin is 411014"])
async def test_the_order_number_beside_a_pin_code_is_still_taken(dispatcher, text):
    events = await ValidateOrderStatusForm().run(dispatcher, customer_writes(text, "order_status"), DOMAIN)
    assert slots_of(events)["order_number"] == "#2840"


async def test_an_order_question_naming_a_pin_code_asks_for_the_number(dispatcher):
    # Session 37 (v33): "hyderabad 500032 pin, parcel ko wahan tak kitne din?" was noted as order #500032.
    tracker = make_tracker([user_event("hyderabad 500032 pin, parcel ko wahan tak kitne din?", "order_status")])
    assert await ValidateOrderStatusForm().extract_order_number(dispatcher, tracker, DOMAIN) == {}


def test_the_words_beside_a_number_are_the_designers():
    config = parse_order_form_settings({**SECTION, "not_order_numbers_next_to": ["gate code"]}, frozenset(), "test")
    assert config.number_in("gate code 4471, order 2840") == "#2840"
    assert config.number_in("pin 560034") == "#560034"  # not listed here, so a number like any other


async def test_a_bare_number_outside_the_form_and_an_order_question_is_not_an_order_number(dispatcher):
    tracker = make_tracker([user_event("is 1299 the price of the kurta?", "ask_question")])
    assert await ValidateOrderStatusForm().extract_order_number(dispatcher, tracker, DOMAIN) == {}


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "change, message",
    [({"re_ask_limit": -1}, "re_ask_limit"), ({"re_ask_limit": "1"}, "re_ask_limit"),
     ({"re_ask_limit": True}, "re_ask_limit"), ({"ask_again": ""}, "ask_again"), ({"still_looking": " "}, "still_looking"),
     ({"ask_order_number": None}, "ask_order_number"), ({"not_an_answer_intents": "ask_question"}, "not_an_answer"),
     ({"not_an_answer_intents": ["order_status"]}, "order_status"),
     ({"not_order_numbers_next_to": "pin"}, "not_order_numbers_next_to"),
     ({"not_order_numbers_next_to": ["pin", 5]}, "not_order_numbers_next_to"),
     ({"not_order_numbers_next_to": ["pin-code"]}, "not_order_numbers_next_to")],
)
def test_bad_settings_fail_with_a_clear_message(change, message):
    with pytest.raises(SettingsError, match=message):
        parse_order_form_settings({**SECTION, **change}, frozenset(), "messages.yml")


def test_hand_off_intents_from_escalation_yml_never_give_the_number(config):
    shipped = order_form_settings()
    assert isinstance(shipped, OrderFormSettings)
    assert set(config.topics) | {config.human_request_intent} <= shipped.not_an_answer_intents
    assert "order_status" not in shipped.not_an_answer_intents


# ---------------------------------------------------------------- a question beside the number
# Session 45 (v48): "52931 - and can the bill carry my firm's GSTIN?" while the form asked. The NLU fell back; the form
# took the number and the bot answered how to track the order, and the question about the bill was lost. Now the number
# is noted, the tracking answer given, and a person is brought in for the rest (pattern 1, low_confidence).
def number_noted(text, intent):
    events = form_asked() + [user_event(text, intent, confidence=0.6 if intent == "nlu_fallback" else 0.95),
                             action(FORM), slot("order_number", "#52931"), {"event": "active_loop", "name": None},
                             action("utter_order_number_noted"), bot_event("Thanks, I've noted order #52931.")]
    return make_tracker(events, slots={"order_number": "#52931"})


def paused(events):
    return any(e["event"] == "pause" for e in events)


async def test_a_question_the_bot_could_not_place_beside_the_number_hands_off_after_the_answer(dispatcher, kb):
    events = await ActionAnswerOrderStatus().run(
        dispatcher, number_noted("52931 - and can the bill carry my firm's GSTIN?", "nlu_fallback"), {})
    texts = [m["text"] for m in dispatcher.messages]
    assert texts[0].startswith(kb.entry("order_tracking").answer.strip()[:40])  # the tracking answer first
    assert len(texts) == 2 and "not sure" in texts[1]                            # then the honest hand-off
    assert paused(events) and slots_of(events)["escalation_reason"] == "low_confidence"
    assert slots_of(events).get("order_number", "#52931") == "#52931"           # the number stays for the agent


@pytest.mark.parametrize("text, intent", [
    ("haan ye raha 73316", "nlu_fallback"),                       # a short reply with the number
    ("52931 - and can the bill carry my firm's GSTIN?", "order_status"),   # the NLU placed it
])
async def test_a_plain_number_or_a_placed_message_gets_the_answer_only(dispatcher, text, intent):
    events = await ActionAnswerOrderStatus().run(dispatcher, number_noted(text, intent), {})
    assert len(dispatcher.messages) == 1 and not paused(events)


def test_the_question_beside_the_number_rule_is_the_designers():
    assert order_form_settings().question_beside_the_number_min_words == 5   # messages.yml
    off = parse_order_form_settings({**SECTION, "question_beside_the_number_min_words": 0}, frozenset(), "m")
    assert not off.question_beside_the_number("52931 - and can the bill carry my firm's GSTIN?", "nlu_fallback")
    with pytest.raises(SettingsError, match="question_beside_the_number_min_words"):
        parse_order_form_settings({**SECTION, "question_beside_the_number_min_words": -2}, frozenset(), "m")
