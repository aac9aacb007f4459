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
import dataclasses
import logging
import os
import socket
import time
import uuid
from typing import Awaitable, Callable, Dict, Optional, Set

from rasa.core.channels.channel import OutputChannel, UserMessage

from connectors.conversations import Conversations
from connectors.inbound import InboundAction, InboundMessage
from connectors.satisfaction import is_survey_tap, recorded_text, survey_role
from connectors.privacy import mask_user_id
from connectors.read_receipts import NoReadReceipts
from connectors.settings import MAX_RETRY_PAUSE_SECONDS
from connectors.store import (
    DONE,
    FAILED,
    HANDED_OFF,
    IGNORED,
    REPLY_OPTION_PREFIX,
    ClaimedMessage,
    WhatsAppStore,
)
from connectors.text_chunks import WHATSAPP_TEXT_LIMIT

logger = logging.getLogger(__name__)

# A message claimed this often without ever being finished killed its process each time (or the
# process was killed while handling it): it is not handled again but handed off.
MAX_CLAIMS = 5
# Customer text reaches Rasa/spaCy cut to what WhatsApp itself allows; the store keeps it whole.
CUSTOMER_TEXT_LIMIT = WHATSAPP_TEXT_LIMIT

OutputChannelFactory = Callable[..., OutputChannel]  # (turn_key=None) -> a fresh output channel


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class InboundDispatcher:
    def __init__(
        self,
        store: WhatsAppStore,
        conversations: Conversations,
        output_channel_factory: OutputChannelFactory,
        *,
        input_channel_name: str,
        claim_ttl_seconds: float,
        sweep_interval_seconds: float,
        max_concurrent_customers: int = 8,
        owner: Optional[str] = None,
        retry_budget_seconds: float = 300.0,
        retry_first_pause_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        self._retry_budget = retry_budget_seconds
        self._retry_first_pause = retry_first_pause_seconds
        self._background_failures = FailureLog()
        self._clock = clock  # injectable: the retry tests run minutes of back-off in no time
        self._sleep = sleep
        # Set (and replaced by a fresh one) each time a turn in this process succeeds: proof that the
        # tracker and lock stores answer again, so turns waiting out a retry pause retry at once
        # instead of sleeping out up to 30 s of back-off after the outage is over (`_pause`).
        self._turn_succeeded = asyncio.Event()
        self.read_receipts = NoReadReceipts()  # blue ticks and "typing…" (set by connectors/service.py)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._background.add(asyncio.create_task(self._sweep_forever(), name="whatsapp-sweep"))
        self._background.add(asyncio.create_task(self._renew_claims_forever(), name="whatsapp-claims"))

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let in-flight messages finish briefly; give unfinished ones back to the store."""
        self._running = False
        self._wake_paused_turns()  # they give their messages back now rather than be cancelled
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
            logger.exception("WhatsApp queue of %s stopped; it will be retried", mask_user_id(wa_id))
        finally:
            self._customer_tasks.pop(wa_id, None)
            self._woken_again.discard(wa_id)
            if self._left_waiting:
                self._sweep_now.set()  # room again: take a waiting customer without waiting for the timer

    async def _process(self, claimed: ClaimedMessage) -> Optional[ClaimedMessage]:
        """Handle one message; returns the customer's next message if it could be claimed.

        A failure (tracker store or lock store down, a Rasa error) is retried while the message stays
        claimed, so the customer's later messages wait behind it in order; pauses double from
        `retry_first_pause_seconds` up to 30 s, for `retry_budget_seconds` in all. Then the customer
        is told the bot is unavailable and the conversation is handed off (`_give_up`).
        """
        message = claimed.message
        failures = 0
        first_failure: Optional[float] = None
        state: Optional[str] = DONE
        description: Optional[str] = None
        while True:
            if claimed.attempts > MAX_CLAIMS:
                description = f"claimed {claimed.attempts} times without finishing"
                state = await self._give_up(claimed, description)
                break
            try:
                # A message claimed before (its process died or gave it back) may already be in Rasa's
                # tracker: then only its answer is checked, the turn is not run a second time.
                state = await self._handle(message, retry=failures > 0 or claimed.attempts > 1, claimed=claimed)
                if state == DONE:
                    self._wake_paused_turns()
                break
            except asyncio.CancelledError:
                await self._give_back(claimed, "stopped while handling")
                raise
            except Exception as error:
                failures += 1
                now = self._clock()
                first_failure = now if first_failure is None else first_failure
                description = f"{type(error).__name__}: {error}"
                remaining = self._retry_budget - (now - first_failure)
                if remaining <= 0:
                    logger.error(
                        "Giving up on WhatsApp message %s from %s after %d failures over %.0f s: %s",
                        message.message_id, mask_user_id(message.wa_id), failures, now - first_failure,
                        description, exc_info=error,
                    )
                    state = await self._give_up(claimed, description)
                    break
                pause = min(MAX_RETRY_PAUSE_SECONDS, self._retry_first_pause * 2 ** (failures - 1), remaining)
                logger.warning(
                    "Handling WhatsApp message %s from %s failed (%d so far); retrying in %.1f s: %s",
                    message.message_id, mask_user_id(message.wa_id), failures, pause, description,
                    exc_info=error if failures == 1 else None,
                )
                if await self._pause(pause):
                    logger.info("Retrying WhatsApp message %s from %s now: another turn succeeded",
                                message.message_id, mask_user_id(message.wa_id))
                if not self._running:
                    await self._give_back(claimed, description)
                    return None
        if state is None:  # stopped while giving up: another process (or a restart) finishes it
            return None
        return await self._finish(claimed, state, description)

    async def _finish(self, claimed: ClaimedMessage, state: str, error: Optional[str]) -> Optional[ClaimedMessage]:
        """Marks the message finished, then claims the customer's next one. The store may be down right
        now (it can share the PostgreSQL the turn just waited for): finishing is retried until it
        works, because a handled message left `processing` would be handled a second time."""
        message = claimed.message
        failures = 0
        while True:
            try:
                await self._store.run(self._store.finish, claimed.seq, self.owner, state=state, error=error)
                break
            except Exception as store_error:
                if not self._running:
                    raise
                failures += 1
                pause = min(MAX_RETRY_PAUSE_SECONDS, self._retry_first_pause * 2 ** (failures - 1))
                logger.warning(
                    "Could not mark WhatsApp message %s of %s %s (%d so far); retrying in %.1f s: %s: %s",
                    message.message_id, mask_user_id(message.wa_id), state, failures, pause,
                    type(store_error).__name__, store_error,
                )
                await self._pause(pause)
        if not self._running:
            return None
        # A separate transaction after the finish (see WhatsAppStore.finish_and_claim_next).
        return await self._store.run(self._store.claim_next, message.wa_id, self.owner, self._claim_ttl)

    def _wake_paused_turns(self) -> None:
        # A fresh event for the pauses that start from now on: only a success after a pause began
        # ends it early. A woken retry that fails again keeps doubling its pause (its failure count
        # is not reset), so a storm of retries woken into a still-failing store stays bounded.
        succeeded, self._turn_succeeded = self._turn_succeeded, asyncio.Event()
        succeeded.set()

    async def _pause(self, seconds: float) -> bool:
        """Sleeps a retry pause (through the injectable `sleep`), ended early when any turn in this
        process succeeds meanwhile (or the dispatcher stops); returns whether it was ended early."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._turn_succeeded.wait())
        try:
            done, _ = await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        return sleeper not in done

    async def _handle(
        self, message: InboundMessage, retry: bool = False, claimed: Optional[ClaimedMessage] = None
    ) -> str:
        output_channel = self._output_channel_factory(turn_key=message.message_id)
        if message.action is InboundAction.REACTION:
            return DONE if await self._react(message, output_channel) else IGNORED
        role = self._survey_role(message, claimed)
        if role is not None:  # a CSAT answer or comment: for the inbox, never for NLU (connectors/satisfaction.py)
            await self._conversations.record_survey_answer(
                dataclasses.replace(message, text=capped(recorded_text(message, role))), role, output_channel
            )
            return DONE
        if message.action is InboundAction.CONVERSE:
            text = capped(message.text or "")
            if text.startswith(REPLY_OPTION_PREFIX):
                text = await self._store.run(self._store.resolve_reply_option, text) or text
            deliver = self._conversations.deliver_again if retry else self._conversations.deliver
            async with self.read_receipts.while_answering(message.message_id, message.wa_id, output_channel):
                await deliver(self._user_message(message, text, output_channel))
        elif message.action is InboundAction.UNREADABLE:
            async with self.read_receipts.while_answering(message.message_id, message.wa_id, output_channel):
                await self._conversations.record_unreadable(
                    dataclasses.replace(message, text=capped(message.text or "")), output_channel
                )
        return DONE

    def _survey_role(self, message: InboundMessage, claimed: Optional[ClaimedMessage]) -> Optional[str]:
        if is_survey_tap(message):
            return survey_role(message, None)
        if message.type != "text" or claimed is None:
            return None
        # The customer's previous message was read with the claim (connectors/store_claims.py).
        return survey_role(message, claimed.previous_message())

    async def _give_up(self, claimed: ClaimedMessage, description: str) -> Optional[str]:
        """The honest fallback: `messages.bot_unavailable` to the customer and a hand-off in the
        tracker (connectors/unanswered_turns.py). Writing the hand-off is retried every 30 s for as
        long as it takes (the customer's next messages wait, in order); the customer is told once,
        at the first try, whether or not the tracker could be written (the outbound log keeps a
        retry from telling them again). Returns None if the dispatcher stopped meanwhile."""
        message = claimed.message
        if message.action is InboundAction.REACTION:
            return FAILED  # nobody waits for an answer to a reaction
        text = capped(message.text or "")
        tries = 0
        while self._running:
            tries += 1
            output_channel = self._output_channel_factory(turn_key=f"{message.message_id}/bot_unavailable")
            try:
                await self._conversations.hand_off_unprocessed(
                    self._user_message(message, text, output_channel), description
                )
                return HANDED_OFF
            except asyncio.CancelledError:
                await self._give_back(claimed, "stopped while handing off")
                raise
            except Exception as error:
                logger.error(
                    "Could not hand off WhatsApp message %s from %s (try %d); trying again in %.0f s: %s: %s",
                    message.message_id, mask_user_id(message.wa_id), tries, MAX_RETRY_PAUSE_SECONDS,
                    type(error).__name__, error,
                )
                await self._sleep(MAX_RETRY_PAUSE_SECONDS)
        await self._give_back(claimed, description)
        return None

    async def _react(self, message: InboundMessage, output_channel: OutputChannel) -> bool:
        """A reaction reaches the bot only when it is to one of the bot's own messages and the bot has
        the conversation; returns whether it did. The bot answers a positive one with silence (a
        resolution signal), a negative one like "no" (data/rules/chitchat.yml)."""
        reacted_to = str((message.details.get("reaction") or {}).get("message_id") or "")
        if not reacted_to or not await self._store.run(self._store.sent_to, reacted_to, message.wa_id):
            logger.info("WhatsApp reaction %s from %s is to a message the bot did not send: not answered",
                        message.message_id, mask_user_id(message.wa_id))
            return False
        delivered = await self._conversations.react(self._user_message(message, message.text or "", output_channel))
        if not delivered:
            logger.info("WhatsApp reaction %s from %s: a person has the conversation, the bot stays out of it",
                        message.message_id, mask_user_id(message.wa_id))
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
                self._background_failures.recovered("Looking for unhandled WhatsApp messages")
            except asyncio.CancelledError:
                raise
            except Exception:
                self._background_failures.failed("Looking for unhandled WhatsApp messages")
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
                self._background_failures.recovered("Renewing WhatsApp message claims")
            except asyncio.CancelledError:
                raise
            except Exception:
                self._background_failures.failed("Renewing WhatsApp message claims")


class FailureLog:
    """A background loop that fails every 0.25 s while the store is down logs the first failure with
    its traceback, then one line a minute, and one line when it works again."""

    REPEAT_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failing: Dict[str, float] = {}  # what -> when it was last logged
        self._counts: Dict[str, int] = {}

    def failed(self, what: str) -> None:
        now = self._clock()
        self._counts[what] = self._counts.get(what, 0) + 1
        if what not in self._failing:
            logger.exception("%s failed; retrying", what)
        elif now - self._failing[what] >= self.REPEAT_SECONDS:
            logger.error("%s still failing (%d attempts so far)", what, self._counts[what])
        else:
            return
        self._failing[what] = now

    def recovered(self, what: str) -> None:
        if self._failing.pop(what, None) is not None:
            logger.warning("%s works again after %d failed attempts", what, self._counts.pop(what, 0))


def capped(text: str) -> str:
    """Customer text as Rasa may see it: at most WhatsApp's own 4,096 characters (a hostile 3 MB
    message would otherwise fail in the NLU pipeline on every attempt)."""
    return text if len(text) <= CUSTOMER_TEXT_LIMIT else text[:CUSTOMER_TEXT_LIMIT]
