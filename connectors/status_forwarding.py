"""Forwarding of WhatsApp delivery statuses to the inbox (`inbox/API.md`, section 2).

Statuses are already in the store when the webhook is acknowledged; this task posts them to
`POST $INBOX_URL/api/v1/whatsapp/statuses` in batches, and when the inbox is down or answers
an error it tries again later with growing pauses (up to 5 minutes), for as long as it
takes. Delivery is at least once: the inbox may see a status twice after a crash.

A batch the inbox refuses for its content (400, 409, 413, 415, 422) is split in halves and each half
sent on its own, down to single statuses; a single status still refused is kept as a dead letter
with the inbox's reason (`forward_state = rejected`), and everything after it goes on. Refusals
that are about the connection rather than the content (401/403/404: wrong URL or token; 408, 429,
5xx, no answer) keep the batch and retry it later, so fixing the setting delivers everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, List, Optional, Union

import aiohttp

from connectors.store import StatusToForward, WhatsAppStore

logger = logging.getLogger(__name__)

STATUSES_PATH = "/api/v1/whatsapp/statuses"
BATCH_SIZE = 100
MAX_RETRY_PAUSE_SECONDS = 300.0
REQUEST_TIMEOUT_SECONDS = 5.0
IDLE_CHECK_SECONDS = 30.0
# After a new status wakes the forwarder, it waits this long so that the statuses of the moment (every reply has
# sent/delivered/read, and under load many customers' arrive together) go to the inbox in one request instead of
# one request and four store transactions each. The inbox shows a tick this much later.
GATHER_SECONDS = 0.2
# The inbox read the statuses and refused them: retrying the same batch would be refused forever.
CONTENT_REFUSALS = frozenset({400, 409, 413, 415, 422})


@dataclass(frozen=True)
class Refused:
    http_status: int
    detail: str


_Answer = Union[bool, Refused]  # True: accepted; False: try again later; Refused: the content


class StatusForwarder:
    def __init__(
        self,
        store: WhatsAppStore,
        inbox_url: str,
        bot_token: str,
        *,
        gather_seconds: float = GATHER_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._gather_seconds = gather_seconds
        self._sleep = sleep  # injectable: tests decide when the gathering moment is over
        self._url = inbox_url.rstrip("/") + STATUSES_PATH
        self._token = bot_token
        self._wakeup = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self._not_before = 0.0  # after a failure, new statuses wait for the retry time too

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
            headers={"Authorization": f"Bearer {self._token}"},
        )
        self._task = asyncio.create_task(self._run(), name="whatsapp-status-forwarder")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            # Cleared before looking, not after: a wake() that arrives while forward_due() is
            # still reading the store must not be lost (it would wait for the idle check).
            self._wakeup.clear()
            try:
                pause = await self.forward_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Forwarding WhatsApp statuses to the inbox failed")
                pause = 5.0
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=pause)
            except asyncio.TimeoutError:
                continue
            if self._gather_seconds > 0:
                await self._sleep(self._gather_seconds)  # statuses arriving meanwhile join the batch

    async def forward_due(self) -> float:
        """Forward what is due; returns how long to wait before looking again."""
        wait = self._not_before - time.time()
        if wait > 0:
            return wait
        while True:
            batch = await self._store.run(self._store.statuses_due, BATCH_SIZE)
            if not batch:
                break
            postponed = await self._forward(batch)
            if postponed:
                pause = min(MAX_RETRY_PAUSE_SECONDS, 2.0 ** max(status.attempts for status in postponed))
                self._not_before = time.time() + pause
                await self._store.run(self._store.postpone_forwarding, [s.id for s in postponed], pause)
                return pause
        next_time = await self._store.run(self._store.next_forward_time)
        return IDLE_CHECK_SECONDS if next_time is None else max(0.05, min(IDLE_CHECK_SECONDS, next_time - time.time()))

    async def _forward(self, batch: List[StatusToForward]) -> List[StatusToForward]:
        """Posts a batch (halves of it when the inbox refuses its content); returns what must wait."""
        answer = await self._post(batch)
        if answer is True:
            await self._store.run(self._store.mark_forwarded, [s.id for s in batch])
            return []
        if answer is False:
            return batch
        if len(batch) == 1:
            reason = f"inbox refused the status: HTTP {answer.http_status} {answer.detail}"
            logger.error("WhatsApp status %s kept as a dead letter: %s", batch[0].id, reason)
            await self._store.run(self._store.reject_forwarding, batch[0].id, reason)
            return []
        middle = len(batch) // 2
        for index, half in enumerate((batch[:middle], batch[middle:])):
            postponed = await self._forward(half)
            if postponed:
                return postponed + (batch[middle:] if index == 0 else [])
        return []

    async def _post(self, batch: List[StatusToForward]) -> _Answer:
        assert self._session is not None
        try:
            async with self._session.post(self._url, json={"statuses": [s.raw for s in batch]}) as response:
                if response.status < 300:
                    return True
                detail = (await response.text(errors="replace"))[:300]
                if response.status in CONTENT_REFUSALS:
                    logger.warning("Inbox refused %d WhatsApp status(es): HTTP %s %s", len(batch), response.status, detail)
                    return Refused(response.status, detail)
                log = logger.error if response.status in (401, 403, 404) else logger.warning
                log(
                    "Inbox refused %d WhatsApp status(es): HTTP %s %s; will retry later",
                    len(batch), response.status, detail,
                )
                return False
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("Inbox unreachable for %d WhatsApp status(es) (%r); will retry later", len(batch), error)
            return False
