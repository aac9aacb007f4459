"""STOP / START for marketing messages (intent stop_messages).

The NLU pipeline marks opt-in words ("START", "subscribe") and opt-out words ("STOP", "unsubscribe")
as entities (nlp/entity_patterns.yml; a refusal such as "mat bhejo" or "don't send" is an opt-out word too). Opt-in only when the customer used an opt-in word and no
opt-out word; anything else under this intent is treated as STOP, the safe reading.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


class ActionUpdateMarketingConsent(Action):
    def name(self) -> Text:
        return "action_update_marketing_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        # The rule answers with utter_marketing_consent, which reads the slot set here.
        entities = {e.get("entity") for e in (tracker.latest_message or {}).get("entities") or []}
        opted_in = "opt_in" in entities and "opt_out" not in entities
        return [SlotSet("marketing_opt_in", opted_in)]
