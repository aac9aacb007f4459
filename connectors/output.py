"""Rasa output channel for WhatsApp, and the sender that logs every send."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text
from urllib.parse import urlparse

from rasa.core.channels.channel import OutputChannel

from connectors.graph_api import OUTSIDE_SERVICE_WINDOW, GraphApiClient, SendResult
from connectors.outbound_messages import (
    ROW_ID_LIMIT,
    Choice,
    OutboundMessage,
    choice_messages,
    custom_message,
    document_message,
    image_message,
    text_messages,
)
from connectors.store import WhatsAppStore

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"


class MessageSender:
    """Sends Graph API messages and writes each outcome to the outbound log."""

    def __init__(self, client: GraphApiClient, store: WhatsAppStore) -> None:
        self._client = client
        self._store = store

    async def send(self, recipient_id: str, message: OutboundMessage) -> SendResult:
        result = await self._client.send(message.body)
        if not result.ok and result.error is not None:
            error = result.error
            if error.code == OUTSIDE_SERVICE_WINDOW:
                logger.error(
                    "WhatsApp %s message to %s not sent: code %s (%s) - the customer's last message is "
                    "more than 24 hours old, only an approved template can reach them now. %s",
                    message.kind, recipient_id, error.code, error.title, error.details or "",
                )
            else:
                logger.error(
                    "WhatsApp %s message to %s not sent after %d attempt(s): HTTP %s, code %s (%s). %s",
                    message.kind, recipient_id, result.attempts, result.http_status,
                    error.code, error.title, error.details or "",
                )
        try:
            await self._store.run(
                self._store.record_outbound,
                recipient_id=recipient_id,
                kind=message.kind,
                request=message.body,
                wamid=result.wamid,
                http_status=result.http_status,
                error_code=result.error.code if result.error else None,
                error_title=result.error.title if result.error else None,
                attempts=result.attempts,
            )
        except Exception:  # the message went out (or not) either way; don't fail the turn
            logger.exception("Could not write the outbound log entry for %s", recipient_id)
        return result

    async def reply_id_for(self, payload: str, limit: int) -> str:
        """WhatsApp caps reply ids; longer payloads are stored and sent as a short key."""
        if len(payload) <= limit:
            return payload
        return await self._store.run(self._store.remember_reply_option, payload)


class WhatsAppOutput(OutputChannel):
    """Delivery problems are logged and recorded, never raised into Rasa's turn."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(self, sender: MessageSender) -> None:
        self._sender = sender
        # One output channel per turn: lets the connector see, for free, that the bot answered.
        self.messages_sent = 0

    async def _send_all(self, recipient_id: str, messages: List[OutboundMessage]) -> None:
        for message in messages:
            self.messages_sent += 1
            await self._sender.send(recipient_id, message)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._send_all(recipient_id, text_messages(recipient_id, text))

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        # Link buttons cannot be reply buttons: their links go into the text.
        links = [button for button in buttons if button.get("url")]
        replies = [button for button in buttons if not button.get("url")]
        if links:
            text = "\n".join([text or "", *(f"{b.get('title', '')}: {b['url']}" for b in links)]).strip()
        choices = []
        for button in replies:
            title = str(button.get("title") or button.get("payload") or "").strip()
            payload = str(button.get("payload") or title)
            # The list row id limit (the smaller one) fits whichever form the options take.
            choices.append(Choice(reply_id=await self._sender.reply_id_for(payload, ROW_ID_LIMIT), title=title))
        await self._send_all(recipient_id, choice_messages(recipient_id, text, choices))

    async def send_quick_replies(
        self, recipient_id: Text, text: Text, quick_replies: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._send_all(recipient_id, [image_message(recipient_id, image)])

    async def send_attachment(self, recipient_id: Text, attachment: Any, **kwargs: Any) -> None:
        if isinstance(attachment, str) and urlparse(attachment).scheme in ("http", "https"):
            await self._send_all(recipient_id, [document_message(recipient_id, attachment)])
        else:
            await self.send_text_message(recipient_id, f"Attachment: {attachment}")

    async def send_elements(self, recipient_id: Text, elements: List[Dict[Text, Any]], **kwargs: Any) -> None:
        for element in elements:
            text = "\n".join(part for part in (element.get("title"), element.get("subtitle")) if part)
            buttons = element.get("buttons") or []
            if element.get("image_url"):
                await self.send_image_url(recipient_id, element["image_url"])
            if buttons:
                await self.send_text_with_buttons(recipient_id, text, buttons)
            elif text:
                await self.send_text_message(recipient_id, text)

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        if not isinstance(json_message, dict):
            logger.error("Custom WhatsApp message for %s is not a JSON object: %r", recipient_id, json_message)
            return
        await self._send_all(recipient_id, [custom_message(recipient_id, json_message)])

