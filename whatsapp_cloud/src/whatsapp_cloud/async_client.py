"""The asynchronous client (httpx.AsyncClient + tenacity AsyncRetrying): the connector's bot replies
inside Rasa. The same methods as the synchronous client, awaited."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying

from whatsapp_cloud import core
from whatsapp_cloud.core import NOT_CONFIGURED, SendResult, WhatsAppSendError


@dataclass
class AsyncWhatsAppClient(core.Endpoint, core.MessageMethods):
    attempts: int = 3  # attempts per send for failures the policy retries
    backoff_seconds: float = 0.25  # first pause; doubles each time
    max_backoff_seconds: float = 2.0
    timeout_seconds: float = 5.0  # each phase of one attempt (connect, write, read)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    mask: core.Mask = core.default_mask  # customer ids in log lines
    http: httpx.AsyncClient | None = None  # made on first use, inside the running event loop

    def _http(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_seconds))
        return self.http

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        self.http = None

    # --- never raising: what happened ------------------------------------------------------------

    async def send(self, payload: dict[str, Any]) -> SendResult:
        """POSTs one message payload, retried per the policy; returns what happened."""
        attempts = itertools.count(1)

        async def attempt() -> SendResult:
            return await self._post_once(payload, next(attempts))

        return await self.retrying(result=True)(attempt)

    async def _post_once(self, payload: dict[str, Any], attempt: int) -> SendResult:
        try:
            response = await self._http().post(self.messages_url, json=payload, headers=self.headers)
        except httpx.TransportError as error:
            result = core.transport_result(error, attempt, self.base_url)
        else:
            result = core.answer_result(response.status_code, core.read_body(response), attempt)
        core.log_attempt(result, payload, self.mask)
        return result

    def retrying(self, *, result: bool = False) -> AsyncRetrying:
        return AsyncRetrying(
            **core.retry_settings(
                attempts=self.attempts,
                backoff_seconds=self.backoff_seconds,
                max_backoff_seconds=self.max_backoff_seconds,
                sleep=self.sleep,
                on_result=result,
            )
        )

    # --- raising: Meta's message id, or WhatsAppSendError / WhatsAppSendUnconfirmed ---------------

    async def deliver(self, payload: dict[str, Any]) -> str:
        if not self.configured:
            raise WhatsAppSendError(NOT_CONFIGURED)
        return core.raise_for_result(await self.send(payload))

    async def send_media(
        self,
        *,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        send_key: str | None,
        to: str | None = None,
        recipient: str | None = None,
    ) -> str:
        if not self.configured:
            raise WhatsAppSendError(NOT_CONFIGURED)
        core.message_payload({}, to=to, recipient=recipient)  # no addressee: refused before uploading
        media_id = await self.retrying()(self.upload_media, data, mime, filename or "attachment")
        content = core.media_content(kind, media_id, caption=caption, filename=filename)
        return await self._deliver(content, to, recipient, send_key)

    async def upload_media(self, data: bytes, mime: str, filename: str) -> str:
        try:
            response = await self._http().post(self.media_url, **core.upload_request(self, data, mime, filename))
        except httpx.TransportError as error:
            raise core.upload_transport_error(error) from error
        return core.upload_result(response.status_code, core.read_body(response))

    async def mark_read(self, message_id: str, *, typing: bool = False) -> None:
        """Tried once: a missed tick is not worth a retry."""
        if not self.configured:
            raise WhatsAppSendError("WhatsApp sending is not configured.")
        try:
            response = await self._http().post(
                self.messages_url, json=core.read_payload(message_id, typing), headers=self.headers
            )
        except httpx.TransportError as error:
            raise WhatsAppSendError(f"Could not reach the WhatsApp API ({type(error).__name__}).") from error
        if not response.is_success:
            core.raise_for_result(core.answer_result(response.status_code, core.read_body(response), 1))
