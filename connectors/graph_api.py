"""The connector's Graph API client: the project's one WhatsApp Cloud API client (`whatsapp_cloud`,
asynchronous shell), with the connector's attempts, first pause and timeout (`WHATSAPP_SEND_*`).

What is retried is contracts/graph_api.yml: HTTP 429, 5xx, Meta's throttling codes, and a connection
never made. A timeout or a connection dropped after the request went out is not: the message may have
been sent (`SendResult.uncertain`, see connectors/send_keys.py). Everything else (131047 outside the
24-hour window, invalid parameters, ...) is returned at once as a `MetaError`.

Read receipts ("blue ticks", connectors/read_receipts.py) go through `send_read_receipt`: the same payloads,
attempts, pauses and timeout, on a kept-alive aiohttp session instead of httpx (~0.3 instead of ~1.3 ms of
CPU per request). Only there: marking a message read twice does nothing, so which transport failures count
as "never sent" cannot make a customer see anything twice. The replies keep the httpx client."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import logging
import sys
from typing import Any, Dict, Optional

import aiohttp
from whatsapp_cloud import OUTSIDE_SERVICE_WINDOW, AsyncWhatsAppClient, MetaError, SendResult
from whatsapp_cloud import core
from whatsapp_cloud import RETRYABLE_HTTP_STATUSES as RETRIABLE_HTTP_STATUSES

from connectors.privacy import mask_user_id
from connectors.settings import WhatsAppSettings

# httpx logs every request at INFO (with the phone number id in the URL); the client logs what matters.
# Same as the inbox (inbox/__main__.py).
logging.getLogger("httpx").setLevel(logging.WARNING)


def remember_that_sniffio_is_missing() -> bool:
    """httpcore (under httpx) runs `import sniffio` for every lock, event and cancellation shield it makes,
    several per request, to tell asyncio from trio. sniffio is optional and not installed in this venv, and a
    failed import searches every `sys.path` entry again each time: ~0.3 ms of CPU per Graph API request, about
    3 % of a Rasa instance's time under WhatsApp load (bench/README_cluster.md, session 14). `None` in
    `sys.modules` makes the same import fail at once with the same `ModuleNotFoundError`, so httpcore's answer
    (asyncio) does not change. Nothing is done when sniffio is installed. Returns whether it was missing."""
    if "sniffio" in sys.modules:
        return sys.modules["sniffio"] is None
    if importlib.util.find_spec("sniffio") is not None:
        return False
    sys.modules["sniffio"] = None  # type: ignore[assignment]
    return True


remember_that_sniffio_is_missing()

__all__ = ["GraphApiClient", "MetaError", "OUTSIDE_SERVICE_WINDOW", "RETRIABLE_HTTP_STATUSES", "SendResult"]


class GraphApiClient(AsyncWhatsAppClient):
    def __init__(self, settings: WhatsAppSettings) -> None:
        super().__init__(
            base_url=settings.api_base_url,
            phone_number_id=settings.phone_number_id,
            access_token=settings.access_token,
            attempts=settings.send_attempts,
            backoff_seconds=settings.send_backoff_seconds,  # then doubling, at most 30 s
            max_backoff_seconds=30.0,
            timeout_seconds=settings.send_timeout_seconds,
            mask=mask_user_id,
        )
        self._best_effort: Optional[aiohttp.ClientSession] = None  # made on first use, inside the running loop

    async def send_read_receipt(self, payload: Dict[str, Any]) -> SendResult:
        """POSTs a read receipt (with or without "typing…"), retried per the policy like `send`."""
        attempts = itertools.count(1)

        async def attempt() -> SendResult:
            return await self._post_best_effort(payload, next(attempts))

        return await self.retrying(result=True)(attempt)

    def _session(self) -> aiohttp.ClientSession:
        if self._best_effort is None or self._best_effort.closed:
            timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout_seconds, sock_read=self.timeout_seconds)
            self._best_effort = aiohttp.ClientSession(timeout=timeout, headers=self.headers)
        return self._best_effort

    async def _post_best_effort(self, payload: Dict[str, Any], attempt: int) -> SendResult:
        try:
            async with self._session().post(self.messages_url, json=payload) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            result = _transport_failure(error, attempt, self.base_url)
        else:
            result = core.answer_result(status, _body(raw), attempt)
        core.log_attempt(result, payload, self.mask)
        return result

    async def close(self) -> None:
        await super().close()
        if self._best_effort is not None:
            await self._best_effort.close()
        self._best_effort = None


def _body(raw: bytes) -> Any:
    """Meta's answer as `whatsapp_cloud.core.read_body` reads it: JSON, else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _transport_failure(error: BaseException, attempt: int, base_url: str) -> SendResult:
    """No answer, as `whatsapp_cloud.core.transport_result` says it for httpx: a connection never made (refused,
    or aiohttp's connect timeout, raised from the timeout of the connect phase) is `retryable`; anything after
    the request may have gone out is `uncertain` and not tried again."""
    never_made = isinstance(error, aiohttp.ClientConnectorError) or (
        isinstance(error, aiohttp.ServerTimeoutError) and isinstance(error.__cause__, asyncio.TimeoutError)
    )
    name = type(error).__name__
    if never_made:
        return SendResult(None, None, MetaError(None, f"connection failed: {error!r}"), attempt, retryable=True,
                          reason=f"Could not reach the WhatsApp API at {base_url} ({name}).")
    return SendResult(None, None, MetaError(None, f"no answer, outcome unknown: {error!r}"), attempt, uncertain=True,
                      reason=f"The WhatsApp API did not answer ({name}); the reply may or may not have been sent.")
