"""Rasa's Redis lock store, where a turn that fails while Redis is away does not hold up the next one
(issue 16). Named in deploy/endpoints.production.yml and deploy/cluster/endpoints.cluster.yml.

Rasa's `RedisLockStore` serialises a conversation's turns with a ticket queue in one Redis key: a turn
takes the next ticket, waits until its ticket is first, runs, and removes its ticket. When Redis freezes
while a turn is under way, removing the ticket fails (a timeout after `socket_timeout`, 10 s), Rasa keeps
no record of it, and the customer's next turn - the connector retries right away - waits behind the
abandoned ticket until it expires: `TICKET_LOCK_LIFETIME` (60 s) after it was issued. In the production
suite's Redis freeze that was 40 s after the resume (connectors/README.md, "Outages measured").

Here a ticket whose removal failed is remembered by the process that issued it, and removed as soon as Redis
answers again: first thing in this process's next `lock()` call, and by a background task meanwhile (so a
turn another instance runs for that customer does not wait either). A ticket whose issuing failed is
remembered the same way: the command may still land once Redis resumes (a frozen Redis reads what was sent
to it when it wakes up, and runs it).

Why this is safe with several Rasa instances on one Redis:
- Each ticket carries a random `owner` token, and a ticket is only ever removed by that token, so cleaning
  up can never remove another turn's ticket (numbers are reused: they start from 0 again whenever the
  queue empties). Only the process that issued a ticket knows its token.
- A ticket is remembered only when no code runs under it any more: its `issue` failed (then `lock()`
  raises and the turn never starts) or its removal failed (after the turn). Removing it is what a
  successful removal would have done, so two turns of one customer still never run at once.
- Every change to a lock is one Lua script, so it applies whole, at whatever moment it reaches Redis. Rasa's
  own store reads, changes and writes the whole lock in separate commands, so a write that lands late (after
  a freeze) puts back a state from before it, dropping or restoring tickets.
- An `issue` that lands after its ticket was already cleaned up cannot bring it back: the cleanup leaves a
  marker (a key with the lock lifetime as its expiry) that the late issue finds, and then it adds nothing.

The stored lock keeps Rasa's format (`conversation_id`, `tickets` as JSON strings with `number` and
`expires`); the extra `owner` key is ignored by Rasa's own `TicketLock`. The lifetime stays Rasa's
(`TICKET_LOCK_LIFETIME`, 60 s): it now matters only when the issuing process dies mid-turn. Shortening it
would let a long turn (e.g. one that waits out a PostgreSQL stall) lose its ticket while it still runs, and
the customer's next turn run beside it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from connectors.privacy import mask_user_id

logger = logging.getLogger(__name__)

# Pauses of the background cleanup while Redis does not answer: doubling, at most this long.
CLEANUP_FIRST_PAUSE_SECONDS = 0.25
CLEANUP_MAX_PAUSE_SECONDS = 2.0

# Shared by the scripts: the lock's tickets as {raw = <Rasa's JSON string>, number, expires, owner}, and back.
_LUA_LOCK = """
local function load(raw)
  local tickets = {}
  if not raw then return tickets end
  for _, text in ipairs(cjson.decode(raw)["tickets"] or {}) do
    local t = cjson.decode(text)
    table.insert(tickets, {raw = text, number = t["number"], expires = t["expires"], owner = t["owner"]})
  end
  return tickets
end
local function dump(conversation_id, tickets)
  local parts = {}
  for _, t in ipairs(tickets) do table.insert(parts, cjson.encode(t.raw)) end
  return '{"conversation_id": ' .. cjson.encode(conversation_id) .. ', "tickets": [' ..
         table.concat(parts, ', ') .. ']}'
end
local function alive(tickets, now)
  local kept = {}
  for _, t in ipairs(tickets) do if t.expires >= now then table.insert(kept, t) end end
  return kept
end
"""

# KEYS: lock, marker. ARGV: conversation id, now, expires (as text), owner.
# Returns the ticket's number; -1 when the ticket was already cleaned up (a late arrival).
_ISSUE = _LUA_LOCK + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local tickets = load(redis.call('GET', KEYS[1]))
for _, t in ipairs(tickets) do if t.owner == ARGV[4] then return t.number end end
tickets = alive(tickets, tonumber(ARGV[2]))
local number = 0
if #tickets > 0 then number = tickets[#tickets].number + 1 end
table.insert(tickets, {raw = '{"number": ' .. number .. ', "expires": ' .. ARGV[3] .. ', "owner": "' ..
                            ARGV[4] .. '"}'})
redis.call('SET', KEYS[1], dump(ARGV[1], tickets))
return number
"""

# KEYS: lock, marker. ARGV: conversation id, now, owner, marker lifetime (ms).
# Removes the owner's ticket, and the lock when no live ticket is left (Rasa's cleanup). Returns 1 if the
# ticket was there; else 0, and the marker stops the ticket's issue from adding it if that lands later.
_RELEASE = _LUA_LOCK + """
local tickets = load(redis.call('GET', KEYS[1]))
local kept, found = {}, false
for _, t in ipairs(tickets) do
  if t.owner == ARGV[3] then found = true else table.insert(kept, t) end
end
if not found then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
  return 0
end
kept = alive(kept, tonumber(ARGV[2]))
if #kept == 0 then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], dump(ARGV[1], kept)) end
return 1
"""

# KEYS: lock. ARGV: conversation id, now. Rasa's update_lock: drops expired tickets (writes only if any).
_DROP_EXPIRED = _LUA_LOCK + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local tickets = load(raw)
local kept = alive(tickets, tonumber(ARGV[2]))
if #kept == #tickets then return 0 end
redis.call('SET', KEYS[1], dump(ARGV[1], kept))
return #tickets - #kept
"""


@dataclass
class OwnedTicket:
    conversation_id: str
    owner: str  # random, known only to the issuing process: the ticket's identity
    expires: float
    number: int = -1  # Rasa's queue position (reused once the queue empties)


class RecoveringRedisLockStore(RedisLockStore):
    """`RedisLockStore` whose tickets are issued and removed atomically, and removed again by the issuing
    process once Redis answers after a failure (see the module docstring)."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cleanup_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        if endpoint_config is not None:  # Rasa passes the endpoints' `lock_store` section (custom type)
            kwargs = {**endpoint_config.kwargs, **kwargs}
            kwargs.setdefault("host", endpoint_config.url or "localhost")
        super().__init__(**kwargs)
        # Tickets are compared with the wall clock, as Rasa's are: every instance must read the same time.
        self._clock = clock
        self._sleep = sleep  # between looks at the queue while waiting for the lock (Rasa: 1 s)
        self._cleanup_sleep = cleanup_sleep
        self._issue = self.red.register_script(_ISSUE)
        self._release = self.red.register_script(_RELEASE)
        self._drop_expired = self.red.register_script(_DROP_EXPIRED)
        # Tickets this process issued whose removal (or issue) failed: removed once Redis answers.
        self._left_behind: Dict[str, OwnedTicket] = {}  # owner -> ticket
        self._cleanup_task: Optional[asyncio.Task] = None

    # --- Rasa's interface ------------------------------------------------------------------------------

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        # This conversation's own leftovers first: otherwise the new ticket would queue behind them.
        self._release_left_behind(conversation_id)
        ticket = self._issue_ticket(conversation_id, lock_lifetime)
        try:
            yield await self._acquire(ticket, wait_time_in_seconds)
        finally:
            try:
                self._release_ticket(ticket)
            except Exception:
                self._leave_behind(ticket, "releasing")
                raise

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Rasa's signature, atomic (a caller of this has no owner token: it cannot release by it)."""
        return self._issue_ticket(conversation_id, lock_lifetime).number

    def update_lock(self, conversation_id: Text) -> None:
        """Drops expired tickets, atomically (Rasa's reads and writes back the whole lock)."""
        self._drop_expired(keys=[self._key(conversation_id)], args=[conversation_id, repr(self._clock())])

    # --- tickets -------------------------------------------------------------------------------------

    def _key(self, conversation_id: str) -> str:
        return self.key_prefix + conversation_id

    def _marker(self, owner: str) -> str:
        return self.key_prefix + "released-ticket:" + owner

    def _issue_ticket(self, conversation_id: str, lifetime: float) -> OwnedTicket:
        now = self._clock()
        ticket = OwnedTicket(conversation_id, uuid.uuid4().hex, now + lifetime)
        try:
            number = self._issue(
                keys=[self._key(conversation_id), self._marker(ticket.owner)],
                args=[conversation_id, repr(now), repr(ticket.expires), ticket.owner],
            )
        except Exception as error:
            # It may still land when Redis answers again: remembered, removed then.
            self._leave_behind(ticket, "issuing")
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        if int(number) < 0:
            raise LockError(f"Could not issue a ticket for conversation {mask_user_id(conversation_id)}.")
        ticket.number = int(number)
        return ticket

    async def _acquire(self, ticket: OwnedTicket, wait_time_in_seconds: float) -> TicketLock:
        """Waits until the ticket is first in the queue (as Rasa's `_acquire_lock`, compared by owner)."""
        conversation_id = ticket.conversation_id
        while True:
            raw = self.red.get(self._key(conversation_id))
            tickets = _alive_tickets(raw, self._clock())
            if not any(t.get("owner") == ticket.owner for t in tickets):
                # Expired while waiting, or the lock is gone: Rasa raises here too (when the lock is gone).
                # (The message reaches the connector's log: the number masked, unlike Rasa's.)
                raise LockError(f"Could not acquire lock for conversation {mask_user_id(conversation_id)}.")
            if tickets[0].get("owner") == ticket.owner:
                return TicketLock.from_dict(json.loads(raw))
            logger.debug("Waiting for the lock of conversation '%s': %d turn(s) before this one",
                         mask_user_id(conversation_id),
                         next(i for i, t in enumerate(tickets) if t.get("owner") == ticket.owner))
            await self._sleep(wait_time_in_seconds)
            self.update_lock(conversation_id)

    def _release_ticket(self, ticket: OwnedTicket) -> bool:
        """Removes the ticket by its owner token; returns whether it was still there."""
        lifetime_ms = max(1, math.ceil((ticket.expires - self._clock()) * 1000))
        return bool(self._release(
            keys=[self._key(ticket.conversation_id), self._marker(ticket.owner)],
            args=[ticket.conversation_id, repr(self._clock()), ticket.owner, lifetime_ms],
        ))

    # --- tickets left behind by a failure --------------------------------------------------------------

    def _leave_behind(self, ticket: OwnedTicket, doing: str) -> None:
        self._left_behind[ticket.owner] = ticket
        logger.warning("Redis lock store: %s a ticket of conversation %s failed; it is released once Redis "
                       "answers again", doing, mask_user_id(ticket.conversation_id))
        self._start_cleanup()

    def left_behind(self) -> List[OwnedTicket]:
        """The tickets still to be released (for tests and diagnostics)."""
        return list(self._left_behind.values())

    def _still_to_release(self, conversation_id: Optional[str] = None) -> List[OwnedTicket]:
        now = self._clock()
        for owner, ticket in list(self._left_behind.items()):
            if ticket.expires < now:  # expired: no turn waits for it any more, nor would a late issue
                del self._left_behind[owner]
        return [t for t in self._left_behind.values()
                if conversation_id is None or t.conversation_id == conversation_id]

    def _release_left_behind(self, conversation_id: Optional[str] = None) -> None:
        """Releases this process's leftovers (of one conversation, or all); raises while Redis is away."""
        for ticket in self._still_to_release(conversation_id):
            self._released(ticket, self._release_ticket(ticket))

    def _released(self, ticket: OwnedTicket, was_there: bool) -> None:
        if self._left_behind.pop(ticket.owner, None) is not None:
            logger.info("Redis lock store: released a ticket of conversation %s left behind by a failure (%s)",
                        mask_user_id(ticket.conversation_id),
                        "it was still queued" if was_there else "it was not queued")

    def _start_cleanup(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next lock() call releases it
        if self._cleanup_task is None or self._cleanup_task.done():
            self._cleanup_task = loop.create_task(self._cleanup_until_done(), name="redis-lock-cleanup")

    async def _cleanup_until_done(self) -> None:
        """Tries to release every leftover until none is left; the Redis calls run in a thread, so a
        frozen Redis does not hold up the event loop for `socket_timeout` on each try."""
        pause = CLEANUP_FIRST_PAUSE_SECONDS
        while self._still_to_release():
            for ticket in self._still_to_release():
                try:
                    was_there = await asyncio.to_thread(self._release_ticket, ticket)
                except Exception:
                    break  # Redis still away: pause, then try again
                self._released(ticket, was_there)
            else:
                continue
            await self._cleanup_sleep(pause)
            pause = min(CLEANUP_MAX_PAUSE_SECONDS, pause * 2)


def _alive_tickets(raw: Optional[bytes], now: float) -> List[Dict[str, Any]]:
    if not raw:
        return []
    tickets = [json.loads(text) for text in json.loads(raw).get("tickets", [])]
    return [t for t in tickets if t["expires"] >= now]
