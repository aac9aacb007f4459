"""Every test runs twice: against the synchronous client and the asynchronous one (mirrored)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fake_graph import FakeGraph
from whatsapp_cloud import AsyncWhatsAppClient, WhatsAppClient


class ConnectFailures:
    """Fails the first `failures` requests as if the connection was refused, then lets them through."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def refuse(self, request: httpx.Request) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise httpx.ConnectError("connection refused", request=request)


class SyncFlaky(httpx.HTTPTransport):
    def __init__(self, failures: ConnectFailures) -> None:
        super().__init__()
        self._failures = failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._failures.refuse(request)
        return super().handle_request(request)


class AsyncFlaky(httpx.AsyncHTTPTransport):
    def __init__(self, failures: ConnectFailures) -> None:
        super().__init__()
        self._failures = failures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._failures.refuse(request)
        return await super().handle_async_request(request)


class Harness:
    """One client (sync or async) driven synchronously; `sleeps` records the pauses it asked for."""

    def __init__(
        self, kind: str, base_url: str, *, attempts: int = 4, timeout: float = 5.0, refused_connections: int = 0
    ) -> None:
        self.kind = kind
        self.sleeps: list[float] = []
        failures = ConnectFailures(refused_connections)
        common = dict(
            base_url=base_url,
            phone_number_id="1234",
            access_token="token",
            attempts=attempts,
            backoff_seconds=0.5,
            max_backoff_seconds=1.5,
        )
        if kind == "sync":
            self.client: Any = WhatsAppClient(
                **common,
                sleep=self.sleeps.append,
                http=httpx.Client(timeout=httpx.Timeout(timeout), transport=SyncFlaky(failures)),
            )
            self._loop = None
        else:

            async def sleep(seconds: float) -> None:
                self.sleeps.append(seconds)

            self._loop = asyncio.new_event_loop()
            self.client = AsyncWhatsAppClient(
                **common,
                sleep=sleep,
                http=httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=AsyncFlaky(failures)),
            )

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self._loop is None:
            return method
        return lambda *args, **kwargs: self._loop.run_until_complete(method(*args, **kwargs))

    def close(self) -> None:
        if self._loop is None:
            self.client.http.close()
        else:
            self._loop.run_until_complete(self.client.close())
            self._loop.close()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph()
    yield fake
    fake.close()


@pytest.fixture(params=["sync", "async"])
def make_client(request):
    made: list[Harness] = []

    def make(base_url: str, **options: Any) -> Harness:
        made.append(Harness(request.param, base_url, **options))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


def closed_port() -> int:
    """A port nothing listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
