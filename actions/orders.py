"""Order status: collect the order number (order_status_form), then answer honestly.

The bot has no access to the order system, so it never makes up a status: it confirms the order number
it noted and sends the knowledge base's order-tracking answer verbatim. The number is kept in the
`order_number` slot, so an agent sees it if the customer is handed off later.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import conversation
from actions.answers import knowledge_base
from actions.resolution import count_answer
from actions.settings import action_messages, settings

ORDER_TRACKING_ENTRY = "order_tracking"


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_order_status_form"

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        # While the form asks for it, a bare "2840" is an order number too (the entity rules need "#"
        # or the word "order" to be safe elsewhere).
        if tracker.get_slot("requested_slot") != "order_number":
            return {}
        number = conversation.normalize_order_number(conversation.latest_user_text(tracker))
        return {"order_number": number} if number else {}

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        # Not a number: leave the slot empty and the form asks again (the question says what we need).
        return {"order_number": conversation.normalize_order_number(slot_value)}


class ActionAskOrderNumber(Action):
    """The form's question, from messages.yml."""

    def name(self) -> Text:
        return "action_ask_order_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=action_messages()["order_status_form"]["ask_order_number"])
        return []


class ActionAnswerOrderStatus(Action):
    def name(self) -> Text:
        return "action_answer_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        # utter_order_number_noted ("Thanks, I've noted order #2840…") comes first, from the rule.
        entry = knowledge_base().entry(ORDER_TRACKING_ENTRY)
        dispatcher.utter_message(text=entry.reply_text(cite_link=settings().kb_cite_links))
        return count_answer(tracker)
