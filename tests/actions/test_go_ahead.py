"""action_go_ahead: a yes with an order number right after the cancellation answer (which invites the number) asks for
the cancellation and is handed off as one; after any other answer it is a plain yes (escalation.yml
knowledge_base.go_ahead)."""
from __future__ import annotations

import dataclasses

import pytest
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from actions import go_ahead
from actions.answers import ActionAnswerQuestion
from actions.go_ahead import ActionGoAhead
from actions.settings import SettingsError, parse_settings, settings
from tests.actions.conftest import bot_event, make_tracker, slots_of, user_event


async def answered(question: str) -> list:
    """The events of a turn in which the bot answered `question` from the knowledge base."""
    first = user_event(question, "ask_question")
    events = await ActionAnswerQuestion().run(CollectingDispatcher(), make_tracker([first]), {})
    assert slots_of(events)["kb_match"]["answered"] is True
    return [first, bot_event("(the entry's answer)"), *events]


def yes_with_number(text: str = "ok please go ahead with #61524 then") -> dict:
    return user_event(text, "affirm", entities=[{"entity": "order_number", "value": "#61524"}])


async def test_a_yes_with_the_number_after_the_cancellation_answer_hands_off_as_a_cancellation(kb, inbox, dispatcher):
    history = await answered("how do i cancel my order")
    assert slots_of(history)["kb_match"]["entry_id"] == "cancellation"
    events = await ActionGoAhead().run(dispatcher, make_tracker([*history, yes_with_number()]), {})

    slots = slots_of(events)
    assert slots["escalation_reason"] == "topic" and slots["escalation_topic"] == "cancellation"
    assert events[-1] == ConversationPaused()
    [payload] = inbox.requests
    assert payload["topic"] == "cancellation" and "#61524" in payload["order_numbers"]
    assert "Great!" not in dispatcher.messages[0].get("text", "")


async def test_after_another_answer_the_same_yes_is_a_plain_yes(kb, inbox, dispatcher):
    history = await answered("how long does delivery take to pune")
    assert slots_of(history)["kb_match"]["entry_id"] != "cancellation"
    events = await ActionGoAhead().run(dispatcher, make_tracker([*history, yes_with_number()]), {})

    assert [m.get("response") for m in dispatcher.messages] == ["utter_glad_to_help"]
    assert slots_of(events) == {"bot_answer_count": 0.0, "turn_limit_reached": False}
    assert inbox.requests == [] and ConversationPaused() not in events


async def test_a_yes_without_a_number_after_the_cancellation_answer_is_a_plain_yes(kb, inbox, dispatcher):
    history = await answered("how do i cancel my order")
    events = await ActionGoAhead().run(dispatcher, make_tracker([*history, user_event("ok", "affirm")]), {})
    assert [m.get("response") for m in dispatcher.messages] == ["utter_glad_to_help"]
    assert inbox.requests == [] and ConversationPaused() not in events


async def test_with_go_ahead_off_the_yes_after_the_cancellation_answer_is_a_plain_yes(kb, inbox, dispatcher,
                                                                                    monkeypatch):
    monkeypatch.setattr(go_ahead, "settings", lambda: dataclasses.replace(settings(), kb_go_ahead={}))
    history = await answered("how do i cancel my order")
    await ActionGoAhead().run(dispatcher, make_tracker([*history, yes_with_number()]), {})
    assert [m.get("response") for m in dispatcher.messages] == ["utter_glad_to_help"]
    assert inbox.requests == []


def test_go_ahead_must_name_a_topic_intent(tmp_path):
    import yaml

    document = yaml.safe_load(settings().source.read_text(encoding="utf-8"))
    document["knowledge_base"]["go_ahead"] = {"cancellation": "affirm"}
    with pytest.raises(SettingsError, match="go_ahead.cancellation: 'affirm' is not a topic intent"):
        parse_settings(document, tmp_path / "escalation.yml")


def test_every_go_ahead_entry_is_a_knowledge_base_entry(kb):
    assert set(settings().kb_go_ahead) <= {entry.id for entry in kb.active_entries}
