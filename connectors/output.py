"""Rasa output channel for WhatsApp, and the sender that logs every send."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text
from urllib.parse import urlparse

from rasa.core.channels.channel import OutputChannel
from whatsapp_cloud import BSUID_NOT_SUPPORTED, OUTSIDE_SERVICE_WINDOW, SendResult

from connectors.customer_identities import CustomerIdentities
from connectors.graph_api import GraphApiClient
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
from connectors.privacy import mask_user_id
from connectors.store import WhatsAppStore

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"
# BSUID_NOT_SUPPORTED (131062), Meta: "Business-scoped User ID recipients are not supported for this
# message" (e.g. one-tap, zero-tap and copy-code authentication templates need a phone number).


class MessageSender:
    """Sends Graph API messages and writes each outcome to the outbound log."""

    def __init__(self, client: GraphApiClient, store: WhatsAppStore) -> None:
        self._client = client
        self._store = store
        self._identities = CustomerIdentities(store)

    async def send(self, recipient_id: str, message: OutboundMessage, send_key: Optional[str] = None) -> SendResult:
        """With `send_key` (connectors/send_keys.py) the key is settled from the final outcome in the
        outbound log's transaction."""
        result = await self._send_and_log(recipient_id, message, send_key, final=False)
        if result.error is not None and result.error.code == BSUID_NOT_SUPPORTED:
            result = await self._send_to_phone_instead(recipient_id, message, result, send_key)
        return result

    async def _send_to_phone_instead(
        self, recipient_id: str, message: OutboundMessage, failed: SendResult, send_key: Optional[str]
    ) -> SendResult:
        """131062: this message cannot go to a BSUID. If the customer's phone has become known since
        the conversation started, send it there; otherwise say clearly why it was not sent."""
        user_id = message.body.get("recipient")
        phone = None
        if user_id and "to" not in message.body:
            try:
                phone = await self._store.run(self._identities.phone_for, str(user_id))
            except Exception:
                logger.exception("Could not look up a phone number for %s", mask_user_id(recipient_id))
        if phone is None:
            logger.error(
                "WhatsApp %s message to %s not sent: code %s (%s) - this kind of message cannot be sent to a "
                "business-scoped user id and the customer's phone number is not known. Reach them with a "
                "message type that allows BSUID recipients (text, interactive, most templates).",
                message.kind, mask_user_id(recipient_id), BSUID_NOT_SUPPORTED, failed.error.title,
            )
            if send_key is not None:  # the outcome is final now: not sent (the log has it already)
                await self._settle(send_key, failed)
            return failed
        logger.warning(
            "WhatsApp %s message to %s: code %s (BSUID recipient not supported for it); sending it to the "
            "customer's phone %s instead",
            message.kind, mask_user_id(recipient_id), BSUID_NOT_SUPPORTED, mask_user_id(phone),
        )
        return await self._send_and_log(recipient_id, OutboundMessage(message.kind, {**message.body, "to": phone}), send_key)

    async def _send_and_log(
        self, recipient_id: str, message: OutboundMessage, send_key: Optional[str], final: bool = True
    ) -> SendResult:
        result = await self._client.send(message.body)
        if not final and result.error is not None and result.error.code == BSUID_NOT_SUPPORTED:
            # Not final: it may go to the customer's phone next; the key is settled by what happens then
            # (settling it `failed` now would let a retried turn send it while that send is under way).
            send_key = None
        if not result.ok and result.error is not None and result.error.code != BSUID_NOT_SUPPORTED:
            error = result.error
            if error.code == OUTSIDE_SERVICE_WINDOW:
                logger.error(
                    "WhatsApp %s message to %s not sent: code %s (%s) - the customer's last message is "
                    "more than 24 hours old, only an approved template can reach them now. %s",
                    message.kind, mask_user_id(recipient_id), error.code, error.title, error.details or "",
                )
            else:
                logger.error(
                    "WhatsApp %s message to %s not sent after %d attempt(s): HTTP %s, code %s (%s). %s",
                    message.kind, mask_user_id(recipient_id), result.attempts, result.http_status,
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
                send_key=send_key,
                uncertain=result.uncertain,
            )
        except Exception:  # the message went out (or not) either way; don't fail the turn
            logger.exception("Could not write the outbound log entry for %s", mask_user_id(recipient_id))
            if send_key is not None:  # nothing of that transaction was written: the outcome on its own
                await self._settle(send_key, result)
        return result

    async def _settle(self, send_key: str, result: SendResult) -> None:
        try:
            await self._store.run(self._store.settle_send_key, send_key, result.wamid, result.uncertain)
        except Exception:  # stays `sending` in the store; a send Meta accepted is remembered in the process
            logger.exception("Could not record the outcome of WhatsApp message %s", send_key)
            from connectors.send_keys import remember_unsaved_outcome  # send_keys imports this module

            remember_unsaved_outcome(send_key, result.wamid, result.uncertain)

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
            logger.error(
                "Custom WhatsApp message for %s is not a JSON object: %r", mask_user_id(recipient_id), json_message
            )
            return
        await self._send_all(recipient_id, [custom_message(recipient_id, json_message)])

