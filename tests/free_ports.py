"""Free TCP ports for test servers, chosen below the kernel's ephemeral range.

Asking the kernel for port 0 hands out a port from the ephemeral range, the same range every outgoing
connection takes its local port from. A test that picks a port and starts its server seconds later (Rasa
loads a model first) can find it taken by a connection to PostgreSQL, Redis or RabbitMQ made in between:
CI failed once that way ("address already in use" for the inbox in the cluster suite). Ports below the
range are never used for outgoing connections, so a port that was free when picked stays free.

The test command runs some suites side by side (scripts/test.sh), and each pytest process picks its own ports:
a port is therefore also claimed for the whole machine, with a file in CLAIMS_DIR made with O_EXCL that holds
the claiming process id. A claim whose process has ended is taken over, so nothing needs cleaning up.

Standard library only: the Rasa environment and the inbox's environment both import it.
"""

from __future__ import annotations

import os
import random
import socket
import tempfile
import threading
from pathlib import Path

LOWEST_PORT = 10000
# Rasa, the action server, the inbox and the sandbox on their defaults: a developer may be running them.
DEFAULT_PORTS = frozenset({5005, 5055, 8080, 8090})
# RabbitMQ's Erlang distribution ports sit at AMQP port + 20000 and + 20001 (deploy/cluster/rabbitmq.sh).
ERLANG_OFFSET = 20000

CLAIMS_DIR = Path(tempfile.gettempdir()) / "kesar-lane-test-ports"

_handed_out: set[int] = set()
_lock = threading.Lock()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _claim(port: int) -> bool:
    """Claims `port` for this process across the machine; False if a live process holds it."""
    CLAIMS_DIR.mkdir(parents=True, exist_ok=True)
    path = CLAIMS_DIR / str(port)
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text() or "0")
            except (OSError, ValueError):
                holder = 0
            if holder == os.getpid() or (holder and _process_alive(holder)):
                return False
            try:  # the claiming process has ended (or the file is half written: a race we lose at worst once)
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(descriptor, "w") as claim:
            claim.write(str(os.getpid()))
        return True
    return False


def _release(port: int) -> None:
    try:
        (CLAIMS_DIR / str(port)).unlink()
    except FileNotFoundError:
        pass


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, erlang_neighbours: bool = False) -> int:
    """A port nobody listens on, never handed out before in this process nor claimed by a live one.

    With `erlang_neighbours`, port + 20000 and + 20001 are free too (for a RabbitMQ node). Every port handed
    out, neighbours included, lies below the ephemeral range and is remembered, so a RabbitMQ node and the
    services around it never collide within one test run."""
    low, _ = ephemeral_range()
    first = LOWEST_PORT
    last = low - ERLANG_OFFSET - 2 if erlang_neighbours else low - 1
    if last <= first:
        raise RuntimeError(f"no room for test ports below the ephemeral range starting at {low} "
                           "(/proc/sys/net/ipv4/ip_local_port_range); raise its lower end")
    with _lock:
        for _ in range(2000):
            port = random.randint(first, last)
            wanted = [port, port + ERLANG_OFFSET, port + ERLANG_OFFSET + 1] if erlang_neighbours else [port]
            if any(p in _handed_out or p in DEFAULT_PORTS for p in wanted):
                continue
            if not all(_bindable(p) for p in wanted):
                continue
            claimed = []
            for candidate in wanted:
                if not _claim(candidate):
                    break
                claimed.append(candidate)
            if len(claimed) == len(wanted):
                _handed_out.update(wanted)
                return port
            for candidate in claimed:
                _release(candidate)
    raise RuntimeError(f"no free test port between {first} and {last}")
