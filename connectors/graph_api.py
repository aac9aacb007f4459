"""The connector's Graph API client: the project's one WhatsApp Cloud API client (`whatsapp_cloud`,
asynchronous shell), with the connector's attempts, first pause and timeout (`WHATSAPP_SEND_*`).

What is retried is contracts/graph_api.yml: HTTP 429, 5xx, Meta's throttling codes, and a connection
never made. A timeout or a connection dropped after the request went out is not: the message may have
been sent (`SendResult.uncertain`, see connectors/send_keys.py). Everything else (131047 outside the
24-hour window, invalid parameters, ...) is returned at once as a `MetaError`.

The transport. Bot replies (`send`, hence `deliver` and `send_text` ...) and read receipts ("blue ticks",
`send_read_receipt`, connectors/read_receipts.py) go out on one kept-alive aiohttp session; only media
uploads stay on whatsapp_cloud's httpx client, and the inbox keeps its own (synchronous, httpx) client.
Everything above the transport is whatsapp_cloud's: the tenacity retry loop and its pauses (`send`,
`retrying`), `core.answer_result` for every answer, `core.log_attempt` for the log lines. CPU per send,
measured in-process (session 19: `time.process_time` over 3,000 sends of a text reply to a keep-alive
HTTP/1.1 server in another process on 127.0.0.1, best of 3 runs, one send at a time and eight at once,
repeated six times on the shared 2-core machine): httpx 1.38-1.85 ms (median 1.5), this session 0.44-0.71
ms (median 0.5), about 1 ms less per reply. Plain HTTP: what TLS to Meta adds was not measured.

Exactly once, transport failure by transport failure, as `whatsapp_cloud.core.transport_result` says it
for httpx (`connection_never_made`; each case is a test on real sockets in
tests/connector/test_graph_api_transport.py, run against both clients):

- refused (`ClientConnectorError`; also DNS, TLS handshake and proxy connect failures) and the connect
  timeout (making the connection or waiting for a free one in the pool): nothing was written, so
  `retryable`, retried with the policy's pauses;
- the server read the request and closed or reset the connection, or answered half, or never answered
  (read timeout), or never read it (the total timeout, 3 x `WHATSAPP_SEND_TIMEOUT_SECONDS`, stands in for
  httpx's write timeout): `uncertain`, one POST, never repeated;
- a kept-alive connection the server closed between two replies: when the client's event loop has seen the
  close, aiohttp drops the connection from its pool and the reply takes a new one (sent once). When the
  close arrives after the loop last looked, aiohttp writes the reply into the dead connection and only
  then fails (broken pipe, reset or disconnect). From the client's side that cannot be told apart from a
  server that read the request and dropped the connection, so it is `uncertain` and not retried: never a
  second message, but here a reply that did not go out (logged as an error; its send key stays
  `unknown`). httpx polls a pooled socket before reusing it and would have used a new connection. The
  window is one turn of the event loop; idle connections are dropped after 5 s (httpx's keep-alive
  expiry), before most servers' idle timeouts would close them.

The session reads a proxy from the environment once (`environment_proxy`, as httpx does per client).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
import urllib.parse
import urllib.request
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
        self._kept_alive: Optional[aiohttp.ClientSession] = None  # made on first use, inside the running loop
        self._proxy: Optional[str] = None

    async def send_read_receipt(self, payload: Dict[str, Any]) -> SendResult:
        """POSTs a read receipt (with or without "typing…"): the same path, policy and log lines as `send`."""
        return await self.send(payload)

    def _session(self) -> aiohttp.ClientSession:
        if self._kept_alive is None or self._kept_alive.closed:
            seconds = self.timeout_seconds
            # connect: making the connection, or waiting for a free one (httpx's connect and pool timeouts);
            # sock_read: each wait for the answer's bytes once the request is written (httpx's read timeout);
            # total: a bound on the whole attempt, for a write that never drains (httpx's write timeout).
            timeout = aiohttp.ClientTimeout(total=3 * seconds, connect=seconds, sock_read=seconds)
            # An idle connection is dropped after 5 s, as httpx does (keepalive_expiry), so that a server's
            # idle timeout rarely closes one just as a reply goes out (the module's docstring).
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS)
            self._kept_alive = aiohttp.ClientSession(timeout=timeout, headers=self.headers, connector=connector)
            self._proxy = environment_proxy(self.messages_url)
        return self._kept_alive

    async def _post_once(self, payload: Dict[str, Any], attempt: int) -> SendResult:
        """One POST of a reply or a read receipt, for `send` (whatsapp_cloud's retry loop, unchanged)."""
        try:
            async with self._session().post(self.messages_url, json=payload, proxy=self._proxy) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            result = _transport_failure(error, attempt, self.base_url)
        else:
            result = core.answer_result(status, _body(raw), attempt)
        if not result.ok:  # core.log_attempt logs nothing for a sent message, but masks the number first
            core.log_attempt(result, payload, self.mask)
        return result

    async def close(self) -> None:
        await super().close()  # the httpx client, used only for media uploads
        if self._kept_alive is not None:
            await self._kept_alive.close()
        self._kept_alive = None


KEEPALIVE_SECONDS = 5.0


def environment_proxy(url: str) -> Optional[str]:
    """The proxy httpx would take from the environment for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY,
    NO_PROXY), read once per session: aiohttp's own `trust_env` would read it (and ~/.netrc) per request."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all") or None


def _body(raw: bytes) -> Any:
    """Meta's answer as `whatsapp_cloud.core.read_body` reads it: JSON, else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _transport_failure(error: BaseException, attempt: int, base_url: str) -> SendResult:
    """No answer, as `whatsapp_cloud.core.transport_result` says it for httpx: `retryable` only when the
    connection was certainly never made, `uncertain` for anything after the request may have gone out."""
    name = type(error).__name__
    if connection_never_made(error):
        return SendResult(None, None, MetaError(None, f"connection failed: {error!r}"), attempt, retryable=True,
                          reason=f"Could not reach the WhatsApp API at {base_url} ({name}).")
    return SendResult(None, None, MetaError(None, f"no answer, outcome unknown: {error!r}"), attempt, uncertain=True,
                      reason=f"The WhatsApp API did not answer ({name}); the reply may or may not have been sent.")


def connection_never_made(error: BaseException) -> bool:
    """aiohttp raises these only before a byte of the request is written (tests/connector/test_graph_api_transport.py):
    `ClientConnectorError` (refused, unreachable, DNS, TLS handshake, proxy connect) from the connector, and the
    `ServerTimeoutError` of the connect phase (making the connection or waiting for a free one in the pool),
    raised `from` the phase's asyncio timeout (aiohttp >= 3.10 names it `ConnectionTimeoutError`). The read
    timeout is a `ServerTimeoutError` too, set on the protocol without a cause (`SocketTimeoutError` in 3.10).
    Everything else (`ServerDisconnectedError`, `ClientOSError` such as a reset, `ClientPayloadError`, a
    malformed answer, the total timeout) can come after the request left."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return True
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)
    if connect_timeout is not None:
        return isinstance(error, connect_timeout)
    return isinstance(error, aiohttp.ServerTimeoutError) and isinstance(error.__cause__, asyncio.TimeoutError)
