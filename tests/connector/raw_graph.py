"""A stand-in for the Graph API on a raw TCP socket, for tests/connector/test_graph_api_transport.py: it
counts the connections it accepted and the requests it read completely, and each request's fate is
scripted: an answer (kept alive), or one of the ways a server can fail after the request arrived.

It runs in threads, so a test can block its own event loop while the server acts (a connection closed
while the client's loop is not looking)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from typing import Any, List, Optional, Set

HOLD = "hold"  # read the request, never answer (until the test ends)
CLOSE = "close"  # read the request, close the connection without a byte of answer
RESET = "reset"  # read the request, reset the connection (RST) without a byte of answer
PARTIAL = "partial"  # read the request, send the status line, headers and half the body, then close


class RawGraph:
    def __init__(self, *, listening: bool = True) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))  # bound but not listening: a connection is refused
        self.port = self.listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v21.0"
        self.script: List[Any] = []  # per request: (status, body), HOLD, CLOSE, RESET or PARTIAL; then a wamid
        self.requests: List[Any] = []  # bodies of the requests read completely, in order
        self.connections = 0
        self.released = threading.Event()
        self.changed = threading.Condition()
        self._idle: Set[socket.socket] = set()  # connections waiting for their next request
        self._open: Set[socket.socket] = set()
        self._client_gone = threading.Event()
        self._closed_idle = threading.Event()
        self._stopping = False
        if listening:
            self.listen()

    def listen(self) -> None:
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def bodies(self) -> List[Any]:
        with self.changed:
            return list(self.requests)

    # --- what a test does to the kept-alive connections ---------------------------------------------

    def close_idle_connections(self) -> None:
        """Closes every idle kept-alive connection at once and returns when they are closed (blocking: a
        test calling it from its event loop keeps the client from seeing the close before its next send)."""
        with self.changed:
            idle = list(self._idle)
            self._idle.clear()
        assert idle, "no idle connection to close"
        for connection in idle:
            self._closed_idle.clear()
            connection.shutdown(socket.SHUT_RDWR)
            if not self._closed_idle.wait(10):
                raise AssertionError("the server did not close its idle connection")

    def half_close_idle_connection(self) -> None:
        """Sends FIN on the idle connection and keeps reading it: `client_closed` tells when the client saw it."""
        with self.changed:
            [connection] = list(self._idle)
            self._idle.discard(connection)
            self._client_gone.clear()
        connection.shutdown(socket.SHUT_WR)

    def wait_until_client_closed(self, timeout: float = 10.0) -> None:
        if not self._client_gone.wait(timeout):
            raise AssertionError("the client did not close the connection the server had closed")

    def close(self) -> None:
        self._stopping = True
        self.released.set()
        with self.changed:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.listener.close()

    # --- the server -------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with self.changed:
                self.connections += 1
                self._open.add(connection)
                self.changed.notify_all()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        ended = False  # by an end of stream, rather than by the script
        try:
            while True:
                request, buffer = _read_request(connection, buffer)
                if request is None:  # the peer closed (or we shut the connection down)
                    ended = True
                    return
                with self.changed:
                    self.requests.append(request)
                    answer = self.script.pop(0) if self.script else None
                    self.changed.notify_all()
                if answer == HOLD:
                    self.released.wait()
                    return
                if answer == CLOSE:
                    return
                if answer == RESET:
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if answer is None:
                    answer = (200, {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.{len(self.requests)}"}]})
                if answer == PARTIAL:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"mess")
                    return
                status, body = answer
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                with self.changed:
                    self._idle.add(connection)  # before the answer leaves: the client may reuse it at once
                connection.sendall(head.encode() + data)
        except OSError:
            return
        finally:
            with self.changed:
                self._idle.discard(connection)
                self._open.discard(connection)
            connection.close()
            if ended:  # only now: whatever the client sends from here on is refused, never read
                self._client_gone.set()
                self._closed_idle.set()


def _read_request(connection: socket.socket, buffer: bytes) -> tuple[Optional[Any], bytes]:
    """One whole request (headers and Content-Length body): its JSON body, or None when the peer closed."""
    while b"\r\n\r\n" not in buffer:
        chunk = connection.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return json.loads(rest[:length] or b"null"), rest[length:]


def full_backlog() -> tuple[socket.socket, socket.socket]:
    """A listening socket whose accept queue is full (backlog 0 and one connection nobody accepts): Linux
    drops the next SYN, so a connection to it is neither made nor refused, and the connect times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=5)
    return listener, filler


def queued_requests(listener: socket.socket) -> List[bytes]:
    """What the connections waiting in `listener`'s accept queue sent (accepting them now)."""
    listener.setblocking(False)
    received = []
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return received
        connection.setblocking(False)
        try:
            received.append(connection.recv(65536))
        except BlockingIOError:
            received.append(b"")
        except OSError as error:  # e.g. reset by the client
            received.append(repr(error).encode())
        connection.close()
