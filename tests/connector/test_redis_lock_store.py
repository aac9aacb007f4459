"""connectors/redis_lock_store.py against a real redis-server frozen with SIGSTOP, as the production suite's
outage does (tests/production/test_outages.py): a ticket left behind by a turn that failed while Redis was
frozen is released as soon as Redis answers, so the customer's next turn does not wait for it to expire;
no other turn's ticket is ever touched, and two turns of one conversation never hold the lock at once.

No wall-clock margins: the tickets' clock is a fixed fake one (a ticket expires only when a test moves it),
a wait for the lock goes through an injected sleep that records it, and the only timeout is Redis's socket
timeout, which is how a client notices the freeze. Rasa's own `RedisLockStore` is run through the same steps
to show what it does (the ticket stays until it expires).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from typing import List

import pytest
import redis
import yaml
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from connectors.redis_lock_store import RecoveringRedisLockStore
from tests.free_ports import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FREEZE_TIMEOUT = 0.3  # the client's socket timeout: how long a call waits on a frozen Redis before failing
LIFETIME = 60.0  # Rasa's default; with the fake clock nothing expires unless a test says so


class RedisServer:
    def __init__(self, port: int, directory: str) -> None:
        self.port = port
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextlib.contextmanager
    def frozen(self):
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, db=1)  # the lock stores' default database

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(free_port(), str(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture
def conversation(request) -> str:
    return "c-" + request.node.name[:60]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Waits:
    """The injected sleep of a turn waiting for the lock: records each wait, then lets others run. A turn
    that must not wait at all fails at its first wait; any other gives up after a generous ceiling (a ticket
    nobody releases would otherwise keep it waiting for ever: the fake clock never expires it)."""

    def __init__(self, allowed: bool = True, ceiling: float = 30.0) -> None:
        self.count = 0
        self.allowed = allowed
        self.deadline = time.monotonic() + ceiling

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        assert self.allowed, "the turn waited for the lock: a ticket was left in the queue"
        assert time.monotonic() < self.deadline, "the turn is still waiting for the lock"
        await asyncio.sleep(0)


def recovering(server: RedisServer, clock: FakeClock, waits: Waits = None, **kwargs) -> RecoveringRedisLockStore:
    async def cleanup_pause(seconds: float) -> None:
        await asyncio.sleep(0)

    return RecoveringRedisLockStore(port=server.port, socket_timeout=FREEZE_TIMEOUT, clock=clock,
                                    sleep=waits or Waits(), cleanup_sleep=cleanup_pause, **kwargs)


async def settled(*stores: RecoveringRedisLockStore) -> None:
    """Lets each store's background cleanup finish (it ends when nothing is left to release)."""
    for store in stores:
        if store._cleanup_task is not None:
            await store._cleanup_task


async def wait_for(condition, what: str, ceiling: float = 30.0) -> None:
    deadline = time.monotonic() + ceiling
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def tickets(server: RedisServer, conversation: str) -> List[dict]:
    raw = server.client().get("lock:" + conversation)
    return [] if raw is None else [json.loads(t) for t in json.loads(raw)["tickets"]]


# ----- the issue: a failed release leaves a ticket that holds up the next turn -------------------------------


async def release_fails(store, server: RedisServer, conversation: str, how: str = "frozen") -> None:
    """A turn holds the lock and its release fails. "frozen": Redis freezes before the release, which times out
    (Redis still reads it, and runs it when it thaws); "lost": the connection is cut before the release reaches
    Redis, so it never arrives (Redis restarted behind a proxy, a reset connection)."""
    held = store.lock(conversation, lock_lifetime=LIFETIME)
    await held.__aenter__()
    if how == "frozen":
        with server.frozen():
            with pytest.raises(redis.exceptions.TimeoutError):
                await held.__aexit__(None, None, None)
        return
    real = store._release

    def cut(*args, **kwargs):
        store._release = real
        raise redis.exceptions.ConnectionError("Connection reset by peer")

    store._release = cut
    with pytest.raises(redis.exceptions.ConnectionError):
        await held.__aexit__(None, None, None)


async def warmed_up(store: RecoveringRedisLockStore) -> RecoveringRedisLockStore:
    """Redis knows the store's scripts, as after any turn (a script sent before it knows them is refused)."""
    async with store.lock("warm-up", lock_lifetime=LIFETIME):
        pass
    return store


async def test_rasas_own_store_keeps_a_ticket_whose_release_failed_until_it_expires(redis_server, conversation):
    store = RedisLockStore(port=redis_server.port, socket_timeout=FREEZE_TIMEOUT)
    await release_fails(store, redis_server, conversation)
    # The ticket stays queued: the next turn's ticket is number 1 and waits until ticket 0 expires (60 s).
    assert [t["number"] for t in tickets(redis_server, conversation)] == [0]
    assert store.issue_ticket(conversation, LIFETIME) == 1
    assert store.get_lock(conversation).is_locked(1)


async def test_the_next_turn_does_not_wait_for_a_ticket_whose_release_never_arrived(redis_server, conversation):
    clock, waits = FakeClock(), Waits(allowed=False)
    store = recovering(redis_server, clock, waits)
    await release_fails(store, redis_server, conversation, how="lost")
    assert len(store.left_behind()) == 1 and len(tickets(redis_server, conversation)) == 1

    async with store.lock(conversation, lock_lifetime=LIFETIME):
        # Our ticket is the only one: the one left behind was released first.
        assert len(tickets(redis_server, conversation)) == 1
    assert waits.count == 0
    await settled(store)
    assert store.left_behind() == []
    assert tickets(redis_server, conversation) == []  # and the lock is gone, as after any last turn


async def test_a_release_that_timed_out_on_a_frozen_redis_runs_whole_when_it_thaws(redis_server, conversation):
    """Unlike Rasa's (a read, then a write), the release is one script: Redis runs it when it wakes up, and the
    next turn does not wait. The cleanup then finds the ticket gone and changes nothing."""
    clock, waits = FakeClock(), Waits(allowed=False)
    store = await warmed_up(recovering(redis_server, clock, waits))
    await release_fails(store, redis_server, conversation, how="frozen")

    async with store.lock(conversation, lock_lifetime=LIFETIME):
        assert len(tickets(redis_server, conversation)) == 1
    assert waits.count == 0
    await settled(store)
    assert store.left_behind() == []
    assert tickets(redis_server, conversation) == []


async def test_a_turn_of_another_instance_waiting_behind_the_ticket_gets_the_lock_once_redis_answers(
    redis_server, conversation
):
    """The instance whose turn failed releases its ticket by itself (a background task), even if it runs no
    further turn of that customer: another instance's turn of the customer does not wait for the expiry."""
    clock = FakeClock()
    failed, waits = recovering(redis_server, clock), Waits()
    other = recovering(redis_server, clock, waits)
    await release_fails(failed, redis_server, conversation, how="lost")

    async with other.lock(conversation, lock_lifetime=LIFETIME):
        # `failed`'s cleanup task released its ticket while `other` waited
        assert len(tickets(redis_server, conversation)) == 1
    await settled(failed)
    assert failed.left_behind() == []
    assert tickets(redis_server, conversation) == []


async def test_a_ticket_whose_issue_failed_but_landed_after_the_thaw_is_released(redis_server, conversation):
    """A frozen Redis still receives what is sent to it and runs it when it wakes up: the issue that timed
    out adds its ticket after the thaw. The issuing instance knows it may have, and releases it."""
    clock, waits = FakeClock(), Waits(allowed=False)
    store = await warmed_up(recovering(redis_server, clock, waits))
    with redis_server.frozen():
        with pytest.raises(LockError):
            async with store.lock(conversation, lock_lifetime=LIFETIME):
                pytest.fail("the turn must not run without its ticket")
    assert len(store.left_behind()) == 1
    owner = store.left_behind()[0].owner
    # After the thaw the late issue runs. (The cleanup task may release it as soon as it has landed.)
    await wait_for(lambda: tickets(redis_server, conversation) or store.left_behind() == [], "the late issue")
    late = tickets(redis_server, conversation)
    assert [t["owner"] for t in late] in ([owner], [])

    async with store.lock(conversation, lock_lifetime=LIFETIME):
        assert owner not in [t["owner"] for t in tickets(redis_server, conversation)]
    assert waits.count == 0
    await settled(store)
    assert tickets(redis_server, conversation) == []


async def test_an_issue_landing_after_its_ticket_was_cleaned_up_adds_nothing(redis_server, conversation):
    """The cleanup may reach Redis before the late issue does (another connection): it leaves a marker, and
    the issue that lands afterwards finds it and adds no ticket."""
    clock = FakeClock()
    store = recovering(redis_server, clock)
    owner = "f" * 32
    store._release(keys=["lock:" + conversation, store._marker(owner)],
                   args=[conversation, repr(clock()), owner, int(LIFETIME * 1000)])
    landed = store._issue(keys=["lock:" + conversation, store._marker(owner)],
                          args=[conversation, repr(clock()), repr(clock() + LIFETIME), owner])
    assert landed == -1
    assert tickets(redis_server, conversation) == []


# ----- never another turn's ticket, never two turns at once ----------------------------------------------------


async def test_releasing_a_leftover_removes_only_its_own_ticket_even_when_the_number_was_reused(
    redis_server, conversation
):
    """Ticket numbers start from 0 again whenever the queue empties: a leftover is released by its owner
    token, so another turn's ticket with the same number stays."""
    clock = FakeClock()
    failed = recovering(redis_server, clock)
    await release_fails(failed, redis_server, conversation, how="lost")
    leftover = failed.left_behind()[0]
    # The leftover expires (someone's next look drops it), the queue empties, and another instance's
    # turn takes ticket 0 again and holds the lock - while `failed` still has the leftover on its list.
    clock.now += LIFETIME + 1
    other = recovering(redis_server, clock)
    other.update_lock(conversation)
    leftover.expires = clock.now + LIFETIME  # as if it had not expired yet, so the cleanup does try
    failed._left_behind[leftover.owner] = leftover
    async with other.lock(conversation, lock_lifetime=LIFETIME):
        held = tickets(redis_server, conversation)
        assert [t["number"] for t in held] == [0] and held[0]["owner"] != leftover.owner
        failed._release_left_behind()
        assert tickets(redis_server, conversation) == held  # untouched: other's turn still holds the lock
    await settled(failed, other)


async def test_two_turns_of_one_conversation_on_two_instances_never_hold_the_lock_at_once(redis_server, conversation):
    clock = FakeClock()
    first, second = recovering(redis_server, clock), recovering(redis_server, clock)
    inside: List[str] = []
    overlaps: List[str] = []
    go_on = asyncio.Event()

    async def turn(store, name: str) -> None:
        async with store.lock(conversation, lock_lifetime=LIFETIME):
            if inside:
                overlaps.append(name)
            inside.append(name)
            if name == "first":
                await go_on.wait()
            inside.remove(name)

    first_turn = asyncio.create_task(turn(first, "first"))
    while not inside:
        await asyncio.sleep(0)
    second_turn = asyncio.create_task(turn(second, "second"))
    while len(tickets(redis_server, conversation)) < 2:  # the second turn is queued behind the first
        await asyncio.sleep(0)
    for _ in range(20):  # it looks at the queue again and again, and must keep waiting
        await asyncio.sleep(0)
    assert inside == ["first"]
    go_on.set()
    await asyncio.gather(first_turn, second_turn)
    assert overlaps == []
    assert tickets(redis_server, conversation) == []


async def test_a_turn_still_holding_the_lock_is_not_released_by_a_failure_elsewhere(redis_server, conversation):
    """A failure of one turn leaves behind only that turn's ticket: a turn of the same conversation already
    holding the lock (another instance) keeps it while the leftover is released."""
    clock = FakeClock()
    holder, failed = recovering(redis_server, clock), recovering(redis_server, clock)
    async with holder.lock(conversation, lock_lifetime=LIFETIME):
        # `failed` queues behind the holder; Redis freezes while it looks at the queue; its turn fails.
        waiting = failed.lock(conversation, lock_lifetime=LIFETIME)
        waiter = asyncio.ensure_future(waiting.__aenter__())
        while len(tickets(redis_server, conversation)) < 2:
            await asyncio.sleep(0)
        with redis_server.frozen():
            with pytest.raises(redis.exceptions.TimeoutError):
                await waiter
        assert len(failed.left_behind()) == 1
        failed._release_left_behind()
        held = tickets(redis_server, conversation)
        assert len(held) == 1 and held[0]["number"] == 0  # the holder's ticket, still first
    await settled(failed, holder)
    assert tickets(redis_server, conversation) == []


# ----- compatibility ----------------------------------------------------------------------------------------


async def test_the_stored_lock_reads_as_rasas_own(redis_server, conversation):
    clock = FakeClock()
    store = recovering(redis_server, clock)
    async with store.lock(conversation, lock_lifetime=LIFETIME) as lock:
        assert lock.conversation_id == conversation
        assert lock.now_serving == 0
        assert RedisLockStore(port=redis_server.port).get_lock(conversation).last_issued == 0


def test_the_production_and_cluster_endpoints_use_it(redis_server):
    """Rasa builds it from the endpoints' `lock_store` section (a custom type gets the EndpointConfig)."""
    for path in ("deploy/endpoints.production.yml", "deploy/cluster/endpoints.cluster.yml"):
        with open(os.path.join(ROOT, path)) as text:
            section = yaml.safe_load(text)["lock_store"]
        assert section["type"] == "connectors.redis_lock_store.RecoveringRedisLockStore", path
        assert {"url", "port", "password", "db"} <= set(section), path
    store = LockStore.create(EndpointConfig(url="127.0.0.1", type=section["type"], port=redis_server.port, db=3))
    assert isinstance(store, RecoveringRedisLockStore)
    assert store.red.connection_pool.connection_kwargs["port"] == redis_server.port
