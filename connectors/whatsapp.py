"""Rasa input channel for the WhatsApp Cloud API.

Register it in credentials.yml by module path (all settings come from the environment):

    connectors.whatsapp.WhatsAppInput:

Webhook: GET/POST /webhooks/whatsapp/webhook. See connectors/README.md.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors import broker_logs
from connectors.conversations import Conversations, RasaConversations
from connectors.inbound import PayloadError, parse_webhook
from connectors.output import CHANNEL_NAME
from connectors.service import WhatsAppService
from connectors.settings import WhatsAppSettings
from connectors.signature import (
    SIGNATURE_HEADER,
    signature_header_is_well_formed,
    signature_is_valid,
    verify_token_matches,
)
from connectors.store import StoreClosed

logger = logging.getLogger(__name__)

ConversationsFactory = Callable[[Any, Callable[[UserMessage], Awaitable[Any]]], Conversations]


class WhatsAppInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WhatsAppInput":
        if credentials:
            logger.warning(
                "Values under the WhatsApp channel in credentials.yml are ignored; "
                "the connector reads WHATSAPP_* environment variables"
            )
        settings = WhatsAppSettings.from_env()
        return cls(settings)

    def __init__(
        self,
        settings: WhatsAppSettings,
        conversations_factory: Optional[ConversationsFactory] = None,
    ) -> None:
        self.settings = settings
        broker_logs.install()  # Rasa's event broker logs failed events whole: mask the customer in them
        self.service = WhatsAppService(settings)
        # Rasa's agent by default; a host without Rasa (tests) passes its own.
        self._conversations_factory: ConversationsFactory = conversations_factory or RasaConversations

    def get_output_channel(self) -> Optional[OutputChannel]:
        """Lets Rasa's HTTP API send proactively (`?output_channel=whatsapp`)."""
        return self.service.output_channel()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("whatsapp_webhook", __name__)
        service = self.service
        settings = self.settings

        @webhook.listener("before_server_start")
        async def prepare_store(_app: Any, _loop: Any) -> None:
            service.prepare()

        @webhook.listener("after_server_start")
        async def start_workers(app: Any, _loop: Any) -> None:
            # After Rasa's own start-up listener has loaded the agent.
            service.start(self._conversations_factory(app, on_new_message))

        @webhook.listener("before_server_stop")
        async def stop_workers(_app: Any, _loop: Any) -> None:
            await service.stop()

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify_subscription(request: Request) -> HTTPResponse:
            mode = request.args.get("hub.mode")
            challenge = request.args.get("hub.challenge")
            if mode == "subscribe" and challenge and verify_token_matches(
                settings.verify_token, request.args.get("hub.verify_token")
            ):
                return response.text(challenge)
            logger.warning("WhatsApp webhook verification refused (mode=%r)", mode)
            return response.text("verification failed", status=403)

        # A streaming route: the body is read here, at most `max_body_bytes` of it, and only once the
        # signature header looks right (Sanic would otherwise buffer up to its 100 MB default first).
        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            limit = settings.max_body_bytes
            # Also caps what Sanic drains of a body we refuse unread: beyond it the connection is closed.
            request.stream.request_max_size = limit
            signature = request.headers.get(SIGNATURE_HEADER)
            if not signature_header_is_well_formed(signature):
                logger.warning("Refused a WhatsApp webhook without a valid %s header", SIGNATURE_HEADER)
                return response.json({"error": "missing or invalid signature"}, status=403)
            body = await _read_body(request, limit)
            if body is None:
                logger.warning("Refused a WhatsApp webhook larger than %d bytes (WHATSAPP_MAX_BODY_BYTES)", limit)
                return response.json({"error": f"body larger than {limit} bytes"}, status=413)
            if not signature_is_valid(settings.app_secret, body, signature):
                logger.warning("Refused a WhatsApp webhook without a valid %s header", SIGNATURE_HEADER)
                return response.json({"error": "missing or invalid signature"}, status=403)
            try:
                parsed = parse_webhook(body)
            except PayloadError as error:
                return await _keep_dead_letter(service, str(error), body)
            except RecursionError:
                # Nested deeper than Python's JSON reader goes: signed, so Meta would redeliver a 500 for days.
                return await _keep_dead_letter(service, "body is JSON nested too deeply to read", body)
            try:
                await service.accept(parsed)
            except StoreClosed:
                logger.warning("Shutting down: answered a WhatsApp webhook 503, so Meta delivers it again later")
                return response.json({"error": "shutting down"}, status=503)
            except RecursionError:
                return await _keep_dead_letter(service, "a part of the body is nested too deeply to store", body)
            except Exception:
                # Not persisted: let Meta deliver it again rather than lose it.
                logger.exception("Could not store a WhatsApp webhook; answering 503 so Meta retries")
                return response.json({"error": "temporarily unavailable"}, status=503)
            return response.text("EVENT_RECEIVED")

        return webhook


async def _read_body(request: Request, limit: int) -> Optional[bytes]:
    """The whole body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    try:
        while True:
            chunk = await request.stream.read()
            if chunk is None:
                return bytes(body)
            body += chunk
            if len(body) > limit:
                return None
    except PayloadTooLarge:
        return None


async def _keep_dead_letter(service: WhatsAppService, reason: str, body: bytes) -> HTTPResponse:
    try:
        dead_letter_id = await service.store.run(service.store.add_dead_letter, reason, body)
    except Exception:
        logger.exception("Could not store an unreadable WhatsApp webhook; answering 503 so Meta retries")
        return response.json({"error": "temporarily unavailable"}, status=503)
    logger.error("Unreadable WhatsApp webhook kept as dead letter %s: %s", dead_letter_id, reason)
    # 200: Meta would otherwise redeliver the same unreadable payload for days.
    return response.text("EVENT_RECEIVED")
