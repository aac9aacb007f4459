"""Escalation pattern 4: count bot answers until the customer signals that it helped.

Every answering action adds `count_answer()` to its events. When the count reaches
`unresolved_turns.limit` (escalation.yml), `turn_limit_reached` becomes true and a rule hands off on the
customer's next message, unless that message is a resolution signal (thanks, yes, praise), which runs
`action_mark_resolved` and starts the count again.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.settings import settings


def count_answer(tracker: Tracker) -> List[EventType]:
    count = int(tracker.get_slot("bot_answer_count") or 0) + 1
    events: List[EventType] = [SlotSet("bot_answer_count", float(count))]
    if count >= settings().turn_limit:
        events.append(SlotSet("turn_limit_reached", True))
    return events


def reset_answers() -> List[EventType]:
    return [SlotSet("bot_answer_count", 0.0), SlotSet("turn_limit_reached", False)]


class ActionCountAnswer(Action):
    """Counts a bot answer given by a plain response (e.g. utter_out_of_scope)."""

    def name(self) -> Text:
        return "action_count_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        return count_answer(tracker)


class ActionMarkResolved(Action):
    """The customer signalled resolution (thanks / yes / praise): start counting again."""

    def name(self) -> Text:
        return "action_mark_resolved"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        return reset_answers()
