"""In-memory conversation log of the sandbox, with long-polling, and simulated failures."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Deque, Dict, List, Optional, Set

CUSTOMER = "customer"  # written by the customer (sent to the connector as a webhook)
BUSINESS = "business"  # sent by the business (bot or agent) through the Graph API

FAILURE_MODES = ("http_429", "http_500", "meta_error", "failed_status")

# Meta's formats: BSUID = two-letter country code, a dot, up to 128 letters and digits (parent BSUIDs
# have `ENT.` after the country); usernames are letters, digits, periods and underscores.
BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
USERNAME = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9._]{3,35}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")


def new_user_id(country: str) -> str:
    return f"{country}.{10**19 + secrets.randbelow(9 * 10**19)}"


def user_id_for_phone(phone: str) -> str:
    """The same BSUID for a phone number on every run (the country taken from the number)."""
    import phonenumbers  # pinned for connectors/privacy.py

    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse("+" + phone, None)) or "ZZ"
    except phonenumbers.NumberParseException:
        country = "ZZ"
    digest = int(hashlib.sha256(phone.encode("ascii")).hexdigest(), 16)
    return f"{country}.{10**19 + digest % (9 * 10**19)}"


@dataclass
class SandboxCustomer:
    """A WhatsApp user. `user_id` is their business-scoped user id (BSUID); `phone` is None for a
    customer created with a username only. `share_phone` False: a customer with a username whose
    phone Meta leaves out of webhooks although the sandbox knows it."""

    user_id: str
    phone: Optional[str]
    username: Optional[str] = None
    profile_name: str = "Sandbox Customer"
    share_phone: bool = True

    @property
    def chat_id(self) -> str:
        """How the sandbox's log and page name this customer's chat: the phone, else the BSUID."""
        return self.phone or self.user_id

    @property
    def shared_phone(self) -> Optional[str]:
        return self.phone if self.share_phone else None

    def as_json(self) -> Dict[str, Any]:
        return {**asdict(self), "wa_id": self.shared_phone, "chat_id": self.chat_id}


@dataclass
class LoggedMessage:
    seq: int
    wa_id: str  # the customer's chat id: their phone, or their BSUID when they have none
    direction: str
    id: str
    type: str
    content: Dict[str, Any]  # business: the Graph API request body; customer: the message object
    at: float  # wall-clock time the sandbox received (business) or sent (customer) it
    status: Optional[str] = None  # business: sent / delivered / read / failed
    webhook_status: Optional[int] = None  # customer: what the connector answered
    user_id: Optional[str] = None  # the customer's BSUID
    text: Optional[str] = None  # business: what the phone shows of a template (its approved body, filled)
    # customer: every read receipt call of the business naming this message, in order:
    # {"typing": bool, "after_seq": the log's last seq when the call came (later messages were sent after it)}
    business_reads: List[Dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class Failure:
    mode: str
    code: Optional[int] = None


def _matches(message: LoggedMessage, wa_id: Optional[str], direction: Optional[str]) -> bool:
    """`wa_id` filters by the customer's phone or BSUID, either names their chat."""
    return (wa_id is None or wa_id in (message.wa_id, message.user_id)) and (
        direction is None or message.direction == direction
    )


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
    _read_waiters: Dict[str, Set[asyncio.Future]] = field(default_factory=dict)  # customer message id -> polls
    _by_id: Dict[str, LoggedMessage] = field(default_factory=dict)
    # Customers by BSUID, and the BSUIDs of phone numbers. Kept by `reset` (like phones in a drawer).
    customers: Dict[str, SandboxCustomer] = field(default_factory=dict)
    _user_id_of_phone: Dict[str, str] = field(default_factory=dict)

    def add_customer(self, customer: SandboxCustomer) -> SandboxCustomer:
        self.customers[customer.user_id] = customer
        if customer.phone:
            self._user_id_of_phone[customer.phone] = customer.user_id
        return customer

    def customer_with_phone(self, phone: str) -> Optional[SandboxCustomer]:
        user_id = self._user_id_of_phone.get(phone)
        return self.customers.get(user_id) if user_id else None

    async def add(
        self, customer: SandboxCustomer, direction: str, message_id: str, message_type: str, content: Dict[str, Any]
    ) -> LoggedMessage:
        logged = LoggedMessage(
            seq=len(self.messages) + 1,
            wa_id=customer.chat_id,
            direction=direction,
            id=message_id,
            type=message_type,
            content=content,
            at=time.time(),
            user_id=customer.user_id,
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

    def find(self, message_id: str) -> Optional[LoggedMessage]:
        return self._by_id.get(message_id)

    def business_read(self, message: LoggedMessage, typing: bool) -> None:
        """The business marked this customer message read (a call naming it); wakes who waits for that."""
        message.business_reads.append({"typing": typing, "after_seq": len(self.messages)})
        for arrived in self._read_waiters.pop(message.id, ()):
            if not arrived.done():
                arrived.set_result(None)

    async def wait_read(self, message: LoggedMessage, timeout: float) -> None:
        """Returns once the business has marked `message` read by a call naming it, or after `timeout` s."""
        if message.business_reads or timeout <= 0:
            return
        arrived = asyncio.get_running_loop().create_future()
        self._read_waiters.setdefault(message.id, set()).add(arrived)
        try:
            await asyncio.wait_for(arrived, timeout=timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiting = self._read_waiters.get(message.id)
            if waiting is not None:
                waiting.discard(arrived)
                if not waiting:
                    del self._read_waiters[message.id]

    def take_failure(self) -> Optional[Failure]:
        return self.failures.popleft() if self.failures else None

    async def reset(self) -> None:
        self.messages.clear()
        self._by_id.clear()
        self.failures.clear()
        self.send_attempts = 0
        self.end_polls()

    def end_polls(self) -> None:
        """Let every long poll answer now (with what there is, after a reset nothing)."""
        for waiter in self._waiters:
            waiter.wake()
        for waiting in list(self._read_waiters.values()):
            for arrived in waiting:
                if not arrived.done():
                    arrived.set_result(None)
