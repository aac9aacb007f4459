"""Free TCP ports for test servers, chosen below the kernel's ephemeral range.

Asking the kernel for port 0 hands out a port from the ephemeral range, the same range every outgoing
connection takes its local port from. A test that picks a port and starts its server seconds later (Rasa
loads a model first) can find it taken by a connection to PostgreSQL, Redis or RabbitMQ made in between:
CI failed once that way ("address already in use" for the inbox in the cluster suite). Ports below the
range are never used for outgoing connections, so a port that was free when picked stays free.

Standard library only: the Rasa environment and the inbox's environment both import it.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOWEST_PORT = 10000
# Rasa, the action server, the inbox and the sandbox on their defaults: a developer may be running them.
DEFAULT_PORTS = frozenset({5005, 5055, 8080, 8090})
# RabbitMQ's Erlang distribution ports sit at AMQP port + 20000 and + 20001 (deploy/cluster/rabbitmq.sh).
ERLANG_OFFSET = 20000

_handed_out: set[int] = set()
_lock = threading.Lock()


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
    """A port nobody listens on, never handed out before in this process.

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
            if all(_bindable(p) for p in wanted):
                _handed_out.update(wanted)
                return port
    raise RuntimeError(f"no free test port between {first} and {last}")
