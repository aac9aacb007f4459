"""The connector's bot replies go out on a kept-alive aiohttp session (connectors/graph_api.py) under the
contract whatsapp_cloud gives them on httpx: `retryable` only when the connection was certainly never
made, `uncertain` (never POSTed again) once the request may have left, answers read by
`whatsapp_cloud.core.answer_result`, the same tenacity policy and the same log lines.

Every case runs against real sockets on 127.0.0.1 (tests/connector/raw_graph.py: no mock of aiohttp or of
httpx's transport), once with the connector's client and once with whatsapp_cloud's httpx client built from
the same settings, and asserts the same outcome for both, counting what the server actually received.
Timeouts are tiny only where the server never answers; nothing asserts a duration."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Callable, Dict, List, Optional

import httpx
import pytest

from connectors import graph_api
from connectors.graph_api import GraphApiClient
from connectors.privacy import mask_user_id
from connectors.settings import WhatsAppSettings
from tests.connector.raw_graph import CLOSE, HOLD, PARTIAL, RESET, RawGraph, full_backlog, queued_requests
from whatsapp_cloud import (
    OUTSIDE_SERVICE_WINDOW,
    AsyncWhatsAppClient,
    MetaError,
    WhatsAppSendError,
    WhatsAppSendUnconfirmed,
    core,
    read_payload,
)

TEXT = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "919812345210", "type": "text",
        "text": {"preview_url": False, "body": "Your order ships today."}}
NEVER = 0.2  # the timeout, only where the server never answers
KINDS = ["connector", "httpx"]  # the connector's client (aiohttp) and whatsapp_cloud's (httpx)


def meta_error(code: int, message: str = "x", status: int = 400, details: Optional[str] = None) -> tuple:
    error: Dict[str, Any] = {"code": code, "message": message}
    if details:
        error["error_data"] = {"details": details}
    return status, {"error": error}


class Sender:
    """One client; `sleeps` records the pauses it asked for, `on_sleep` may act at each (the n-th pause)."""

    def __init__(self, kind: str, base_url: str, attempts: int, timeout: float) -> None:
        self.kind = kind
        self.sleeps: List[float] = []
        self.on_sleep: Callable[[int], None] = lambda n: None
        if kind == "connector":
            self.client: Any = GraphApiClient(WhatsAppSettings.from_env({
                "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "token-1",
                "WHATSAPP_PHONE_NUMBER_ID": "1234", "WHATSAPP_API_BASE_URL": base_url,
                "WHATSAPP_SEND_ATTEMPTS": str(attempts), "WHATSAPP_SEND_BACKOFF_SECONDS": "0.5",
                "WHATSAPP_SEND_TIMEOUT_SECONDS": str(timeout),
            }))
        else:  # what GraphApiClient's constructor gives whatsapp_cloud, with httpx left in place
            self.client = AsyncWhatsAppClient(
                base_url=base_url, phone_number_id="1234", access_token="token-1", attempts=attempts,
                backoff_seconds=0.5, max_backoff_seconds=30.0, timeout_seconds=timeout, mask=mask_user_id,
            )

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.on_sleep(len(self.sleeps))

        self.client.sleep = sleep

    async def send(self, payload: Dict[str, Any] = TEXT) -> core.SendResult:
        return await self.client.send(dict(payload))


@pytest.fixture(params=KINDS)
async def make(request):
    made: List[Sender] = []

    def make_sender(base_url: str, *, attempts: int = 3, timeout: float = 15.0) -> Sender:
        made.append(Sender(request.param, base_url, attempts, timeout))
        return made[-1]

    yield make_sender
    for sender in made:
        await sender.client.close()


@pytest.fixture
def graph():
    server = RawGraph()
    yield server
    server.close()


# --- no connection: nothing reached the server, tried again ---------------------------------------------


async def test_a_refused_connection_is_retryable_retried_and_nothing_is_received(make):
    graph = RawGraph(listening=False)  # bound, not listening: the kernel refuses
    try:
        sender = make(graph.base_url)
        result = await sender.send()
        assert result.retryable and not result.uncertain and not result.ok
        assert (result.attempts, result.http_status, sender.sleeps) == (3, None, [0.5, 1.0])
        assert "Could not reach the WhatsApp API" in result.reason
        assert graph.connections == 0 and graph.bodies() == []
    finally:
        graph.close()


async def test_refused_twice_then_listening_sends_the_reply_exactly_once(make):
    graph = RawGraph(listening=False)
    try:
        sender = make(graph.base_url)
        sender.on_sleep = lambda n: graph.listen() if n == 2 else None  # the server comes up before attempt 3
        result = await sender.send()
        assert result.ok and result.wamid == "wamid.1" and result.attempts == 3 and sender.sleeps == [0.5, 1.0]
        assert graph.connections == 1 and graph.bodies() == [TEXT]
    finally:
        graph.close()


async def test_a_connect_timeout_is_retryable_retried_and_nothing_is_received(make):
    listener, filler = full_backlog()  # the kernel drops the SYN: neither refused nor accepted
    try:
        sender = make(f"http://127.0.0.1:{listener.getsockname()[1]}/v21.0", timeout=NEVER)
        result = await sender.send()
        assert result.retryable and not result.uncertain and result.attempts == 3 and sender.sleeps == [0.5, 1.0]
        assert queued_requests(listener) == [b""]  # only the filler, which sent nothing: no attempt got in
    finally:
        filler.close()
        listener.close()


# --- the request reached the server: uncertain, never POSTed again --------------------------------------


@pytest.mark.parametrize("failure", [CLOSE, RESET, PARTIAL], ids=["closed", "reset", "half-answered"])
async def test_a_server_that_reads_the_request_and_drops_the_connection_gets_it_once(make, graph, failure, caplog):
    sender = make(graph.base_url, attempts=5)
    graph.script = [failure]
    with caplog.at_level(logging.WARNING, logger="whatsapp_cloud"):
        result = await sender.send()
    assert result.uncertain and not result.retryable and not result.ok and result.http_status is None
    assert result.attempts == 1 and sender.sleeps == []  # 5 attempts allowed: a second POST, a second message
    assert "may or may not have been sent" in result.reason
    assert graph.bodies() == [TEXT]
    assert [(r.levelname, r.msg) for r in caplog.records] == [
        ("ERROR", "WhatsApp send to %s: no answer from Meta (%s); it may have been sent, so it is not repeated")]
    assert (await sender.send()).ok and len(graph.bodies()) == 2  # the client is fine afterwards


async def test_a_server_that_reads_the_request_and_never_answers_gets_it_once(make, graph):
    sender = make(graph.base_url, attempts=5, timeout=NEVER)
    graph.script = [HOLD]
    result = await sender.send()
    assert result.uncertain and not result.retryable and result.attempts == 1 and sender.sleeps == []
    assert graph.bodies() == [TEXT]
    with pytest.raises(WhatsAppSendUnconfirmed, match="may or may not have been sent"):
        graph.script = [HOLD]
        await sender.client.send_text("Your refund is on its way.", to="919812345210")
    assert len(graph.bodies()) == 2


async def test_a_server_that_never_reads_the_request_is_uncertain_and_not_retried(make):
    """Accepted by the kernel, never read by the server: the request cannot be written out completely (httpx's
    write timeout; the session's total timeout). Part of it did leave, so it is not sent again."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # nobody accepts: the connection is made, the bytes pile up in its buffers
    try:
        sender = make(f"http://127.0.0.1:{listener.getsockname()[1]}/v21.0", attempts=5, timeout=NEVER)
        big = {**TEXT, "text": {"body": "x" * (64 * 1024 * 1024)}}  # more than the socket buffers hold
        result = await sender.send(big)
        assert result.uncertain and not result.retryable and result.attempts == 1 and sender.sleeps == []
        [partial] = queued_requests(listener)
        assert partial.startswith(b"POST /v21.0/1234/messages")  # the request had begun to leave
    finally:
        listener.close()


# --- a kept-alive connection the server closed between two sends ---------------------------------------


async def test_a_kept_alive_connection_the_client_saw_closing_is_not_reused(make, graph):
    sender = make(graph.base_url)
    assert (await sender.send()).ok
    graph.half_close_idle_connection()  # FIN, and the server keeps reading the connection
    if sender.kind == "connector":  # aiohttp drops a pooled connection when its loop sees the FIN
        await asyncio.to_thread(graph.wait_until_client_closed)
    # (httpx leaves an idle connection alone and polls it for readability when it takes it from the pool)
    result = await sender.send()
    assert result.ok and result.attempts == 1 and sender.sleeps == []
    assert graph.bodies() == [TEXT, TEXT] and graph.connections == 2  # a new connection, one request each


async def test_a_kept_alive_connection_closed_while_the_client_was_not_looking_never_doubles(make, graph):
    """The server closes the idle connection while the client's loop is busy (this test blocks it), and the
    next reply is sent at once. httpx polls the socket before reusing it and opens a new connection. aiohttp
    takes the connection from its pool (its loop has not seen the FIN yet), writes the request into it and
    learns of the close only then (broken pipe, reset or disconnect, depending on where the write was).
    That is not retried: from the client's side it cannot be told apart from a server that read the
    request and dropped the connection (the next test), where a retry would be a second message."""
    sender = make(graph.base_url, attempts=5)
    assert (await sender.send()).ok
    graph.close_idle_connections()  # blocking: the client's loop does not run until it has been closed
    result = await sender.send()
    if sender.kind == "connector":
        assert result.uncertain and not result.retryable and result.attempts == 1 and sender.sleeps == []
        assert graph.bodies() == [TEXT] and graph.connections == 1  # nothing arrived: not sent, not doubled
    else:
        assert result.ok and result.attempts == 1 and graph.bodies() == [TEXT, TEXT] and graph.connections == 2
    assert (await sender.send()).ok and graph.connections == 2  # the next reply takes a new connection


async def test_a_reused_connection_dropped_after_the_server_read_the_request_is_not_retried(make, graph):
    sender = make(graph.base_url, attempts=5)
    assert (await sender.send()).ok
    graph.script = [CLOSE]  # the second request, on the kept-alive connection: read, then the connection closes
    result = await sender.send()
    assert result.uncertain and not result.retryable and result.attempts == 1 and sender.sleeps == []
    assert graph.bodies() == [TEXT, TEXT] and graph.connections == 1  # Meta would have it: retrying doubles it


# --- answers: mapped by whatsapp_cloud.core.answer_result, retried per contracts/graph_api.yml -----------


@pytest.mark.parametrize(
    "failure",
    [(429, {}), (500, {"error": {"message": "oops"}}), (503, "busy"), meta_error(130429, "rate limit"),
     meta_error(131056, "pair rate limit")],
    ids=["429", "500", "503-text", "130429", "131056"],
)
async def test_throttling_and_server_errors_are_tried_again_on_the_same_connection(make, graph, failure, caplog):
    sender = make(graph.base_url)
    graph.script = [failure, failure]
    with caplog.at_level(logging.WARNING, logger="whatsapp_cloud"):
        result = await sender.send()
    assert result.ok and result.wamid == "wamid.3" and result.attempts == 3 and sender.sleeps == [0.5, 1.0]
    assert graph.bodies() == [TEXT] * 3 and graph.connections == 1  # kept alive across the retries
    assert [(r.levelname, r.msg) for r in caplog.records] == [
        ("WARNING", "WhatsApp send attempt %d to %s failed (HTTP %s, code %s: %s); retryable")] * 2


async def test_the_pauses_double_and_the_last_answer_is_returned(make, graph):
    sender = make(graph.base_url, attempts=4)
    graph.script = [meta_error(130429, "rate limit")] * 4
    result = await sender.send()
    assert not result.ok and result.attempts == 4 and result.http_status == 400
    assert result.error.code == 130429 and result.retryable and not result.uncertain
    assert sender.sleeps == [0.5, 1.0, 2.0] and len(graph.bodies()) == 4
    graph.script = [meta_error(130429, "rate limit")] * 4
    with pytest.raises(WhatsAppSendError) as raised:
        await sender.client.send_text("Hello", to="919812345210")
    assert raised.value.retryable and raised.value.code == 130429 and "rate limit" in raised.value.reason


async def test_outside_the_24_hour_window_is_not_tried_again(make, graph):
    sender = make(graph.base_url)
    answer = meta_error(OUTSIDE_SERVICE_WINDOW, "(#131047) Re-engagement message", details="more than 24 hours")
    graph.script = [answer]
    result = await sender.send()
    assert not result.ok and not result.retryable and not result.uncertain and result.attempts == 1
    assert result.error == MetaError(131047, "Re-engagement message", "more than 24 hours") and sender.sleeps == []
    assert result == core.answer_result(*answer, 1)
    assert len(graph.bodies()) == 1


@pytest.mark.parametrize("code", [100, 190, 131026, 132000])
async def test_other_refusals_are_returned_at_once(make, graph, code):
    sender = make(graph.base_url)
    graph.script = [meta_error(code)]
    result = await sender.send()
    assert result.attempts == 1 and not result.retryable and result.error.code == code
    assert len(graph.bodies()) == 1


async def test_an_answer_without_a_message_id_is_not_sent_and_not_retried(make, graph):
    sender = make(graph.base_url)
    graph.script = [(200, {"messaging_product": "whatsapp"})]
    result = await sender.send()
    assert result == core.answer_result(200, {"messaging_product": "whatsapp"}, 1) and not result.ok
    assert len(graph.bodies()) == 1


# --- the connector's client only -----------------------------------------------------------------------


async def test_replies_and_read_receipts_share_one_kept_alive_connection_and_never_touch_httpx(graph):
    sender = Sender("connector", graph.base_url, attempts=3, timeout=15.0)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a reply or read receipt went through httpx: {request.url}")

    sender.client.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))  # httpx: media uploads only
    graph.script = [None, (200, {"success": True}), None]
    try:
        assert (await sender.client.send_text("Hello", to="919812345210", send_key="wamid.IN1:0")) == "wamid.1"
        receipt = await sender.client.send_read_receipt(read_payload("wamid.IN1", typing=True))
        assert receipt == core.answer_result(200, {"success": True}, 1)
        assert (await sender.send()).wamid == "wamid.3"
        assert graph.connections == 1 and len(graph.bodies()) == 3
        assert graph.bodies()[1] == read_payload("wamid.IN1", typing=True)
    finally:
        await sender.client.close()


@pytest.mark.parametrize(
    "environment, expected",
    [
        ({}, None),
        ({"HTTPS_PROXY": "http://proxy.internal:3128"}, "http://proxy.internal:3128"),
        ({"ALL_PROXY": "http://all.internal:3128"}, "http://all.internal:3128"),
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "graph.facebook.com"}, None),
        ({"HTTP_PROXY": "http://plain.internal:3128"}, None),  # for http:// URLs only, as in httpx
    ],
)
def test_the_session_takes_the_proxy_httpx_would_take_from_the_environment(monkeypatch, environment, expected):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert graph_api.environment_proxy("https://graph.facebook.com/v21.0/1234/messages") == expected


def test_a_read_timeout_a_total_timeout_a_disconnect_or_a_reset_is_never_counted_as_never_made():
    import aiohttp

    # (refused and connect timeouts: the tests above, on real sockets)
    assert not graph_api.connection_never_made(aiohttp.ServerTimeoutError("Timeout on reading data from socket"))
    assert not graph_api.connection_never_made(asyncio.TimeoutError())  # the total timeout
    assert not graph_api.connection_never_made(aiohttp.ServerDisconnectedError())
    assert not graph_api.connection_never_made(aiohttp.ClientOSError(104, "Connection reset by peer"))
