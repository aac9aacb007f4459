"""Hand-off to the human inbox — the end of all four escalation patterns.

`action_handoff` works out why it was called (pattern), tells the inbox (inbox/API.md), tells the
customer who will reply and when (messages in escalation.yml), records the hand-off in slots
(actions/CONTRACT.md) and pauses the conversation so the bot stays silent until an agent resolves.

If the inbox cannot be reached the customer still gets an honest message and the conversation is still
paused: the inbox picks the hand-off up later from Rasa's event stream (same `handoff_id`).

One exception, for nlu_fallback only: a short fragment right after a knowledge-base answer that the
elliptical follow-up rule answers from the entry just answered is answered instead, and counted like any
answer (actions/answers.py `fallback_follow_up`, escalation.yml
`knowledge_base.elliptical_follow_ups.rescue_fallbacks`). Patterns 2, 3 and 4 are never answered.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import conversation
from actions.handoff_contract import handoff_id_for_message
from actions.in_process import require_action_server
from actions.inbox_client import HandoffAccepted, HandoffFailed, InboxClient
from actions.privacy import mask_text, masked
from actions.settings import EscalationSettings, settings
from components.phrases import tokenize

logger = logging.getLogger(__name__)

_SUMMARY_LABELS = {
    "low_confidence": "Bot was not confident it could answer",
    "customer_request": "Customer asked for a person",
    "unresolved_turns": "Not resolved after {limit} bot answers",
}


@dataclass
class Escalation:
    reason: str
    topic: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    priority: str = "normal"


NLU_FALLBACK = "nlu_fallback"


def _confident_topic_among_topics(tracker: Tracker, config: EscalationSettings) -> Optional[str]:
    """The top intent when the NLU fell back only because two pattern-3 topics were too close to call.

    FallbackClassifier answers nlu_fallback both below its threshold and when the top two intents are
    within its ambiguity_threshold. "box dirty and crushed 😡" (complaint vs urgent_problem) is the
    second kind: a person is due either way, so the first topic routes it instead of low_confidence.
    The fallback entry's confidence is the threshold (Rasa sets it so); the top intent must reach it.
    """
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    fallback = next((e for e in ranking if e.get("name") == NLU_FALLBACK), None)
    ranked = [e for e in ranking if e.get("name") != NLU_FALLBACK]
    if fallback is None or len(ranked) < 2:
        return None
    first, second = ranked[0], ranked[1]
    if first.get("name") in config.topics and second.get("name") in config.topics:
        if float(first.get("confidence") or 0.0) >= float(fallback.get("confidence") or 1.0):
            return first.get("name")
    return None


def decide_escalation(
    tracker: Tracker, config: EscalationSettings, reason: Optional[str] = None, intent: Optional[str] = None
) -> Escalation:
    """Which pattern fired, from the latest message and the slots (an explicit `reason` wins; an explicit `intent`,
    a topic an action worked out from the conversation, stands for the latest message's)."""
    intent = intent or conversation.latest_intent(tracker)
    if intent == NLU_FALLBACK:
        intent = _confident_topic_among_topics(tracker, config) or intent
    route = config.topics.get(intent or "")
    if reason is None:
        if intent == config.human_request_intent:
            reason = "customer_request"
        elif route is not None:
            reason = "topic"
        elif tracker.get_slot("turn_limit_reached"):
            reason = "unresolved_turns"
        else:
            reason = "low_confidence"
    escalation = Escalation(reason=reason)
    if reason == "topic" and route is not None:
        escalation.topic = route.topic
        escalation.tags = list(route.tags)
        escalation.priority = route.priority
    if config.urgent_markers.find(tokenize(conversation.latest_user_text(tracker))):
        if "urgent" not in escalation.tags:
            escalation.tags.append("urgent")
        escalation.priority = "urgent"
    return escalation


def handoff_id_for(tracker: Tracker) -> str:
    """Derived from the message that triggered it (contracts/handoff.yml `handoff_id`), so a retried action,
    and the connector's hand-off after this action died, reuse the same id."""
    return handoff_id_for_message(
        tracker.sender_id, conversation.latest_user_timestamp(tracker), conversation.latest_user_text(tracker)
    )


def summary(tracker: Tracker, escalation: Escalation, config: EscalationSettings) -> str:
    if escalation.reason == "topic":
        label = f"{(escalation.topic or 'topic').capitalize()} hand-off"
    else:
        label = _SUMMARY_LABELS[escalation.reason].format(limit=config.turn_limit)
    text = conversation.latest_user_text(tracker).strip()
    line = f'{label}: "{text}"' if text else label
    return line[:500]


def customer(tracker: Tracker) -> Dict[str, Any]:
    """The inbox's customer block; the phone (wa_id) may be absent for WhatsApp users Meta identifies by
    their business-scoped user id (then `whatsapp_id` is the conversation id, i.e. that id)."""
    metadata = conversation.whatsapp_metadata(tracker)
    extra = {"bsuid": metadata.get("user_id"), "username": metadata.get("username")}
    return {**conversation.customer(tracker), **{key: value for key, value in extra.items() if value}}


def build_payload(
    tracker: Tracker, escalation: Escalation, handoff_id: str, config: EscalationSettings
) -> Dict[str, Any]:
    return {
        "handoff_id": handoff_id,
        "conversation_id": tracker.sender_id,
        "channel": tracker.get_latest_input_channel() or "rest",
        "customer": customer(tracker),
        "reason": escalation.reason,
        "topic": escalation.topic,
        "tags": escalation.tags,
        "priority": escalation.priority,
        "summary": summary(tracker, escalation, config),
        "order_numbers": conversation.order_numbers(tracker),
        "transcript": conversation.transcript(tracker.events),
        "requested_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
    }


def customer_message(
    config: EscalationSettings, escalation: Escalation, accepted: Optional[HandoffAccepted]
) -> str:
    """The pattern's intro plus who replies and when. Never "transferring you"."""
    intro = config.intro(escalation.reason, escalation.topic)
    messages = config.messages
    if accepted is None:
        ending = messages["inbox_unreachable"].format(eta=config.default_eta_text)
    elif accepted.status == "assigned":
        ending = messages["assigned"].format(
            agent=accepted.agent_first_name,
            pronoun_will=f"{accepted.agent_pronoun}'ll",
            eta=accepted.eta_text,
        )
    else:
        ending = messages["queued"].format(eta=accepted.eta_text)
    return f"{intro} {ending}".strip()


async def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: Optional[str] = None, intent: Optional[str] = None
) -> List[EventType]:
    """Everything a hand-off does; also used by actions that hand off themselves (e.g. no KB match, a go-ahead
    with the topic of the answer it follows: `intent`)."""
    # The inbox, its token and its retries are the action server's: inside the Rasa process this stops the
    # action, and Rasa runs it there instead (connectors/in_process_actions.py).
    require_action_server("hand-off")
    config = settings()
    escalation = decide_escalation(tracker, config, reason, intent)
    handoff_id = handoff_id_for(tracker)
    payload = build_payload(tracker, escalation, handoff_id, config)
    accepted: Optional[HandoffAccepted] = None
    client = InboxClient.from_env(config.inbox_timeout_seconds, config.inbox_attempts)
    if client is None:
        logger.warning("INBOX_URL is not set: hand-off %s goes to the inbox via the event stream only", handoff_id)
    else:
        try:
            accepted = await client.create_handoff(payload)
        except HandoffFailed as error:
            logger.error(
                "hand-off %s not accepted by the inbox (%s); pausing anyway", handoff_id, mask_text(error.reason)
            )
    # The customer's id in full only at DEBUG (issue 13: no phone numbers in INFO logs).
    logger.info(
        "hand-off %s: conversation=%s reason=%s topic=%s delivered=%s",
        handoff_id, masked(tracker.sender_id), escalation.reason, escalation.topic, accepted is not None,
    )
    logger.debug("hand-off %s: conversation=%s", handoff_id, tracker.sender_id)
    dispatcher.utter_message(text=customer_message(config, escalation, accepted))
    details = {
        "tags": escalation.tags,
        "priority": escalation.priority,
        "summary": payload["summary"],
        "order_numbers": payload["order_numbers"],
        "delivered_to_inbox": accepted is not None,
        "assignee": accepted.agent_first_name if accepted else None,
    }
    events: List[EventType] = [
        SlotSet("escalation_reason", escalation.reason),
        SlotSet("escalation_topic", escalation.topic),
        SlotSet("handoff_id", handoff_id),
        SlotSet("handoff_details", details),
    ]
    if (tracker.active_loop or {}).get("name"):
        # Safety net: rules end the order form before handing off, but a hand-off from a fallback
        # inside a form must not leave the form waiting for when the bot is resumed.
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    events.append(ConversationPaused())
    return events


class ActionHandoff(Action):
    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        if conversation.latest_intent(tracker) == NLU_FALLBACK:
            # A short fragment right after a knowledge-base answer may be a follow-up the knowledge base
            # answers (escalation.yml knowledge_base.elliptical_follow_ups.rescue_fallbacks); imported
            # here because actions.answers imports this module.
            from actions.answers import answer_fallback_follow_up

            answered = await answer_fallback_follow_up(dispatcher, tracker)
            if answered is not None:
                return answered
        return await hand_off(dispatcher, tracker)
