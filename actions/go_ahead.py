"""A yes with an order number, right after an answer that invites one.

The cancellation answer tells the customer to "just ask us here on WhatsApp with your order number". A customer
who then writes "ok do it for #53318 then" has asked for the cancellation; answered "Great! Anything else?" like
any yes, they wait for a cancellation nobody was told about (hold-outs v26 and v27, session 33).

`action_go_ahead` runs on a yes (affirm) that carries an order number (data/rules/chitchat.yml). When the bot's
previous reply was an answer from an entry listed in escalation.yml `knowledge_base.go_ahead`, the conversation is
handed off with that entry's topic (pattern 3: a person does what the answer offered). Otherwise it is the plain yes
it looks like: "Great! Anything else I can help with?", and pattern 4's count starts again.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import conversation
from actions.handoff import hand_off
from actions.resolution import reset_answers
from actions.settings import EscalationSettings, settings

logger = logging.getLogger(__name__)


def go_ahead_topic(tracker: Tracker, config: EscalationSettings) -> Optional[str]:
    """The topic intent the customer's yes asks for: the `go_ahead` intent of the entry the bot just answered from,
    when the message carries an order number; else None."""
    previous = conversation.previous_kb_answer(tracker)
    if previous is None:
        return None
    intent = config.kb_go_ahead.get(previous[1])
    if intent is None or conversation.latest_order_number(tracker) is None:
        return None
    return intent


class ActionGoAhead(Action):
    def name(self) -> Text:
        return "action_go_ahead"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        intent = go_ahead_topic(tracker, settings())
        if intent is not None:
            logger.info("a yes with an order number right after an answer that invites one: handed off as %s", intent)
            return await hand_off(dispatcher, tracker, intent=intent)
        dispatcher.utter_message(response="utter_glad_to_help")
        return reset_answers()
