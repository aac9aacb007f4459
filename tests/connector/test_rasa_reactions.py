"""WhatsApp reactions and emoji against a real `rasa run` with the connector, the action server and the
sandbox (the session's `rasa` fixture, tests/connector/rasa_server.py: the shipped model, or RASA_MODEL)."""

from __future__ import annotations

from typing import Any, Dict, List

from tests.connector.support import new_wa_id, wait_until

THUMBS_UP, THUMBS_DOWN = "\U0001F44D", "\U0001F44E"
GLAD_TO_HELP = "Great! Anything else I can help with?"


def slot_values(rasa, wa_id: str) -> Dict[str, Any]:
    """The conversation's slots as its events set them."""
    values: Dict[str, Any] = {}
    for event in rasa.tracker_events(wa_id):
        if event["event"] == "slot":
            values[event["name"]] = event["value"]
    return values


def ask(rasa, wa_id: str, text: str) -> List[Dict[str, Any]]:
    """The customer writes; returns the bot's messages once its answer arrived."""
    before = len(rasa.sandbox.business_messages(wa_id))
    rasa.sandbox.customer_says(wa_id, text=text)
    return rasa.sandbox.wait_for_business(wa_id, at_least=before + 1, timeout=30)


def react(rasa, wa_id: str, to_message_id: str, emoji: str) -> str:
    sent = rasa.sandbox.customer_says(
        wa_id, message={"type": "reaction", "reaction": {"message_id": to_message_id, "emoji": emoji}})
    return sent["message_id"]


def handled(rasa, wa_id: str, message_id: str) -> List[Dict[str, Any]]:
    """The tracker's events from the customer's message `message_id` on, once the turn is saved."""
    def turn() -> Any:
        events = rasa.tracker_events(wa_id)
        starts = [i for i, e in enumerate(events) if e["event"] == "user" and e.get("message_id") == message_id]
        if starts and events[-1]["event"] == "action" and events[-1]["name"] == "action_listen":
            return events[starts[0]:]
        return None
    found = wait_until(turn, timeout=30)
    assert found, f"the bot did not finish the turn of {message_id}"
    return found


def test_a_thumbs_up_reaction_to_an_answer_resets_the_count_without_a_reply(rasa):
    wa_id = new_wa_id()
    [answer] = ask(rasa, wa_id, "is cod available?")
    assert wait_until(lambda: slot_values(rasa, wa_id).get("bot_answer_count") == 1.0, timeout=10)

    reaction_id = react(rasa, wa_id, answer["id"], THUMBS_UP + "\U0001F3FD")
    events = handled(rasa, wa_id, reaction_id)
    user = events[0]
    assert user["metadata"]["whatsapp"]["type"] == "reaction"
    assert user["parse_data"]["intent"]["name"] == "affirm"
    assert [(e["entity"], e["value"]) for e in user["parse_data"]["entities"]] == [("reaction", "positive")]
    assert [e["name"] for e in events if e["event"] == "action"] == ["action_mark_resolved", "action_listen"]
    assert slot_values(rasa, wa_id)["bot_answer_count"] == 0.0
    # Rasa sends a turn's replies before it saves the turn, so a reply would be in the sandbox by now.
    assert len(rasa.sandbox.business_messages(wa_id)) == 1


def test_a_thumbs_down_reaction_is_answered_like_no(rasa):
    wa_id = new_wa_id()
    [answer] = ask(rasa, wa_id, "do you ship to dubai?")
    react(rasa, wa_id, answer["id"], THUMBS_DOWN)
    replies = rasa.sandbox.wait_for_business(wa_id, at_least=2, timeout=30)
    assert replies[-1]["content"]["text"]["body"].startswith("Sorry about that.")


def test_a_typed_thumbs_up_gets_a_short_reply_and_is_not_handed_off(rasa):
    wa_id = new_wa_id()
    ask(rasa, wa_id, "is cod available?")
    replies = ask(rasa, wa_id, THUMBS_UP)
    assert replies[-1]["content"]["text"]["body"] == GLAD_TO_HELP
    assert slot_values(rasa, wa_id).get("escalation_reason") is None


def test_a_reaction_to_the_customers_own_message_is_not_passed_to_the_bot(rasa):
    wa_id = new_wa_id()
    question = rasa.sandbox.customer_says(wa_id, text="is cod available?")
    rasa.sandbox.wait_for_business(wa_id, timeout=30)
    react(rasa, wa_id, question["message_id"], THUMBS_UP)
    ask(rasa, wa_id, "and what about returns?")  # processed after the reaction (one queue per customer)
    # The reply goes out before Rasa saves the turn: wait for the saved message, then look at what came before.
    def saved_texts():
        texts = [e["text"] for e in rasa.user_events(wa_id)]
        return texts if "and what about returns?" in texts else None

    texts = wait_until(saved_texts, timeout=30)
    assert texts, "the second question was never saved in the tracker"
    assert texts == ["is cod available?", "and what about returns?"]  # a new customer: nothing else, no reaction
