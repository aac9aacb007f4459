"""Blue ticks and "typing…" for the bot's turns (Cloud API: POST /messages with `status: read` and the
customer's message id; `typing_indicator: {type: text}` adds "typing…", shown by WhatsApp for up to
25 s or until the reply).

A customer's message is marked read when the bot answers it; if the answer takes longer than
`WHATSAPP_TYPING_AFTER_SECONDS` (default 1 s) the read goes out first, with "typing…". Messages of a
conversation handed to a person are left alone: the inbox marks those read per team
(inbox/config/read_receipts.yml). Both calls are best effort and never hold up or fail a turn.
`WHATSAPP_READ_RECEIPTS=off` turns them off."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Optional, Set

from whatsapp_cloud import read_payload

from connectors.graph_api import GraphApiClient
from connectors.privacy import mask_user_id

logger = logging.getLogger(__name__)

DEFAULT_TYPING_AFTER_SECONDS = 1.0


class NoReadReceipts:
    """The dispatcher's default (and WHATSAPP_READ_RECEIPTS=off): nothing is sent."""

    @asynccontextmanager
    async def while_answering(self, message_id: str, sender_id: str, output_channel: Any) -> AsyncIterator[None]:
        yield


class ReadReceipts(NoReadReceipts):
    def __init__(
        self,
        client: GraphApiClient,
        handed_off: Callable[[str], Awaitable[bool]],
        *,
        typing_after_seconds: float = DEFAULT_TYPING_AFTER_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._handed_off = handed_off  # whether a person has the conversation (Rasa's tracker is paused)
        self._typing_after = typing_after_seconds
        self._sleep = sleep  # injectable: tests decide when "a moment" has passed
        self._pending: Set[asyncio.Task] = set()

    @classmethod
    def from_env(
        cls, client: GraphApiClient, handed_off: Callable[[str], Awaitable[bool]], environ: Optional[Mapping[str, str]] = None
    ) -> NoReadReceipts:
        env = os.environ if environ is None else environ
        if env.get("WHATSAPP_READ_RECEIPTS", "on").strip().lower() in ("off", "0", "false", "no"):
            return NoReadReceipts()
        raw = env.get("WHATSAPP_TYPING_AFTER_SECONDS", "").strip()
        try:
            typing_after = float(raw) if raw else DEFAULT_TYPING_AFTER_SECONDS
        except ValueError:
            raise ValueError(f"WHATSAPP_TYPING_AFTER_SECONDS must be a number of seconds, got {raw!r}") from None
        return cls(client, handed_off, typing_after_seconds=typing_after)

    @asynccontextmanager
    async def while_answering(self, message_id: str, sender_id: str, output_channel: Any) -> AsyncIterator[None]:
        """Around the bot's turn for `message_id`; `output_channel.messages_sent` says whether it answered."""
        marked = asyncio.Event()

        async def typing_later() -> None:
            await self._sleep(self._typing_after)
            if getattr(output_channel, "messages_sent", 0) or await self._handed_off(sender_id):
                return
            marked.set()
            await self._post(message_id, sender_id, typing=True)

        timer = asyncio.create_task(typing_later())
        try:
            yield
        finally:
            if not timer.done():
                timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
            if not marked.is_set() and getattr(output_channel, "messages_sent", 0):
                self._in_background(self._post(message_id, sender_id, typing=False))

    def _in_background(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Waits for reads still on their way (tests, shutdown)."""
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def _post(self, message_id: str, sender_id: str, *, typing: bool) -> None:
        # The client's lighter path for best-effort calls when it has one (connectors/graph_api.py).
        send = getattr(self._client, "send_read_receipt", None) or self._client.send
        try:
            result = await send(read_payload(message_id, typing))
        except Exception:  # best effort: a missed tick must never fail a turn
            logger.exception("Marking WhatsApp message %s of %s read failed", message_id, mask_user_id(sender_id))
            return
        if result.http_status != 200:
            error = result.error
            logger.warning(
                "WhatsApp did not mark message %s of %s read%s: HTTP %s, code %s (%s)",
                message_id, mask_user_id(sender_id), " with typing" if typing else "", result.http_status,
                error.code if error else None, error.title if error else "",
            )


def tracker_paused(conversations: Any) -> Callable[[str], Awaitable[bool]]:
    """Whether a person has the conversation: Rasa pauses the tracker at a hand-off."""

    async def handed_off(sender_id: str) -> bool:
        agent = getattr(conversations, "_agent", lambda: None)()  # None: no Rasa agent (a test host)
        tracker = await agent.tracker_store.retrieve(sender_id) if agent is not None else None
        return tracker is not None and tracker.is_paused()

    return handed_off
