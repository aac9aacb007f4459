"""A status the inbox refuses for its content must not hold back every later status (item 6)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List

import pytest

from connectors.inbound import parse_webhook
from connectors.status_forwarding import StatusForwarder
from connectors.store import WhatsAppStore
from tests.connector.support import change, encode, webhook

pytestmark = pytest.mark.asyncio

BAD = "wamid.REFUSED"


class PickyInbox:
    """Answers 422 to any batch holding the status BAD, 200 otherwise; records what it accepted."""

    def __init__(self) -> None:
        self.accepted: List[str] = []
        self.accepted_batches: List[List[str]] = []
        self.refused_batches = 0
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                statuses = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["statuses"]
                ids = [status["id"] for status in statuses]
                refused = BAD in ids
                if refused:
                    inbox.refused_batches += 1
                else:
                    inbox.accepted.extend(ids)
                    inbox.accepted_batches.append(ids)
                self.send_response(422 if refused else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"detail": "unknown message"}' if refused else b'{"accepted": 1}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def status(message_id: str) -> dict:
    return {"id": message_id, "status": "delivered", "timestamp": "1764065702", "recipient_id": "919812345210"}


async def settled(store: WhatsAppStore) -> None:
    """Waits on the condition (nothing left to forward), not on a clock."""
    for _ in range(10_000):
        with store.engine.connect() as connection:
            pending = connection.exec_driver_sql(
                "SELECT count(*) FROM wa_statuses WHERE forward_state = 'pending'").scalar()
        if not pending:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"{pending} status(es) never forwarded")


async def test_a_refused_status_becomes_a_dead_letter_and_the_rest_are_forwarded(store_url):
    store = WhatsAppStore(store_url)
    store.create_schema()
    inbox = PickyInbox()
    ids = [f"wamid.OK{i}" for i in range(7)]
    ids.insert(3, BAD)
    parsed = parse_webhook(encode(webhook(change(statuses=[status(i) for i in ids]))))
    store.persist_webhook(parsed.messages, parsed.statuses, parsed.rejected, forward_statuses=True)
    forwarder = StatusForwarder(store, inbox.url, "token")
    forwarder.start()
    try:
        await settled(store)
        assert sorted(inbox.accepted) == sorted(i for i in ids if i != BAD)
        # Halved down to the one status: 8 -> 4 -> 2 -> 1.
        assert inbox.refused_batches == 4
        with store.engine.connect() as connection:
            rows = dict(connection.exec_driver_sql("SELECT message_id, forward_state FROM wa_statuses").all())
            letters = connection.exec_driver_sql("SELECT reason, body FROM wa_dead_letters").all()
        assert rows.pop(BAD) == "rejected" and set(rows.values()) == {"forwarded"}
        [(reason, body)] = letters
        assert "HTTP 422" in reason and "unknown message" in reason
        assert json.loads(bytes(body))["id"] == BAD
        # Later statuses are not held back either.
        later = parse_webhook(encode(webhook(change(statuses=[status("wamid.LATER")]))))
        store.persist_webhook(later.messages, later.statuses, later.rejected, forward_statuses=True)
        forwarder.wake()
        await settled(store)
        assert "wamid.LATER" in inbox.accepted
    finally:
        await forwarder.stop()
        inbox.server.shutdown()
        store.close()


async def test_a_status_stored_while_the_forwarder_is_looking_is_not_left_for_the_idle_check(store_url):
    """A wake() that lands while forward_due() is still reading the store used to be lost, so the
    status waited for the 30-second idle check (seen in CI on a loaded machine)."""
    store = WhatsAppStore(store_url)
    store.create_schema()
    inbox = PickyInbox()
    reading = threading.Event()
    release = threading.Event()
    original = store.next_forward_time

    def slow_next_forward_time():
        answer = original()  # nothing pending yet: the forwarder will choose the idle pause
        reading.set()
        release.wait(10)
        return answer

    store.next_forward_time = slow_next_forward_time  # type: ignore[method-assign]
    forwarder = StatusForwarder(store, inbox.url, "token")
    forwarder.start()
    try:
        while not reading.is_set():  # the forwarder found nothing and is about to pick its pause
            await asyncio.sleep(0.002)
        parsed = parse_webhook(encode(webhook(change(statuses=[status("wamid.WHILE")]))))
        store.persist_webhook(parsed.messages, parsed.statuses, parsed.rejected, forward_statuses=True)
        forwarder.wake()
        store.next_forward_time = original  # type: ignore[method-assign]
        release.set()
        await settled(store)
        assert inbox.accepted == ["wamid.WHILE"]
    finally:
        release.set()
        await forwarder.stop()
        inbox.server.shutdown()
        store.close()


async def test_statuses_arriving_together_reach_the_inbox_in_one_request_in_order(store_url):
    """A reply's sent/delivered/read (and other customers' statuses of the same moment) are gathered after the
    first one wakes the forwarder: one request to the inbox instead of one each."""
    store = WhatsAppStore(store_url)
    store.create_schema()
    inbox = PickyInbox()
    gathering, gathered = asyncio.Event(), asyncio.Event()

    async def gather(seconds: float) -> None:
        gathering.set()
        await gathered.wait()

    looked = threading.Event()
    original = store.next_forward_time

    def next_forward_time():
        looked.set()
        return original()

    store.next_forward_time = next_forward_time  # type: ignore[method-assign]
    forwarder = StatusForwarder(store, inbox.url, "token", sleep=gather)
    forwarder.start()
    ids = [f"wamid.TOGETHER{i}" for i in range(3)]
    try:
        while not looked.is_set():  # its first look found nothing: from now on a wake() starts a gathering
            await asyncio.sleep(0.002)
        for index, message_id in enumerate(ids):
            parsed = parse_webhook(encode(webhook(change(statuses=[status(message_id)]))))
            store.persist_webhook(parsed.messages, parsed.statuses, parsed.rejected, forward_statuses=True)
            forwarder.wake()
            if index == 0:
                await gathering.wait()  # the first status woke the forwarder; the others arrive while it gathers
        gathered.set()
        await settled(store)
        assert inbox.accepted_batches == [ids]
    finally:
        gathered.set()
        await forwarder.stop()
        inbox.server.shutdown()
        store.close()
