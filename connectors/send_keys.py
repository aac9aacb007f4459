"""One key of ours per outbound message, so a retried turn never sends the customer a reply twice.

Meta's Cloud API has no idempotency header: two POSTs of the same body are two messages. So the
connector's own store is the source of truth (`wa_send_keys`):

- The key is deterministic: `<inbound message id>:<n>` for the n-th message the bot sends while
  handling that customer message (`.../bot_unavailable:0` for the fallback). When a turn is
  retried (say the tracker store failed after the reply went out), the bot's replies get the same
  keys again, and a key already `sent` is not POSTed again.
- The key is written (`sending`) before the POST, and settled from the outcome in the transaction
  that writes the outbound log (`MessageSender`; if that fails, on its own as before). A send Meta
  answered with an error, or that never reached Meta (connection refused), is `failed` and may be
  sent again by a retried turn. A send whose outcome is unknown (read timeout, connection dropped
  after the request went out, a crash in the middle) is `unknown`/`sending`, and is not POSTed again
  before it has been checked:
- The key travels with the message as `biz_opaque_callback_data`, which Meta echoes in the
  message's status webhooks; a status carrying it settles the key as `sent` (connectors/service.py).
  A retried turn that meets an unsettled key waits until `WHATSAPP_SEND_SETTLE_SECONDS` (default
  60) have passed since the POST; still no status then means Meta does not have the message, and
  it is sent again.
- A send Meta accepted (a message id came back) whose outcome the store could not take (PostgreSQL
  down) is remembered in the process, and a retried turn in the same process neither sends it again
  nor waits for a status the same outage may have lost; the store gets the outcome on that retry.

Sends without an inbound message (Rasa's HTTP API sending proactively) get no key.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Awaitable, Callable, Optional

from whatsapp_cloud import SEND_KEY_FIELD, SendResult

from connectors.outbound_messages import OutboundMessage
from connectors.output import MessageSender
from connectors.privacy import mask_user_id
from connectors.store import SEND_SENT, WhatsAppStore

logger = logging.getLogger(__name__)

CALLBACK_FIELD = SEND_KEY_FIELD  # biz_opaque_callback_data; Meta: at most 512 characters, echoed in statuses
MAX_KEY_LENGTH = 512
DEFAULT_SETTLE_SECONDS = 60.0

# Sends Meta accepted (a message id came back) whose outcome could not be written because the store was down:
# the key stays `sending` there, and a retried turn would otherwise wait for a status webhook that the same
# outage may have lost, then send the reply again. Kept per process, newest last, until the store takes it.
MAX_UNSAVED_OUTCOMES = 10_000
_unsaved_outcomes: "OrderedDict[str, str]" = OrderedDict()


def remember_unsaved_outcome(key: str, wamid: Optional[str], uncertain: bool) -> None:
    """Called when settling `key` in the store failed: a send Meta accepted is known to be sent."""
    if not wamid or uncertain:
        return  # not known to be on the customer's phone: the store's own rules decide
    _unsaved_outcomes[key] = wamid
    _unsaved_outcomes.move_to_end(key)
    while len(_unsaved_outcomes) > MAX_UNSAVED_OUTCOMES:
        _unsaved_outcomes.popitem(last=False)


class KeyedSender:
    """The sender of one turn: numbers its messages and sends each key at most once."""

    def __init__(
        self,
        sender: MessageSender,
        store: WhatsAppStore,
        turn_key: str,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sender = sender
        self._store = store
        self._turn_key = turn_key
        self._settle_seconds = settle_seconds
        self._sleep = sleep
        self._sent = 0

    def next_key(self) -> str:
        key = f"{self._turn_key}:{self._sent}"
        self._sent += 1
        return key[-MAX_KEY_LENGTH:]

    async def send(self, recipient_id: str, message: OutboundMessage) -> SendResult:
        key = self.next_key()
        accepted = _unsaved_outcomes.get(key)
        if accepted is not None:  # sent by an earlier try of this turn in this process; the store missed it
            try:
                await self._store.run(self._store.settle_send_key, key, accepted, False)
                _unsaved_outcomes.pop(key, None)
            except Exception:
                logger.warning("Could not record the outcome of WhatsApp message %s yet; kept in memory", key)
            logger.info(
                "WhatsApp %s message %s to %s not sent again: Meta accepted it before (a retried turn)",
                message.kind, key, mask_user_id(recipient_id),
            )
            return SendResult(wamid=accepted, http_status=None, error=None, attempts=0)
        earlier = await self._store.run(self._store.claim_send_key, key, recipient_id, self._settle_seconds)
        if earlier is not None and earlier[0] != SEND_SENT:
            # Sent before but not confirmed: wait for the check to settle it, then look again.
            logger.warning(
                "WhatsApp %s message %s to %s may have been sent before; waiting %.0f s for Meta's status",
                message.kind, key, mask_user_id(recipient_id), earlier[2],
            )
            await self._sleep(earlier[2])
            earlier = await self._store.run(self._store.claim_send_key, key, recipient_id, self._settle_seconds)
        if earlier is not None:
            state, wamid, _ = earlier
            logger.info(
                "WhatsApp %s message %s to %s not sent again: it was %s before (a retried turn)",
                message.kind, key, mask_user_id(recipient_id), state,
            )
            return SendResult(wamid=wamid if state == SEND_SENT else None, http_status=None, error=None, attempts=0)
        keyed = OutboundMessage(message.kind, {**message.body, CALLBACK_FIELD: key})
        if isinstance(self._sender, MessageSender):
            # Settled in the outbound log's transaction: one commit per reply instead of two.
            return await self._sender.send(recipient_id, keyed, send_key=key)
        result = await self._sender.send(recipient_id, keyed)  # a sender that keeps no log (tests' stand-ins)
        try:
            await self._store.run(self._store.settle_send_key, key, result.wamid, result.uncertain)
        except Exception:  # stays `sending` in the store; a send Meta accepted is remembered here
            logger.exception("Could not record the outcome of WhatsApp message %s", key)
            remember_unsaved_outcome(key, result.wamid, result.uncertain)
        return result

    async def reply_id_for(self, payload: str, limit: int) -> str:
        return await self._sender.reply_id_for(payload, limit)


def keyed_sender(
    sender: MessageSender, store: WhatsAppStore, turn_key: Optional[str], settle_seconds: float = DEFAULT_SETTLE_SECONDS
) -> object:
    return KeyedSender(sender, store, turn_key, settle_seconds) if turn_key else sender
