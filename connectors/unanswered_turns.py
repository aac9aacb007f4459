"""A customer message the bot neither answered nor handed off is a failure, not a silence.

When the action server is down (or an action crashes), Rasa logs the error, drops that
action's events and carries on: the customer hears nothing. Every turn of this assistant
either says something or pauses the conversation for a human, so the connector checks each
turn after Rasa has handled it. If nothing was said and the conversation is not paused, it

- tells the customer honestly that something went wrong and when a teammate will reply
  (`messages.bot_unavailable` in escalation.yml), and
- hands the conversation off the same way `action_handoff` does, through the tracker: the
  hand-off slots (reason `bot_unavailable`) and a `ConversationPaused` event. The inbox picks
  the hand-off up from Rasa's event stream (inbox/README.md, "Event stream"), so this works
  without the action server and without the connector knowing the inbox.

The same fallback ends a message the connector could not get handled at all within its retry
budget (tracker store, lock store or Rasa failing for minutes, connectors/processing.py):
`hand_off_unprocessed` records the customer's message if the tracker lacks it, then the hand-off.

The event contract is the one in actions/CONTRACT.md; its reasons and event order are in
contracts/handoff.yml (tests/connector/test_handoff_contract.py checks this module against it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)

from connectors.handoff_contract import handoff_id_for_message
from connectors.privacy import mask_user_id

logger = logging.getLogger(__name__)

REASON = "bot_unavailable"
TAGS = ["bot_unavailable"]
PRIORITY = "high"  # the customer already waited for an answer that never came
SUMMARY_LIMIT = 300


@dataclass(frozen=True)
class UnansweredTurn:
    """A customer message after which the bot said nothing and did not pause."""

    user_text: str
    failed_actions: List[str]
    # contracts/handoff.yml `handoff_id`: the id an action's hand-off for this message has. If the action
    # server died after its hand-off reached the inbox, the inbox recognises this one and keeps one.
    handoff_id: str


def find_unanswered_turn(
    events: Sequence[Event], message_id: Optional[str], paused: bool, sender_id: str
) -> Optional[UnansweredTurn]:
    """Looks at the events after the customer's message `message_id`.

    None when the turn is fine: the bot said something, the conversation is paused (handed off
    or a human has it), or the message is not in the tracker (nothing we can reason about).
    """
    if paused:
        return None
    start = None
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered) and event.message_id == message_id:
            start = index
            break
    if start is None:
        return None
    actions: List[str] = []
    for event in events[start + 1:]:
        if isinstance(event, (BotUttered, ConversationPaused)):
            return None
        if isinstance(event, (Restarted, SessionStarted)):
            return None  # "/restart" or "/session_start": Rasa reset the conversation on purpose
        if isinstance(event, UserUttered):
            return None  # a later message exists: its own turn is checked on its own
        if isinstance(event, ActionExecuted) and event.action_name not in (None, "action_listen"):
            actions.append(event.action_name)
    user = events[start]
    return UnansweredTurn(
        user_text=user.text or "", failed_actions=actions,
        handoff_id=handoff_id_for_message(sender_id, user.timestamp, user.text),
    )  # fmt: skip


def turn_is_recorded(events: Sequence[Event], message_id: Optional[str]) -> bool:
    """Whether the tracker holds the customer message `message_id` (Rasa saves a turn whole, at its end)."""
    return any(isinstance(event, UserUttered) and event.message_id == message_id for event in events)


def handoff_events(turn: UnansweredTurn, customer_message: str, *, active_loop: Optional[str]) -> List[Event]:
    """The events `action_handoff` would have written, plus what the customer was told."""
    text = " ".join(turn.user_text.split())
    if len(text) > SUMMARY_LIMIT:
        text = text[: SUMMARY_LIMIT - 1] + "…"
    details: Dict[str, Any] = {
        "tags": list(TAGS),
        "priority": PRIORITY,
        "summary": f"The bot could not answer (assistant error) — customer wrote: {text}",
        "order_numbers": [],
        "delivered_to_inbox": False,  # the inbox gets it from the event stream
        "assignee": None,
        "failed_actions": turn.failed_actions,
    }
    events: List[Event] = [
        BotUttered(customer_message, metadata={"whatsapp_auto_reply": REASON}),
        SlotSet("escalation_reason", REASON),
        SlotSet("escalation_topic", None),
        SlotSet("handoff_id", turn.handoff_id),
        SlotSet("handoff_details", details),
    ]
    if active_loop:
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    events.append(ConversationPaused())
    return events


async def hand_off_unprocessed(agent: Any, message: UserMessage, customer_message: str, error: str) -> bool:
    """Writes the customer's message (unless the tracker has it) and the `bot_unavailable` hand-off
    into the tracker, under the conversation's lock. Raises when the lock or tracker store still
    fails (the caller tries again). Returns whether the customer should be told: not when a person
    already has the conversation (they will answer; the message is in the transcript now)."""
    async with agent.lock_store.lock(message.sender_id):
        tracker = await agent.tracker_store.get_or_create_tracker(message.sender_id)
        if not turn_is_recorded(tracker.events, message.message_id):
            tracker.update(
                UserUttered(
                    text=message.text,
                    input_channel=message.input_channel,
                    message_id=message.message_id,
                    metadata=message.metadata,
                )
            )
        paused = tracker.is_paused()
        if not paused:
            user = next(event for event in reversed(tracker.events)
                        if isinstance(event, UserUttered) and event.message_id == message.message_id)  # fmt: skip
            turn = UnansweredTurn(
                user_text=message.text or "", failed_actions=[],
                handoff_id=handoff_id_for_message(message.sender_id, user.timestamp, user.text),
            )  # fmt: skip
            active_loop = (tracker.active_loop or {}).get("name")
            tracker.update_with_events(handoff_events(turn, customer_message, active_loop=active_loop), agent.domain)
        await agent.tracker_store.save(tracker)
    logger.error(
        "Message %s of %s could not be handled (%s); %s",
        message.message_id, mask_user_id(message.sender_id), error,
        "recorded for the person who has the conversation" if paused else "handed off as bot_unavailable",
    )
    return not paused
