"""The synchronous client (httpx.Client + tenacity Retrying): the inbox's agent replies."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import Retrying

from whatsapp_cloud import core
from whatsapp_cloud.core import NOT_CONFIGURED, SendResult, WhatsAppSendError


@dataclass
class WhatsAppClient(core.Endpoint, core.MessageMethods):
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0)))
    sleep: Callable[[float], None] = time.sleep  # tests pass a no-op: no wall-clock waits
    attempts: int = 3  # attempts per send for failures the policy retries
    backoff_seconds: float = 0.25  # first pause; doubles each time
    max_backoff_seconds: float = 2.0
    mask: core.Mask = core.default_mask  # customer ids in log lines

    # --- never raising: what happened ------------------------------------------------------------

    def send(self, payload: dict[str, Any]) -> SendResult:
        """POSTs one message payload, retried per the policy; returns what happened."""
        attempts = itertools.count(1)
        return self.retrying(result=True)(lambda: self._post_once(payload, next(attempts)))

    def _post_once(self, payload: dict[str, Any], attempt: int) -> SendResult:
        try:
            response = self.http.post(self.messages_url, json=payload, headers=self.headers)
        except httpx.TransportError as error:
            result = core.transport_result(error, attempt, self.base_url)
        else:
            result = core.answer_result(response.status_code, core.read_body(response), attempt)
        core.log_attempt(result, payload, self.mask)
        return result

    def retrying(self, *, result: bool = False) -> Retrying:
        """The quick retries of one Graph call: of a retryable SendResult (`result=True`) or of a
        retryable WhatsAppSendError. Attempts, pauses and sleep are the caller's."""
        return Retrying(
            **core.retry_settings(
                attempts=self.attempts,
                backoff_seconds=self.backoff_seconds,
                max_backoff_seconds=self.max_backoff_seconds,
                sleep=self.sleep,
                on_result=result,
            )
        )

    # --- raising: Meta's message id, or WhatsAppSendError / WhatsAppSendUnconfirmed ---------------

    def deliver(self, payload: dict[str, Any]) -> str:
        if not self.configured:
            raise WhatsAppSendError(NOT_CONFIGURED)
        return core.raise_for_result(self.send(payload))

    def send_media(
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
        """Uploads the file, then sends an `image` or `document` message by its media id."""
        if not self.configured:
            raise WhatsAppSendError(NOT_CONFIGURED)
        core.message_payload({}, to=to, recipient=recipient)  # no addressee: refused before uploading
        media_id = self.retrying()(self.upload_media, data, mime, filename or "attachment")
        content = core.media_content(kind, media_id, caption=caption, filename=filename)
        return self._deliver(content, to, recipient, send_key)

    def upload_media(self, data: bytes, mime: str, filename: str) -> str:
        """Meta's media id of the uploaded file (one attempt); every failure is a WhatsAppSendError."""
        try:
            response = self.http.post(self.media_url, **core.upload_request(self, data, mime, filename))
        except httpx.TransportError as error:
            raise core.upload_transport_error(error) from error
        return core.upload_result(response.status_code, core.read_body(response))

    def mark_read(self, message_id: str, *, typing: bool = False) -> None:
        """Tried once: a missed tick is not worth a retry."""
        if not self.configured:
            raise WhatsAppSendError("WhatsApp sending is not configured.")
        try:
            response = self.http.post(
                self.messages_url, json=core.read_payload(message_id, typing), headers=self.headers
            )
        except httpx.TransportError as error:
            raise WhatsAppSendError(f"Could not reach the WhatsApp API ({type(error).__name__}).") from error
        if not response.is_success:
            core.raise_for_result(core.answer_result(response.status_code, core.read_body(response), 1))
