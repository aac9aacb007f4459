"""Sending messages through the WhatsApp Cloud API (`POST <base>/<phone_number_id>/messages`).

Retries use aiohttp-retry with exponential back-off on HTTP 429, 5xx, a refused connection and
Meta's throttling/transient error codes. A timeout or a connection dropped after the request went
out is not retried: the message may have been sent (see connectors/send_keys.py). Everything else (131047 outside the 24-hour window,
invalid parameters, ...) is returned at once as a `MetaError`: retrying would not help.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import aiohttp
import yaml
from aiohttp_retry import ExponentialRetry, RetryClient

from connectors.privacy import mask_user_id
from connectors.settings import WhatsAppSettings

logger = logging.getLogger(__name__)

# What is retried is the retry policy both senders share (contracts/graph_api.yml): 429, 5xx, and
# Meta's throttling or temporary-trouble codes.
_POLICY_FILE = Path(__file__).resolve().parent.parent / "contracts" / "graph_api.yml"
_RETRY_POLICY = yaml.safe_load(_POLICY_FILE.read_text(encoding="utf-8"))["retry"]
RETRIABLE_HTTP_STATUSES = frozenset(_RETRY_POLICY["http_statuses"])
RETRIABLE_META_CODES = frozenset(_RETRY_POLICY["meta_error_codes"])
OUTSIDE_SERVICE_WINDOW = 131047

_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


@dataclass(frozen=True)
class MetaError:
    code: Optional[int]
    title: str
    details: Optional[str] = None

    @classmethod
    def from_response(cls, http_status: int, body: Any) -> "MetaError":
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(code=None, title=f"HTTP {http_status}", details=str(body)[:500] if body else None)
        code = error.get("code")
        message = str(error.get("message") or f"HTTP {http_status}")
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        return cls(
            code=code if isinstance(code, int) else None,
            title=_CODE_PREFIX.sub("", message),
            details=details,
        )

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE_META_CODES


@dataclass(frozen=True)
class SendResult:
    wamid: Optional[str]
    http_status: Optional[int]
    error: Optional[MetaError]
    attempts: int
    # The request may have reached Meta but no answer came back (read timeout, connection dropped):
    # the customer may have the message. Such a send is never repeated (connectors/send_keys.py).
    uncertain: bool = False

    @property
    def ok(self) -> bool:
        return self.wamid is not None


class GraphApiClient:
    def __init__(self, settings: WhatsAppSettings) -> None:
        self._settings = settings
        self._session: Optional[aiohttp.ClientSession] = None
        self._client: Optional[RetryClient] = None

    def _ensure_client(self) -> RetryClient:
        # Created lazily: an aiohttp session belongs to the running event loop.
        if self._client is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.send_timeout_seconds),
                headers={"Authorization": f"Bearer {self._settings.access_token}"},
                trace_configs=[_attempt_counter()],
            )
            self._client = RetryClient(client_session=self._session, raise_for_status=False)
        return self._client

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._client = None

    async def send(self, payload: Dict[str, Any]) -> SendResult:
        """Send one message; never raises for delivery problems, returns what happened."""
        counter = {"attempts": 0}

        async def response_is_final(response: aiohttp.ClientResponse) -> bool:
            body = await _read_json(response)  # also frees the connection of a retried response
            if response.status < 400:
                return True
            error = MetaError.from_response(response.status, body)
            if response.status in RETRIABLE_HTTP_STATUSES or response.status >= 500 or error.retriable:
                logger.warning(
                    "WhatsApp send attempt %d to %s failed (HTTP %s, code %s: %s); will retry",
                    counter["attempts"], mask_user_id(payload.get("to") or payload.get("recipient")),
                    response.status, error.code, error.title,
                )
                return False
            return True

        retry_options = ExponentialRetry(
            attempts=self._settings.send_attempts,
            start_timeout=self._settings.send_backoff_seconds / 2,  # first pause = backoff
            max_timeout=30.0,
            factor=2.0,
            statuses=set(),
            retry_all_server_errors=False,  # decided in response_is_final, with the body read
            # Only errors that prove the request never reached Meta: Meta has no idempotency key, so
            # re-POSTing after a read timeout could give the customer the message twice.
            exceptions={aiohttp.ClientConnectorError},
            evaluate_response_callback=response_is_final,
        )
        try:
            async with self._ensure_client().post(
                self._settings.messages_url,
                json=payload,
                retry_options=retry_options,
                trace_request_ctx={"attempt_counter": counter},
            ) as response:
                body = await _read_json(response)
                status = response.status
        except aiohttp.ClientConnectorError as error:
            return SendResult(
                wamid=None,
                http_status=None,
                error=MetaError(code=None, title=f"connection failed: {error!r}"),
                attempts=counter["attempts"],
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.error(
                "WhatsApp send to %s: no answer from Meta (%r); it may have been sent, so it is not repeated",
                mask_user_id(payload.get("to") or payload.get("recipient")), error,
            )
            return SendResult(
                wamid=None,
                http_status=None,
                error=MetaError(code=None, title=f"no answer, outcome unknown: {error!r}"),
                attempts=counter["attempts"],
                uncertain=True,
            )
        attempts = counter["attempts"]
        if status >= 400:
            return SendResult(None, status, MetaError.from_response(status, body), attempts)
        wamid = _message_id(body)
        if wamid is None:
            return SendResult(None, status, MetaError(None, "response without a message id", str(body)[:500]), attempts)
        return SendResult(wamid=wamid, http_status=status, error=None, attempts=attempts)


def _attempt_counter() -> aiohttp.TraceConfig:
    """Counts HTTP attempts per send (aiohttp-retry puts `current_attempt` in the trace context)."""

    async def on_request_start(_session: Any, context: Any, _params: Any) -> None:
        request_context = context.trace_request_ctx or {}
        counter = request_context.get("attempt_counter")
        if counter is not None:
            counter["attempts"] = request_context.get("current_attempt", counter["attempts"] + 1)

    trace_config = aiohttp.TraceConfig()
    trace_config.on_request_start.append(on_request_start)
    return trace_config


async def _read_json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return await response.text(errors="replace")


def _message_id(body: Any) -> Optional[str]:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        return wamid if isinstance(wamid, str) and wamid else None
    return None
