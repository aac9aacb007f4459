"""In-memory conversation log of the sandbox, with long-polling, and simulated failures."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Deque, Dict, List, Optional, Set

CUSTOMER = "customer"  # written by the customer (sent to the connector as a webhook)
BUSINESS = "business"  # sent by the business (bot or agent) through the Graph API

FAILURE_MODES = ("http_429", "http_500", "meta_error", "failed_status")


@dataclass
class LoggedMessage:
    seq: int
    wa_id: str
    direction: str
    id: str
    type: str
    content: Dict[str, Any]  # business: the Graph API request body; customer: the message object
    at: float  # wall-clock time the sandbox received (business) or sent (customer) it
    status: Optional[str] = None  # business: sent / delivered / read / failed
    webhook_status: Optional[int] = None  # customer: what the connector answered

    def as_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class Failure:
    mode: str
    code: Optional[int] = None


def _matches(message: LoggedMessage, wa_id: Optional[str], direction: Optional[str]) -> bool:
    return (wa_id is None or message.wa_id == wa_id) and (direction is None or message.direction == direction)


@dataclass(eq=False)
class _Waiter:
    """A long poll waiting for a message that matches its filter."""

    wa_id: Optional[str]
    direction: Optional[str]
    arrived: asyncio.Future

    def wants(self, message: LoggedMessage) -> bool:
        return _matches(message, self.wa_id, self.direction)

    def wake(self) -> None:
        if not self.arrived.done():
            self.arrived.set_result(None)


@dataclass
class SandboxState:
    messages: List[LoggedMessage] = field(default_factory=list)
    failures: Deque[Failure] = field(default_factory=deque)
    send_attempts: int = 0  # every call of the send endpoint, failed or not
    _waiters: Set[_Waiter] = field(default_factory=set)
    _by_id: Dict[str, LoggedMessage] = field(default_factory=dict)

    async def add(self, wa_id: str, direction: str, message_id: str, message_type: str, content: Dict[str, Any]) -> LoggedMessage:
        logged = LoggedMessage(
            seq=len(self.messages) + 1,
            wa_id=wa_id,
            direction=direction,
            id=message_id,
            type=message_type,
            content=content,
            at=time.time(),
        )
        self.messages.append(logged)
        self._by_id[message_id] = logged
        # Wake only the long polls this message is for: with many customers waiting at once (the
        # benchmarks), waking every poll on every message cost the sandbox more CPU than the rest.
        for waiter in self._waiters:
            if waiter.wants(logged):
                waiter.wake()
        return logged

    async def update(self, message_id: str, **changes: Any) -> None:
        # A status change adds no message, so no long poll (they ask for messages after a seq) is woken.
        logged = self._by_id.get(message_id)
        if logged is None:
            return
        for name, value in changes.items():
            setattr(logged, name, value)

    def select(self, after: int, wa_id: Optional[str], direction: Optional[str]) -> List[LoggedMessage]:
        return [message for message in self.messages[after:] if _matches(message, wa_id, direction)]

    async def wait_for(self, after: int, wa_id: Optional[str], direction: Optional[str], timeout: float) -> List[LoggedMessage]:
        """Messages after `after` (a seq), waiting up to `timeout` seconds for the first one."""
        found = self.select(after, wa_id, direction)
        if found or timeout <= 0:
            return found
        waiter = _Waiter(wa_id, direction, asyncio.get_running_loop().create_future())
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.arrived, timeout=timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
        return self.select(after, wa_id, direction)

    def take_failure(self) -> Optional[Failure]:
        return self.failures.popleft() if self.failures else None

    async def reset(self) -> None:
        self.messages.clear()
        self._by_id.clear()
        self.failures.clear()
        self.send_attempts = 0
        for waiter in self._waiters:  # let every long poll answer (now with nothing)
            waiter.wake()
