"""How the connector hands messages to Rasa, inside the Rasa server process.

Text and button replies go through Rasa's own `on_new_message` callback (NLU, policies,
actions, lock store: the same path as every other channel). So do reactions to the bot's messages,
as the emoji with `{"whatsapp": {"type": "reaction", ...}}` metadata, unless a human has the
conversation.

Messages the bot cannot read (image, audio, ...) are written straight into the tracker with
the agent's processor - a `user` event and, unless a human has the conversation, the polite
`bot` reply - without predicting anything. This is what Rasa's HTTP API
`POST /conversations/<id>/tracker/events` does internally (same lock, same session handling,
same tracker store and event broker), minus an HTTP round trip to ourselves and the need
for the connector to hold `RASA_TOKEN`.

After Rasa has handled a text message, a turn in which the bot said nothing and did not hand
off (the action server is down, an action crashed) is answered honestly and handed off
(connectors/unanswered_turns.py).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Optional, Protocol

from rasa.core.channels.channel import OutputChannel, UserMessage

from connectors.handoff_contract import bot_unavailable_message
from connectors.inbound import InboundMessage
from connectors.privacy import mask_user_id
from connectors.unanswered_turns import (
    find_unanswered_turn,
    hand_off_unprocessed,
    handoff_events,
    turn_is_recorded,
)

logger = logging.getLogger(__name__)

UNREADABLE_MESSAGE_REPLY = (
    "Thanks! I can only read text for now — could you type your question? "
    "If it's about something in what you sent, our team can see it when they join."
)


class Conversations(Protocol):
    def is_ready(self) -> bool:
        """True when messages can be handled (e.g. a model is loaded)."""

    async def deliver(self, message: UserMessage) -> None:
        """Let the bot handle a user message (it replies through the message's output channel)."""

    async def deliver_again(self, message: UserMessage) -> None:
        """`deliver` after it failed: if the tracker already holds the message (the turn was saved and
        something failed after it, e.g. releasing the lock), only check the turn was answered."""

    async def record_unreadable(self, message: InboundMessage, output_channel: OutputChannel) -> bool:
        """Record a message the bot cannot read; send the polite reply unless a human has
        the conversation. Returns whether the reply was sent."""

    async def record_survey_answer(self, message: InboundMessage, role: str, output_channel: OutputChannel) -> None:
        """Record a CSAT answer or comment (connectors/satisfaction.py) in the tracker with
        `{"whatsapp": {"csat": role, ...}}` metadata, predicting nothing and replying nothing."""

    async def hand_off_unprocessed(self, message: UserMessage, error: str) -> None:
        """The message could not be handled within the retry budget: record it, hand the conversation
        off (bot_unavailable) and tell the customer (connectors/unanswered_turns.py). Raises if the
        tracker cannot be written; the customer is told anyway."""

    async def react(self, message: UserMessage) -> bool:
        """Let the bot handle a reaction to one of its messages, unless a human has the conversation
        (then nothing is recorded). No reply is expected. Returns whether the bot got it."""


class RasaConversations:
    def __init__(
        self,
        app: Any,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        bot_unavailable_text: Optional[str] = None,
    ) -> None:
        self._app = app
        self._on_new_message = on_new_message
        if bot_unavailable_text is None:
            bot_unavailable_text = bot_unavailable_message()  # escalation.yml: the designer's message
        self._bot_unavailable_text = bot_unavailable_text

    def _agent(self) -> Any:
        return getattr(self._app.ctx, "agent", None)

    def is_ready(self) -> bool:
        agent = self._agent()
        # Agent.handle_message silently drops messages when no model is loaded.
        return agent is not None and agent.is_ready()

    async def deliver(self, message: UserMessage) -> None:
        await self._on_new_message(message)
        await self.hand_off_if_unanswered(message)

    async def deliver_again(self, message: UserMessage) -> None:
        tracker = await self._agent().tracker_store.retrieve(message.sender_id)
        if tracker is not None and turn_is_recorded(tracker.events, message.message_id):
            logger.info("WhatsApp message %s of %s is already in Rasa's tracker (a failure or a stopped process came "
                        "after its turn): not run again", message.message_id, mask_user_id(message.sender_id))
            # Running it again would count the message twice (e.g. towards the unanswered-turns limit).
            # Answered turns (the usual case) need no lock: a lock left behind by the failure would
            # otherwise hold this up until it expires.
            if find_unanswered_turn(list(tracker.events), message.message_id, tracker.is_paused(),
                                    message.sender_id) is not None:
                await self.hand_off_if_unanswered(message)
            return
        await self.deliver(message)

    async def hand_off_if_unanswered(self, message: UserMessage) -> bool:
        """Returns whether the turn had gone unanswered (and was handed off now)."""
        if getattr(message.output_channel, "messages_sent", 0):
            return False  # the bot replied through this turn's channel: no need to read the tracker
        agent = self._agent()
        async with agent.lock_store.lock(message.sender_id):
            tracker = await agent.tracker_store.retrieve(message.sender_id)
            if tracker is None:
                return False
            turn = find_unanswered_turn(list(tracker.events), message.message_id, tracker.is_paused(), message.sender_id)
            if turn is None:
                return False
            logger.error(
                "The bot did not answer message %s of %s (actions run: %s); the action server may be "
                "down. Telling the customer and handing the conversation to the inbox.",
                message.message_id, mask_user_id(message.sender_id), ", ".join(turn.failed_actions) or "none",
            )
            active_loop = (tracker.active_loop or {}).get("name")
            tracker.update_with_events(
                handoff_events(turn, self._bot_unavailable_text, active_loop=active_loop), agent.domain
            )
            # Saved before sending: the hand-off must exist even if the send fails.
            await agent.tracker_store.save(tracker)
        await message.output_channel.send_text_message(message.sender_id, self._bot_unavailable_text)
        return True

    async def hand_off_unprocessed(self, message: UserMessage, error: str) -> None:
        try:
            tell = await hand_off_unprocessed(self._agent(), message, self._bot_unavailable_text, error)
        except Exception:
            # Nothing in the tracker yet; the customer still hears (once: the output channel's key).
            await message.output_channel.send_text_message(message.sender_id, self._bot_unavailable_text)
            raise
        if tell:
            await message.output_channel.send_text_message(message.sender_id, self._bot_unavailable_text)

    async def react(self, message: UserMessage) -> bool:
        # A paused conversation belongs to a person: the reaction stays in the connector's store only.
        # (Rasa itself would record it and predict nothing; we keep it out of the transcript as well.)
        tracker = await self._agent().tracker_store.retrieve(message.sender_id)
        if tracker is not None and tracker.is_paused():
            return False
        # A positive reaction is answered with silence on purpose, so the turn is not checked for a
        # missing answer (hand_off_if_unanswered).
        await self._on_new_message(message)
        return True

    async def record_survey_answer(self, message: InboundMessage, role: str, output_channel: OutputChannel) -> None:
        from rasa.shared.core.events import UserUttered

        agent = self._agent()
        metadata = message.rasa_metadata()
        metadata["whatsapp"]["csat"] = role
        async with agent.lock_store.lock(message.wa_id):
            processor = agent.processor
            tracker = await processor.fetch_tracker_and_update_session(message.wa_id, output_channel, metadata)
            tracker.update(
                UserUttered(
                    text=message.text, input_channel=output_channel.name(), message_id=message.message_id, metadata=metadata
                )
            )
            await processor.save_tracker(tracker)

    async def record_unreadable(self, message: InboundMessage, output_channel: OutputChannel) -> bool:
        from rasa.shared.core.events import BotUttered, UserUttered

        agent = self._agent()
        metadata = message.rasa_metadata()
        async with agent.lock_store.lock(message.wa_id):
            processor = agent.processor
            # Same session handling as a text message would get (runs action_session_start
            # for a new or expired session, which re-pauses a handed-off conversation).
            tracker = await processor.fetch_tracker_and_update_session(message.wa_id, output_channel, metadata)
            paused = tracker.is_paused()
            tracker.update(
                UserUttered(
                    text=message.text,
                    input_channel=output_channel.name(),
                    message_id=message.message_id,
                    metadata=metadata,
                )
            )
            if not paused:
                await output_channel.send_text_message(message.wa_id, UNREADABLE_MESSAGE_REPLY)
                tracker.update(
                    BotUttered(UNREADABLE_MESSAGE_REPLY, metadata={"whatsapp_auto_reply": "unreadable_message"})
                )
            await processor.save_tracker(tracker)
        return not paused
