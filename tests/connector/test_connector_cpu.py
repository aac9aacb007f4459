"""Session 14's cuts of the connector's CPU per message keep what the connector does (issue 16).

- The Graph API client's httpx/httpcore no longer searches `sys.path` for the missing optional `sniffio` on every
  lock, event and shield it makes (connectors/graph_api.py): the import fails as before, at once.
- Read receipts go out on a kept-alive aiohttp session, with the replies' retry policy (connectors/graph_api.py);
  since session 19 the replies too.
- A status webhook is resolved and persisted in one trip to the store's thread, and its send key is not
  looked at there when this process already knows it `sent` (connectors/service.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import connectors.graph_api as graph_api
from connectors.inbound import parse_webhook
from connectors.read_receipts import ReadReceipts
from connectors.send_keys import CALLBACK_FIELD
from connectors.service import WhatsAppService
from connectors.settings import WhatsAppSettings
from connectors.store import SEND_SENDING, SEND_SENT
from whatsapp_cloud import core, read_payload

from tests.connector.support import change, encode, new_message_id, new_wa_id, text_message, webhook


def test_a_missing_sniffio_is_remembered_and_httpcore_still_says_asyncio():
    if importlib.util.find_spec("sniffio") is not None or sys.modules.get("sniffio") is not None:
        pytest.skip("sniffio is installed here: nothing to remember")
    assert sys.modules["sniffio"] is None  # set when connectors.graph_api was imported
    with pytest.raises(ModuleNotFoundError):
        import sniffio  # noqa: F401
    from httpcore._synchronization import current_async_library

    async def library() -> str:
        return current_async_library()

    assert asyncio.run(library()) == "asyncio"


def test_an_installed_sniffio_is_left_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object() if name == "sniffio" else None)
    assert graph_api.remember_that_sniffio_is_missing() is False
    assert "sniffio" not in sys.modules


class CountingService(WhatsAppService):
    """The service with its store's trips to the thread counted."""

    def __init__(self, store_path: Path) -> None:
        super().__init__(WhatsAppSettings.from_env({
            "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "a",
            "WHATSAPP_PHONE_NUMBER_ID": "123", "WHATSAPP_STORE_URL": f"sqlite:///{store_path}",
        }))
        self.prepare()
        self.trips: List[str] = []
        run = self.store.run

        async def counted(method: Any, *args: Any, **kwargs: Any) -> Any:
            self.trips.append(getattr(method, "__name__", repr(method)))
            return await run(method, *args, **kwargs)

        self.store.run = counted  # type: ignore[method-assign]


def status_webhook(wamid: str, customer: str, status: str, key: str) -> bytes:
    return encode(webhook(change(statuses=[{
        "id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": customer,
        CALLBACK_FIELD: key,
    }])))


@pytest.mark.asyncio
async def test_a_status_webhook_takes_one_store_trip_when_its_key_is_known_sent(tmp_path):
    service = CountingService(tmp_path / "wa.db")
    customer = new_wa_id()
    try:
        # A message webhook: one trip (resolve + persist), the message stored.
        outcome = await service.accept(parse_webhook(encode(webhook(change([text_message(customer, "hi")])))))
        assert len(outcome.new_messages) == 1 and service.trips == ["_resolve_and_persist"]

        # The bot's reply went out and was settled `sent` by this process (what KeyedSender does).
        key, wamid = f"{new_message_id()}:0", "wamid.OUT" + new_message_id()[-10:]
        assert service.store.claim_send_key(key, customer, 60.0) is None
        service.store.settle_send_key(key, wamid, uncertain=False)
        service.trips.clear()
        for status in ("sent", "delivered", "read"):
            outcome = await service.accept(parse_webhook(status_webhook(wamid, customer, status, key)))
            assert outcome.new_statuses == 1
        assert service.trips == ["_resolve_and_persist"] * 3
        assert service.store.send_key_state(key) == SEND_SENT
    finally:
        await service.stop()


@pytest.mark.asyncio
async def test_a_status_echoing_a_key_not_known_sent_still_settles_it(tmp_path):
    """A send whose answer never came (timeout, crash) stays `sending`; Meta's status settles it."""
    service = CountingService(tmp_path / "wa.db")
    customer = new_wa_id()
    try:
        key, wamid = f"{new_message_id()}:0", "wamid.OUT" + new_message_id()[-10:]
        assert service.store.claim_send_key(key, customer, 60.0) is None
        assert service.store.send_key_state(key) == SEND_SENDING
        await service.accept(parse_webhook(status_webhook(wamid, customer, "sent", key)))
        # Settled in the webhook's own transaction (connectors/store.py `_store_status`): no second trip.
        assert service.trips == ["_resolve_and_persist"]
        assert service.store.send_key_state(key) == SEND_SENT
        service.trips.clear()
        await service.accept(parse_webhook(status_webhook(wamid, customer, "delivered", key)))
        assert service.trips == ["_resolve_and_persist"]  # now known: no second look
    finally:
        await service.stop()


# --- read receipts on the kept-alive aiohttp session (connectors/graph_api.py) ----------------------


class FakeGraphServer:
    """The Graph API's messages endpoint: answers from a script (status, body), or never (None)."""

    def __init__(self, answers: List[Any]) -> None:
        self.answers = list(answers)
        self.bodies: List[Dict[str, Any]] = []
        self.headers: List[str] = []

    async def start(self) -> str:
        from aiohttp import web

        async def messages(request: "web.Request") -> "web.Response":
            self.bodies.append(await request.json())
            self.headers.append(request.headers.get("Authorization", ""))
            answer = self.answers.pop(0) if self.answers else (200, {"success": True})
            if answer is None:
                await asyncio.sleep(30)  # no answer within the client's timeout
            status, body = answer
            return web.json_response(body, status=status)

        app = web.Application()
        app.router.add_post("/v21.0/123/messages", messages)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v21.0"

    async def stop(self) -> None:
        await self.runner.cleanup()


def graph_client(base_url: str, sleeps: List[float]) -> graph_api.GraphApiClient:
    settings = WhatsAppSettings.from_env({
        "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "token-1",
        "WHATSAPP_PHONE_NUMBER_ID": "123", "WHATSAPP_API_BASE_URL": base_url, "WHATSAPP_SEND_ATTEMPTS": "3",
        "WHATSAPP_SEND_BACKOFF_SECONDS": "0.5", "WHATSAPP_SEND_TIMEOUT_SECONDS": "0.3",
    })
    client = graph_api.GraphApiClient(settings)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client.sleep = sleep
    return client


@pytest.mark.asyncio
async def test_a_read_receipt_goes_out_once_with_the_token_and_its_answer_is_read():
    server = FakeGraphServer([(200, {"success": True})])
    client = graph_client(await server.start(), [])
    try:
        result = await client.send_read_receipt(read_payload("wamid.IN1", typing=True))
        # Meta answers a read with {"success": true}: no message id, as the httpx client reads it too.
        assert result == core.answer_result(200, {"success": True}, 1)
        assert server.bodies == [read_payload("wamid.IN1", typing=True)]
        assert server.headers == ["Bearer token-1"]
        refused = FakeGraphServer([(400, {"error": {"code": 100, "message": "(#100) Invalid parameter"}})])
        other = graph_client(await refused.start(), [])
        result = await other.send_read_receipt(read_payload("wamid.IN2"))
        assert (result.http_status, result.error.code, result.error.title, result.attempts) == (
            400, 100, "Invalid parameter", 1)  # what the httpx client answers: not tried again
        await other.close()
        await refused.stop()
    finally:
        await client.close()
        await server.stop()


@pytest.mark.asyncio
async def test_a_read_receipt_is_retried_like_a_send_on_throttling_and_on_a_connection_never_made():
    sleeps: List[float] = []
    server = FakeGraphServer([(503, {}), (429, {"error": {"code": 130429, "message": "rate"}}), (200, {"success": True})])
    client = graph_client(await server.start(), sleeps)
    try:
        result = await client.send_read_receipt(read_payload("wamid.IN1"))
        assert (result.http_status, result.attempts) == (200, 3)
        assert sleeps == [0.5, 1.0]
    finally:
        await client.close()
        await server.stop()

    sleeps.clear()
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = graph_client(f"http://127.0.0.1:{port}/v21.0", sleeps)
    try:
        result = await client.send_read_receipt(read_payload("wamid.IN1"))
        assert result.retryable and not result.uncertain and result.attempts == 3 and result.http_status is None
        assert sleeps == [0.5, 1.0]
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_a_read_receipt_without_an_answer_is_uncertain_and_not_repeated():
    sleeps: List[float] = []
    server = FakeGraphServer([None])
    client = graph_client(await server.start(), sleeps)
    try:
        result = await client.send_read_receipt(read_payload("wamid.IN1"))
        assert result.uncertain and not result.retryable and result.attempts == 1
        assert len(server.bodies) == 1 and sleeps == []
    finally:
        await client.close()
        await server.stop()


@pytest.mark.asyncio
async def test_the_read_receipts_go_out_on_the_kept_alive_session_and_never_through_httpx():
    # Since issue 16's session 19 the replies take the same session (tests/connector/test_graph_api_transport.py).
    import httpx

    server = FakeGraphServer([])
    client = graph_client(await server.start(), [])

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("a read receipt went through httpx")

    client.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))  # left for media uploads only
    receipts = ReadReceipts(client, lambda _sender: asyncio.sleep(0, result=False))
    channel = type("Channel", (), {"messages_sent": 1})()
    try:
        async with receipts.while_answering("wamid.IN1", "919800000001", channel):
            pass
        await receipts.settle()
        assert server.bodies == [read_payload("wamid.IN1")]
    finally:
        await client.close()
        await server.stop()
