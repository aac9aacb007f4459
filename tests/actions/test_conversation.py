"""What the knowledge base searches: the question a customer's message carries, not its preamble."""
from __future__ import annotations

from actions import conversation
from tests.actions.conftest import make_tracker, user_event


def with_question(text: str, question: str) -> dict:
    event = user_event(text, "ask_question")
    event["parse_data"]["question"] = question
    return event


def test_a_follow_up_is_searched_without_its_opening():
    tracker = make_tracker([with_question("ok and can I return it if it doesn't fit?", "can I return it if it doesn't fit?")])
    assert conversation.question_text(tracker) == "can I return it if it doesn't fit?"
    assert conversation.latest_user_text(tracker) == "ok and can I return it if it doesn't fit?"  # transcript, summary


def test_a_declined_request_is_searched_without_the_declining_clause():
    tracker = make_tracker([with_question("agent nahi chahiye, bas return policy batao", "bas return policy batao")])
    assert conversation.question_text(tracker) == "bas return policy batao"


def test_any_other_message_is_searched_as_written():
    tracker = make_tracker([user_event("what is your return policy", "ask_question")])
    assert conversation.question_text(tracker) == "what is your return policy"
