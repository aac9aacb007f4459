"""Session start that keeps a handed-off conversation paused.

Rasa starts a new session after `session_expiration_time` (domain.yml) and a new session normally
un-pauses the conversation — the bot would answer a customer who is waiting for an agent. This action
starts the session as Rasa does (carrying slots over) and pauses it again if the old one was paused.
Only the inbox's resume (actions/CONTRACT.md) hands the conversation back to the bot.

A slot still at its domain `initial_value` is not carried over: the new session starts with that value
anyway (Rasa's `SessionStarted` resets every slot to it), so the SlotSet changed nothing but cost an event
in the tracker store, on the broker and in every later action call (four per new customer: the answer count,
the turn limit and the order form's two). Rasa's own session start carries only slots that were set; the
policies featurise the value, not whether it was set (tests/integration/test_session_start_events.py).
`session_started_metadata`, which Rasa sets from the first message's metadata just before this action, is
carried over as Rasa does, so it stays readable in the session.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


def initial_values(domain: DomainDict) -> Dict[Text, Any]:
    """The slots with an initial value, from the domain Rasa sends with the call (none if it sent none)."""
    slots = domain.get("slots") or {}
    return {
        name: spec["initial_value"]
        for name, spec in slots.items()
        if isinstance(spec, dict) and spec.get("initial_value") is not None
    }


def is_initial(value: Any, name: Text, initial: Dict[Text, Any]) -> bool:
    """True if the slot holds its initial value (0.0 is the initial 0; False is not the initial 0)."""
    if name not in initial:
        return False
    start = initial[name]
    scalar = type(value) in (bool, int, float, str)  # a list or dict is always carried over
    return scalar and isinstance(value, bool) == isinstance(start, bool) and value == start


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        events: List[EventType] = [SessionStarted()]
        if domain.get("session_config", {}).get("carry_over_slots_to_new_session", True):
            initial = initial_values(domain)
            events += [
                SlotSet(name, value)
                for name, value in tracker.current_slot_values().items()
                if value is not None and name != "requested_slot" and not is_initial(value, name, initial)
            ]
        if tracker.is_paused():
            events.append(ConversationPaused())
        events.append(ActionExecuted("action_listen"))
        return events
