"""The connector's running parts inside one Rasa server process, wired together."""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

from connectors.conversations import Conversations
from connectors.customer_identities import CustomerIdentities
from connectors.graph_api import GraphApiClient
from connectors.inbound import InboundAction, ParsedWebhook, Rejected
from connectors.output import CHANNEL_NAME, MessageSender, WhatsAppOutput
from connectors.privacy import mask_user_id
from connectors.processing import InboundDispatcher
from connectors.read_receipts import ReadReceipts, tracker_paused
from connectors.send_keys import keyed_sender
from connectors.settings import WhatsAppSettings
from connectors.status_forwarding import StatusForwarder
from connectors.store import PersistOutcome, WhatsAppStore

logger = logging.getLogger(__name__)


class WhatsAppService:
    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        self.store = WhatsAppStore(settings.store_url)
        self.identities = CustomerIdentities(self.store)  # its table is created with the store's
        self.client = GraphApiClient(settings)
        self.sender = MessageSender(self.client, self.store)
        self.dispatcher: Optional[InboundDispatcher] = None
        self.forwarder: Optional[StatusForwarder] = None

    def prepare(self) -> None:
        """Before the server accepts requests: the store must be ready to persist."""
        self.store.create_schema()

    def start(self, conversations: Conversations) -> None:
        """Once the server runs (and Rasa has loaded its model): start the workers."""
        self.dispatcher = InboundDispatcher(
            self.store,
            conversations,
            self.output_channel,
            input_channel_name=CHANNEL_NAME,
            claim_ttl_seconds=self.settings.claim_ttl_seconds,
            sweep_interval_seconds=self.settings.sweep_interval_seconds,
            max_concurrent_customers=self.settings.max_concurrent_customers,
            retry_budget_seconds=self.settings.retry_budget_seconds,
            retry_first_pause_seconds=self.settings.retry_first_pause_seconds,
        )
        self.dispatcher.read_receipts = ReadReceipts.from_env(self.client, tracker_paused(conversations))
        self.dispatcher.start()
        if self.settings.inbox_url and self.settings.inbox_bot_token:
            self.forwarder = StatusForwarder(self.store, self.settings.inbox_url, self.settings.inbox_bot_token)
            self.forwarder.start()
        else:
            logger.info("INBOX_URL is not set: WhatsApp statuses are recorded but not forwarded")
        logger.info("WhatsApp connector running (worker %s)", self.dispatcher.owner)

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.forwarder is not None:
            await self.forwarder.stop()
        await self.client.close()
        self.store.close()

    def output_channel(self, turn_key: Optional[str] = None) -> WhatsAppOutput:
        """A fresh output channel; with `turn_key` (the customer message being handled) its sends
        are keyed, so a retried turn does not send what already went out (connectors/send_keys.py)."""
        return WhatsAppOutput(keyed_sender(self.sender, self.store, turn_key, self.settings.send_settle_seconds))

    async def accept(self, parsed: ParsedWebhook) -> PersistOutcome:
        """Persist a webhook's contents (raises if the store is unavailable), then hand off."""
        rejected = list(parsed.rejected)
        for meta_error in parsed.meta_errors:
            logger.error(
                "Meta reported a webhook error: code %s (%s) %s",
                meta_error.get("code"), meta_error.get("title"), meta_error.get("message") or "",
            )
            rejected.append(Rejected("error reported by Meta", meta_error))
        # One trip to the store's thread for both steps (each trip costs the event loop ~0.1 ms of CPU).
        parsed, outcome = await self.store.run(self._resolve_and_persist, parsed, rejected)
        for item in parsed.rejected:
            logger.error("Kept unreadable part of a WhatsApp webhook as a dead letter: %s", item.reason)
        for change in parsed.skipped_changes:
            logger.info("Ignored WhatsApp webhook change for field %r", change.get("field"))
        for status in parsed.statuses:
            if status.status == "failed":
                for error in status.errors or [{}]:
                    error_data = error.get("error_data")
                    details = error_data.get("details", "") if isinstance(error_data, dict) else ""
                    logger.error(
                        "WhatsApp message %s to %s failed: code %s (%s) %s",
                        status.message_id, mask_user_id(status.recipient_id), error.get("code"),
                        error.get("title"), details,
                    )
        for message in outcome.new_messages:
            if message.action is InboundAction.IGNORE:
                logger.info(
                    "WhatsApp %s message %s from %s kept but not answered%s",
                    message.type, message.message_id, mask_user_id(message.wa_id),
                    f" ({message.details})" if message.details else "",
                )
            elif self.dispatcher is not None:
                self.dispatcher.wake(message.wa_id)
        if outcome.duplicates:
            logger.info("Ignored %d duplicate WhatsApp message delivery(ies)", outcome.duplicates)
        if outcome.statuses_to_forward and self.forwarder is not None:  # a bot reply's status: nothing to do
            self.forwarder.wake()
        return outcome

    def _resolve_and_persist(self, parsed: ParsedWebhook, rejected: List[Rejected]) -> Tuple[ParsedWebhook, PersistOutcome]:
        """In the store's thread: key every message and status by the phone when known (also from earlier
        webhooks), else the BSUID (the conversation key), then store it all in one transaction (which also
        settles the send keys its statuses echo: `WhatsAppStore.persist_webhook`)."""
        parsed = self.identities.resolve(parsed)
        outcome = self.store.persist_webhook(
            parsed.messages,
            parsed.statuses,
            rejected,
            forward_statuses=bool(self.settings.inbox_url),
        )
        return parsed, outcome
