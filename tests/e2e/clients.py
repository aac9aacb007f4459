"""What the tests talk to: the customer's phone (sandbox JSON API), an inbox agent (session cookie + CSRF,
like the browser's forms), the inbox's database (read-only, to find what the agent would see), the
connector's store (read-only, to know when the bot's turn is over), Slack."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import httpx

from connectors.store_schema import PENDING, PROCESSING
from tests import sqlite_readonly


class Customer:
    """One WhatsApp customer in the sandbox. `turn_finished(message_id)` says whether the connector has
    finished its turn for a customer message (ConnectorStore below, or tests/production's PostgreSQL one);
    `say` needs it, `send`, `replies` and `silence` do not."""

    def __init__(self, sandbox_url: str, wa_id: str, name: str = "Priya Sharma",
                 turn_finished: Callable[[str], bool] | None = None):
        self.http = httpx.Client(base_url=sandbox_url, timeout=70)
        self.wa_id = wa_id
        self.name = name
        self.turn_finished = turn_finished
        self.seen = 0  # seq of the last business message already returned

    @classmethod
    def without_phone(cls, sandbox_url: str, username: str, name: str = "Meera Kapoor",
                      turn_finished: Callable[[str], bool] | None = None) -> "Customer":
        """A WhatsApp user with a username and no phone number: the sandbox gives them a business-scoped
        user id (BSUID), which then names their chat (`wa_id` here) in the sandbox and the inbox."""
        response = httpx.post(f"{sandbox_url}/sandbox/api/customers",
                              json={"username": username, "profile_name": name}, timeout=10)
        response.raise_for_status()
        customer = cls(sandbox_url, response.json()["user_id"], name, turn_finished)
        customer.username = username
        return customer

    def send(self, text: str, message_id: str | None = None) -> dict:
        body = {"text": text, "profile_name": self.name}
        if message_id:
            body["message_id"] = message_id
        response = self.http.post(f"/sandbox/api/customers/{self.wa_id}/messages", json=body)
        response.raise_for_status()
        return response.json()

    def business_messages(self, after: int = 0, wait: float = 0) -> list[dict]:
        response = self.http.get("/sandbox/api/messages", params={
            "wa_id": self.wa_id, "direction": "business", "after": after, "wait": wait})
        response.raise_for_status()
        return response.json()["messages"]

    @staticmethod
    def text_of(message: dict) -> str:
        content = message.get("content") or {}
        if content.get("type") == "text":
            return content["text"]["body"]
        if content.get("type") == "interactive":
            return content["interactive"]["body"]["text"]
        return json.dumps(content)

    def replies(self, count: int = 1, timeout: float = 60, settle: float = 0.0) -> list[str]:
        """The next `count` (at least) texts the customer receives; then waits `settle` s for any more."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            new = self.business_messages(self.seen, wait=min(20, max(1, deadline - time.monotonic())))
            got += new
            if new:
                self.seen = new[-1]["seq"]
        if settle:
            time.sleep(settle)
            more = self.business_messages(self.seen)
            got += more
            if more:
                self.seen = more[-1]["seq"]
        assert len(got) >= count, f"{self.wa_id} got {len(got)} of {count} expected replies: {got}"
        return [self.text_of(m) for m in got]

    def say(self, text: str, timeout: float = 60, settle: float = 1.5) -> list[str]:
        """Send `text` and return every reply of the bot's turn for it (at least one).

        Waits on a condition, not a margin: the end of the turn (`_turn_end`), which only the connector's
        store shows (`turn_finished`). `settle` is used only when the turn has not ended by `timeout`: then,
        as before, the first reply and `settle` s more (and a failure if none came)."""
        assert self.turn_finished is not None, (
            "say() waits for the connector's store to finish the turn: give the Customer turn_finished "
            "(or use send() and replies(count))")
        message_id = self.send(text)["message_id"]
        deadline = time.monotonic() + timeout
        end = self._turn_end(message_id, deadline)
        if end is None:
            return self.replies(1, timeout=max(1.0, deadline - time.monotonic()), settle=settle)
        got = [message for message in self.business_messages(self.seen) if message["seq"] <= end]
        if got:
            self.seen = got[-1]["seq"]
        assert got, f"{self.wa_id}: the bot's turn for {text!r} ended without a reply"
        return [self.text_of(m) for m in got]

    def _turn_end(self, message_id: str, deadline: float) -> int | None:
        """A seq of the sandbox's log by which every reply of the bot's turn for `message_id` had arrived.

        Once the connector's store marks the message finished (`turn_finished`: SQLite in the end-to-end
        suite, PostgreSQL in tests/production), the sandbox's last seq. The dispatcher marks it finished
        only after the turn (connectors/processing.py), and the turn awaited each of its sends, which the
        sandbox logs before answering: no reply of the turn can still be on its way. This holds for every
        turn kind: quick, slow, handed off, retried after a failure.
        The sandbox's record of the connector's reads cannot replace the store: a turn slower than
        WHATSAPP_TYPING_AFTER_SECONDS (1 s) before its first reply is marked read early, with "typing…",
        and never again, so no read marks its end; nor does a read bound a turn that failed after a send
        and was run again. It only wakes the poll early.
        None at the deadline: say() then waits as before, and fails if no reply came."""
        while True:
            remaining = deadline - time.monotonic()
            # The read serves only to wake up: long-polled briefly between looks at the store.
            receipt = self._read_receipt(message_id, max(0.0, min(remaining, 0.2)))
            reads = receipt["message"]["business_reads"]
            if self.turn_finished(message_id):
                return self._read_receipt(message_id, 0)["last_seq"]  # asked after the finish: all replies are in
            if remaining <= 0:
                return None
            if reads:  # a read (the turn's own, or "typing…") answers the poll at once: pause between looks
                time.sleep(0.05)

    def _read_receipt(self, message_id: str, wait: float) -> dict:
        response = self.http.get("/sandbox/api/read_receipt", params={"message_id": message_id, "wait": wait})
        response.raise_for_status()
        return response.json()

    def silence(self, seconds: float) -> list[str]:
        """Whatever arrives within `seconds` (expected: nothing).

        A wait, not a condition, on purpose: it claims that nothing at all reaches the customer (the bot's
        turn, a later retry or hand-off of it, the inbox), and a message that should never come has no end
        to wait on. The connector's finish (see `_turn_end`) would cover only the bot's own turn: weaker.
        No read marks these turns either: the connector marks only turns it answered."""
        time.sleep(seconds)
        new = self.business_messages(self.seen)
        if new:
            self.seen = new[-1]["seq"]
        return [self.text_of(m) for m in new]


class ConnectorStore:
    """Read-only view of the connector's SQLite store (connectors/store_schema.py); tests/production's
    PostgresConnectorStore runs the same queries on PostgreSQL."""

    def __init__(self, path: Path):
        self.path = path

    def query(self, sql: str, *args) -> list:
        return sqlite_readonly.query(self.path, sql, *args)

    def turn_finished(self, message_id: str) -> bool:
        """Whether the connector is done with a customer message: its dispatcher marks it finished only
        after the turn (connectors/processing.py), when every send of the turn has been answered."""
        rows = self.query("select state from wa_inbound_messages where message_id = ?", message_id)
        return bool(rows) and rows[0]["state"] not in (PENDING, PROCESSING)


class InboxDB:
    """Read-only view of the inbox's SQLite database."""

    def __init__(self, path: Path):
        self.path = path

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        return sqlite_readonly.query(self.path, sql, *args)

    def conversation(self, wa_id: str):
        rows = self.query("select * from conversations where sender_id = ?", wa_id)
        return rows[0] if rows else None

    def wait_conversation(self, wa_id: str, status: str = "open", timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.conversation(wa_id)
            if row is not None and row["status"] == status:
                return row
            time.sleep(0.3)
        raise AssertionError(f"no {status} conversation for {wa_id} in the inbox after {timeout}s: "
                             f"{dict(self.conversation(wa_id) or {})}")

    def messages(self, conversation_id: int) -> list[tuple[str, str]]:
        rows = self.query("select role, text from messages where conversation_id = ? order by created_at, id",
                          conversation_id)
        return [(row["role"], row["text"]) for row in rows]

    def tags(self, conversation_id: int) -> set[str]:
        return {row["tag"] for row in self.query(
            "select tag from conversation_tags where conversation_id = ?", conversation_id)}

    def handoffs(self, conversation_id: int) -> list[sqlite3.Row]:
        return self.query("select * from handoffs where conversation_id = ? order by id", conversation_id)

    def wait_message(self, conversation_id: int, role: str, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (role, text) in self.messages(conversation_id):
                return
            time.sleep(0.3)
        raise AssertionError(f"{role} message {text!r} not in the inbox: {self.messages(conversation_id)}")


class Agent:
    """An agent signed in to the inbox, posting the same forms as the browser (session cookie + CSRF)."""

    def __init__(self, inbox_url: str, login: str, password: str, http: httpx.Client | None = None):
        # `http`: a client of the caller's (tests/production passes one that trusts its proxy's certificate).
        self.http = http or httpx.Client(base_url=inbox_url, timeout=30)
        self.http.get("/login").raise_for_status()  # sets the csrftoken cookie
        response = self._post("/login", {"login": login, "password": password})
        assert response.status_code in (302, 303), f"login failed: {response.status_code} {response.text[:300]}"

    def _post(self, path: str, data: dict):
        return self.http.post(path, data={**data, "csrftoken": self.http.cookies.get("csrftoken") or ""})

    def page(self, conversation_id: int) -> str:
        response = self.http.get(f"/conversations/{conversation_id}")
        response.raise_for_status()
        return response.text

    def reply(self, conversation_id: int, text: str) -> None:
        response = self._post(f"/conversations/{conversation_id}/reply", {"text": text})
        assert response.status_code in (200, 302, 303), response.text[:500]
        assert "Not delivered" not in self.http.get(f"/conversations/{conversation_id}").text

    def resolve(self, conversation_id: int) -> None:
        response = self._post(f"/conversations/{conversation_id}/resolve", {})
        assert response.status_code in (200, 302, 303), response.text[:500]


class SlackReceiver:
    """A local HTTP server that records every JSON body posted to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    received.append(json.loads(body))
                except ValueError:
                    received.append({"raw": body.decode(errors="replace")})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, needle: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in list(self.received):
                if needle in json.dumps(body):
                    return body
            time.sleep(0.3)
        raise AssertionError(f"no Slack message mentioning {needle!r}: {self.received}")

    def close(self):
        self.server.shutdown()
