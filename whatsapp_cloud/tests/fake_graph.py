"""A local stand-in for the Graph API on a free port: answers each POST from a script, records what
it received, and can hold a request without answering (Meta took it, the answer never comes)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD = "hold"  # scripted answer: keep the request open until the test releases it


class FakeGraph:
    def __init__(self) -> None:
        self.script: list[Any] = []  # (status, body) or HOLD; when empty: a sent message
        self.requests: list[tuple[str, Any]] = []
        self.released = threading.Event()
        self._received = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    body: Any = json.loads(raw)
                else:
                    body = raw
                with fake._received:
                    fake.requests.append((self.path, body))
                    answer = fake.script.pop(0) if fake.script else None
                    fake._received.notify_all()
                if answer == HOLD:
                    fake.released.wait()
                    return
                if answer is None:
                    answer = (
                        200,
                        {"messages": [{"id": f"wamid.{len(fake.requests)}"}]}
                        if self.path.endswith("/messages")
                        else {"id": f"media.{len(fake.requests)}"},
                    )
                status, payload = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v21.0"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if path.endswith("/messages")]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        with self._received:
            if not self._received.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} request(s), got {len(self.requests)}")

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def meta_error(code: int, message: str = "x", status: int = 400, details: str | None = None) -> tuple[int, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["error_data"] = {"details": details}
    return status, {"error": error}
