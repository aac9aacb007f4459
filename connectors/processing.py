"""Handling of persisted inbound messages after the webhook has been acknowledged.

One asyncio task per customer with work drains that customer's messages strictly in order
(claiming each from the store first); different customers run concurrently, up to
`max_concurrent_customers` per process. A process that is full does not queue more customers: the
messages stay in the store, and a sweep by any process with room picks them up. So several
processes (Sanic workers) share the work, whichever of them received the webhooks. The sweep also
finds messages nobody is working on: at start-up (persisted but never handled before a crash or
restart), after another process's claim ran out, or while the model was not loaded yet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Callable, Dict, Optional, Set

from rasa.core.channels.channel import OutputChannel, UserMessage

from connectors.conversations import Conversations
from connectors.inbound import InboundAction, InboundMessage
from connectors.store import DONE, FAILED, IGNORED, REPLY_OPTION_PREFIX, ClaimedMessage, WhatsAppStore

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a message that fails (or kills the process) this often is parked as failed
RETRY_PAUSE_SECONDS = 1.0


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class InboundDispatcher:
    def __init__(
        self,
        store: WhatsAppStore,
        conversations: Conversations,
        output_channel_factory: Callable[[], OutputChannel],
        *,
        input_channel_name: str,
        claim_ttl_seconds: float,
        sweep_interval_seconds: float,
        max_concurrent_customers: int = 8,
        owner: Optional[str] = None,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._output_channel_factory = output_channel_factory
        self._input_channel_name = input_channel_name
        self._claim_ttl = claim_ttl_seconds
        self._sweep_interval = sweep_interval_seconds
        self.owner = owner or new_owner_id()
        self._customer_tasks: Dict[str, asyncio.Task] = {}
        self._woken_again: Set[str] = set()
        self._max_customers = max_concurrent_customers
        self._sweep_now = asyncio.Event()  # a customer finished while others were left waiting
        self._left_waiting = False
        self._background: Set[asyncio.Task] = set()
        self._running = False
        self._waiting_for_bot_logged = False

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._background.add(asyncio.create_task(self._sweep_forever(), name="whatsapp-sweep"))
        self._background.add(asyncio.create_task(self._renew_claims_forever(), name="whatsapp-claims"))

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let in-flight messages finish briefly; give unfinished ones back to the store."""
        self._running = False
        for task in self._background:
            task.cancel()
        if self._customer_tasks:
            await asyncio.wait(list(self._customer_tasks.values()), timeout=grace_seconds)
        for task in list(self._customer_tasks.values()):
            task.cancel()
        await asyncio.gather(*self._background, *self._customer_tasks.values(), return_exceptions=True)

    # --- scheduling ----------------------------------------------------------------------

    def has_room(self) -> bool:
        return len(self._customer_tasks) < self._max_customers

    def wake(self, wa_id: str) -> None:
        """New work for a customer (or maybe): make sure a task drains their queue."""
        if not self._running:
            return  # the start-up sweep will find it
        if wa_id in self._customer_tasks:
            self._woken_again.add(wa_id)
            return
        if not self.has_room():
            # Stays in the store: a process with room (this one, once a customer is done) sweeps it up.
            self._left_waiting = True
            return
        self._customer_tasks[wa_id] = asyncio.create_task(self._drain(wa_id), name=f"whatsapp-{wa_id}")

    async def _drain(self, wa_id: str) -> None:
        try:
            claimed: Optional[ClaimedMessage] = None
            while self._running:
                if claimed is None:
                    if not self._conversations.is_ready():
                        self._log_waiting_for_bot()
                        return  # the sweep retries once the bot is ready
                    self._woken_again.discard(wa_id)
                    claimed = await self._store.run(self._store.claim_next, wa_id, self.owner, self._claim_ttl)
                    if claimed is None:
                        if wa_id in self._woken_again:
                            continue
                        return
                # Anything persisted before this point is seen by the claim that follows it.
                self._woken_again.discard(wa_id)
                claimed = await self._process(claimed)
                if claimed is None and wa_id not in self._woken_again:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # a store failure: the sweep brings the customer back
            logger.exception("WhatsApp queue of %s stopped; it will be retried", wa_id)
        finally:
            self._customer_tasks.pop(wa_id, None)
            self._woken_again.discard(wa_id)
            if self._left_waiting:
                self._sweep_now.set()  # room again: take a waiting customer without waiting for the timer

    async def _process(self, claimed: ClaimedMessage) -> Optional[ClaimedMessage]:
        """Handle one message; returns the customer's next message if it could be claimed."""
        message = claimed.message
        state = DONE
        try:
            output_channel = self._output_channel_factory()
            if message.action is InboundAction.REACTION:
                if not await self._react(message, output_channel):
                    state = IGNORED
            elif message.action is InboundAction.CONVERSE:
                text = message.text or ""
                if text.startswith(REPLY_OPTION_PREFIX):
                    text = await self._store.run(self._store.resolve_reply_option, text) or text
                await self._conversations.deliver(self._user_message(message, text, output_channel))
            elif message.action is InboundAction.UNREADABLE:
                await self._conversations.record_unreadable(message, output_channel)
        except asyncio.CancelledError:
            await self._give_back(claimed, "stopped while handling")
            raise
        except Exception as error:
            await self._handle_failure(claimed, error)
            return None
        if not self._running:
            await self._store.run(self._store.finish, claimed.seq, self.owner, state=state)
            return None
        return await self._store.run(
            self._store.finish_and_claim_next, claimed.seq, self.owner, message.wa_id, self._claim_ttl, state=state
        )

    async def _react(self, message: InboundMessage, output_channel: OutputChannel) -> bool:
        """A reaction reaches the bot only when it is to one of the bot's own messages and the bot has
        the conversation; returns whether it did. The bot answers a positive one with silence (a
        resolution signal), a negative one like "no" (data/rules/chitchat.yml)."""
        reacted_to = str((message.details.get("reaction") or {}).get("message_id") or "")
        if not reacted_to or not await self._store.run(self._store.sent_to, reacted_to, message.wa_id):
            logger.info("WhatsApp reaction %s from %s is to a message the bot did not send: not answered",
                        message.message_id, message.wa_id)
            return False
        delivered = await self._conversations.react(self._user_message(message, message.text or "", output_channel))
        if not delivered:
            logger.info("WhatsApp reaction %s from %s: a person has the conversation, the bot stays out of it",
                        message.message_id, message.wa_id)
        return delivered

    def _user_message(self, message: InboundMessage, text: str, output_channel: OutputChannel) -> UserMessage:
        return UserMessage(
            text=text,
            output_channel=output_channel,
            sender_id=message.wa_id,
            input_channel=self._input_channel_name,
            message_id=message.message_id,
            metadata=message.rasa_metadata(),
        )

    async def _handle_failure(self, claimed: ClaimedMessage, error: Exception) -> None:
        message = claimed.message
        description = f"{type(error).__name__}: {error}"
        if claimed.attempts >= MAX_ATTEMPTS:
            logger.error(
                "Giving up on WhatsApp message %s from %s after %d attempts: %s",
                message.message_id, message.wa_id, claimed.attempts, description, exc_info=error,
            )
            await self._store.run(self._store.finish, claimed.seq, self.owner, state=FAILED, error=description)
            return
        logger.warning(
            "Handling WhatsApp message %s from %s failed (attempt %d of %d), retrying: %s",
            message.message_id, message.wa_id, claimed.attempts, MAX_ATTEMPTS, description, exc_info=error,
        )
        await asyncio.sleep(RETRY_PAUSE_SECONDS * claimed.attempts)
        await self._store.run(self._store.release, claimed.seq, self.owner, description)

    async def _give_back(self, claimed: ClaimedMessage, reason: str) -> None:
        try:
            await asyncio.shield(self._store.run(self._store.release, claimed.seq, self.owner, reason))
        except Exception:
            logger.exception("Could not release WhatsApp message seq=%s", claimed.seq)

    def _log_waiting_for_bot(self) -> None:
        if not self._waiting_for_bot_logged:
            logger.warning("Rasa has no model loaded yet; WhatsApp messages stay queued until it has one")
            self._waiting_for_bot_logged = True

    # --- background loops ----------------------------------------------------------------

    async def sweep_once(self) -> int:
        """Starts serving customers with waiting messages, as many as there is room for."""
        if not self.has_room():
            return 0
        self._left_waiting = False
        customers = await self._store.run(self._store.customers_with_work)
        woken = 0
        for wa_id in customers:
            if wa_id in self._customer_tasks:
                continue
            if not self.has_room():
                self._left_waiting = True
                break
            self.wake(wa_id)
            woken += 1
        return woken

    async def _sweep_forever(self) -> None:
        first = True
        while self._running:
            self._sweep_now.clear()  # before sweeping: a customer finishing meanwhile sets it again
            try:
                woken = await self.sweep_once()
                if woken:
                    # At start-up this is recovery worth seeing; later, under load, it is routine
                    # (customers another process received, or that waited for room here).
                    logger.log(logging.INFO if first else logging.DEBUG,
                               "Picked up persisted WhatsApp messages of %d customer(s)", woken)
                first = False
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Looking for unhandled WhatsApp messages failed")
            try:
                await asyncio.wait_for(self._sweep_now.wait(), timeout=self._sweep_interval)
            except asyncio.TimeoutError:
                pass

    async def _renew_claims_forever(self) -> None:
        while self._running:
            await asyncio.sleep(self._claim_ttl / 3)
            if not self._customer_tasks:
                continue
            try:
                await self._store.run(self._store.renew_claims, self.owner, self._claim_ttl)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Renewing WhatsApp message claims failed")
