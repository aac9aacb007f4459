"""Helpers of the WhatsApp connector tests: Meta-shaped payloads, processes, HTTP clients."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import requests

from tests import sqlite_readonly
from tests.free_ports import free_port  # noqa: F401  (re-exported to the suites)

ROOT = Path(__file__).resolve().parents[2]
HOST_APP = Path(__file__).with_name("host_app.py")

SECRETS = {
    "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
    "WHATSAPP_APP_SECRET": "test-app-secret",
    "WHATSAPP_ACCESS_TOKEN": "test-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
}
APP_SECRET = SECRETS["WHATSAPP_APP_SECRET"]
PHONE_NUMBER_ID = SECRETS["WHATSAPP_PHONE_NUMBER_ID"]
INBOX_BOT_TOKEN = "test-inbox-bot-token"

_numbers = count(1)


def new_wa_id() -> str:
    """A customer number no other test uses."""
    return f"9198{os.getpid() % 10000:04d}{next(_numbers):05d}"


_message_ids = count(1)


def new_message_id() -> str:
    return f"wamid.TEST{os.getpid()}x{next(_message_ids)}x{time.time_ns()}"




def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- Meta-shaped payloads ---------------------------------------------------------------


def text_message(wa_id: str, body: str, message_id: Optional[str] = None) -> Dict[str, Any]:
    return {"from": wa_id, "id": message_id or new_message_id(), "timestamp": str(int(time.time())),
            "type": "text", "text": {"body": body}}


def change(messages: Optional[List[dict]] = None, statuses: Optional[List[dict]] = None,
           names: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    value: Dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages is not None:
        senders = dict.fromkeys(message["from"] for message in messages if "from" in message)
        value["contacts"] = [
            {"profile": {"name": (names or {}).get(wa_id, "Priya Sharma")}, "wa_id": wa_id} for wa_id in senders
        ]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def webhook(*changes: Dict[str, Any], entries: Optional[List[List[dict]]] = None) -> Dict[str, Any]:
    entry_changes = entries if entries is not None else [list(changes)]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": chs} for chs in entry_changes],
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")


# --- processes --------------------------------------------------------------------------


class Process:
    def __init__(self, name: str, command: List[str], env: Dict[str, str], log_dir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.popen: Optional[subprocess.Popen] = None

    def start(self, ready_url: str, timeout: float = 60.0) -> "Process":
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.logs()[-3000:]}")
            try:
                if requests.get(ready_url, timeout=1).status_code < 500:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not come up within {timeout}s:\n{self.logs()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, like a crash or an OOM kill."""
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class SandboxClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.api = f"{base_url}/sandbox/api"

    def customer_says(self, wa_id: str, profile_name: str = "Priya Sharma", **body: Any) -> Dict[str, Any]:
        answer = requests.post(f"{self.api}/customers/{wa_id}/messages", json={"profile_name": profile_name, **body}, timeout=15)
        answer.raise_for_status()
        return answer.json()

    def messages(self, wa_id: Optional[str] = None, direction: Optional[str] = "business", after: int = 0, wait: float = 0) -> Dict[str, Any]:
        params: Dict[str, Any] = {"after": after, "wait": wait}
        if wa_id:
            params["wa_id"] = wa_id
        if direction:
            params["direction"] = direction
        answer = requests.get(f"{self.api}/messages", params=params, timeout=wait + 10)
        answer.raise_for_status()
        return answer.json()

    def business_messages(self, wa_id: str) -> List[Dict[str, Any]]:
        return self.messages(wa_id)["messages"]

    def wait_for_business(self, wa_id: str, at_least: int = 1, timeout: float = 15.0) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            # The messages and the sequence number come from one answer: a reply landing between two calls
            # would otherwise be counted in `last_seq` and the long poll would wait for a later one.
            answer = self.messages(wa_id)
            found = answer["messages"]
            remaining = deadline - time.monotonic()
            if len(found) >= at_least or remaining <= 0:
                return found
            self.messages(wa_id, after=answer["last_seq"], wait=min(remaining, 2.0))

    def fail_next(self, mode: str, count: int = 1, code: Optional[int] = None) -> None:
        requests.post(f"{self.api}/failures", json={"mode": mode, "count": count, "code": code}, timeout=5).raise_for_status()

    def clear_failures(self) -> None:
        requests.delete(f"{self.api}/failures", timeout=5).raise_for_status()

    def send_attempts(self) -> int:
        return requests.get(f"{self.api}/stats", timeout=5).json()["send_attempts"]


def texts(messages: List[Dict[str, Any]]) -> List[str]:
    return [m["content"]["text"]["body"] for m in messages if m["type"] == "text"]


class StoreReader:
    """Reads the connector's SQLite store the way an operator would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str, *params: Any) -> List[sqlite3.Row]:
        return sqlite_readonly.query(self.path, sql, *params)

    def inbound(self, message_id: str) -> Optional[sqlite3.Row]:
        rows = self.query("SELECT * FROM wa_inbound_messages WHERE message_id = ?", message_id)
        return rows[0] if rows else None

    def dead_letters(self) -> List[sqlite3.Row]:
        return self.query("SELECT * FROM wa_dead_letters ORDER BY id")

    def statuses(self, message_id: str) -> List[sqlite3.Row]:
        return self.query("SELECT * FROM wa_statuses WHERE message_id = ? ORDER BY id", message_id)

    def wait_for_state(self, message_id: str, state: str, timeout: float = 15.0) -> sqlite3.Row:
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = self.inbound(message_id)
            if row is not None and row["state"] == state:
                return row
            time.sleep(0.05)
        raise AssertionError(f"{message_id} never reached {state!r}; last row: {dict(row) if row else None}")


class Host:
    """The connector under test, reachable over HTTP."""

    def __init__(self, process: Process, port: int, store_path: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.webhook_url = f"{self.url}/webhooks/whatsapp/webhook"
        self.store = StoreReader(store_path)

    def post(self, payload: Any = None, *, body: Optional[bytes] = None, signature: Optional[str] = "auto",
             headers: Optional[Dict[str, str]] = None) -> requests.Response:
        raw = body if body is not None else encode(payload)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if signature == "auto":
            all_headers["X-Hub-Signature-256"] = sign(raw)
        elif signature is not None:
            all_headers["X-Hub-Signature-256"] = signature
        return requests.post(self.webhook_url, data=raw, headers=all_headers, timeout=15)

    def journal(self, wa_id: str) -> List[Dict[str, Any]]:
        return requests.get(f"{self.url}/test/journal/{wa_id}", timeout=5).json()

    def pause(self, wa_id: str) -> None:
        requests.post(f"{self.url}/test/pause/{wa_id}", timeout=5).raise_for_status()


# --- the recording inbox ------------------------------------------------------------------


class RecordingInbox:
    """Stands in for the inbox's status endpoint (inbox/API.md section 2)."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        # message id -> how many more requests carrying its status get a 503. Per status, not per request:
        # a request of an earlier test's statuses, still being forwarded, must not use up the failures.
        self.fail_statuses: Dict[str, int] = {}
        self.hold: Optional[threading.Event] = None  # when set: every request waits until the event is set
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                hold = inbox.hold
                if hold is not None:
                    hold.wait(60)
                payload = json.loads(body)
                ids = {status.get("id") for status in payload.get("statuses", [])}
                with inbox._lock:
                    failing = any(inbox.fail_statuses.get(message_id, 0) > 0 for message_id in ids)
                    if failing:
                        for message_id in ids & set(inbox.fail_statuses):
                            inbox.fail_statuses[message_id] -= 1
                    inbox.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                           "json": payload, "answered": 503 if failing else 200})
                self.send_response(503 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"accepted": 0}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def statuses_for(self, message_id: str) -> List[Dict[str, Any]]:
        with self._lock:
            return [
                {**status, "_answered": request["answered"], "_authorization": request["authorization"], "_path": request["path"]}
                for request in self.requests
                for status in request["json"].get("statuses", [])
                if status.get("id") == message_id
            ]

    def close(self) -> None:
        self.server.shutdown()


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def python_env(**extra: str) -> Dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("WHATSAPP_", "INBOX_", "SANDBOX_"))}
    env.update(SECRETS)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_host(run_dir: Path, name: str, port: int, sandbox_url: str, store_path: Path,
               inbox_url: Optional[str] = None, **extra: str) -> Process:
    settings = {
        "WHATSAPP_API_BASE_URL": f"{sandbox_url}/v21.0",
        "WHATSAPP_STORE_URL": f"sqlite:///{store_path}",
        "WHATSAPP_SEND_ATTEMPTS": "4",
        "WHATSAPP_SEND_BACKOFF_SECONDS": "0.2",
        "WHATSAPP_CLAIM_TTL_SECONDS": "2",
        "WHATSAPP_SWEEP_INTERVAL_SECONDS": "0.5",
    }
    env = python_env(**{**settings, **extra})
    if inbox_url:
        env["INBOX_URL"] = inbox_url
        env["INBOX_BOT_TOKEN"] = INBOX_BOT_TOKEN
    return Process(name, [sys.executable, str(HOST_APP), str(port)], env, run_dir).start(
        f"http://127.0.0.1:{port}/webhooks/whatsapp/"
    )
