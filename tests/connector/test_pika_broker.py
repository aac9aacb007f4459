"""The cluster profile's RabbitMQ event broker (connectors/pika_broker.py, deploy/cluster/endpoints.cluster.yml)
against a real rabbitmq-server: what Rasa publishes while RabbitMQ is down, restarting or not yet routing reaches
the queue afterwards, once each and in order per conversation, and the log says what happened without a
customer's number or words.

The broker is built from the cluster endpoints file the way Rasa builds it, so `RASA_PIKA_RETRY=0` (Rasa's own
PikaEventBroker) runs the same scenarios on the shipped broker: the first two tests then fail (events never arrive).

The endpoints' `publish_only` filter (connectors/event_filter.py): what it leaves out never reaches the queue nor
any counter of kept, dropped or failed events, what it lets through arrives in order; a mistake in it stops the
start-up. That it lets through every event the inbox applies is inbox/tests/test_broker_filter.py's to prove.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Callable, List

import aio_pika
import pytest
import rasa.shared.core.events  # noqa: F401  (pika.py reaches it as an attribute of rasa.shared)
from rasa.core.brokers.broker import EventBroker
from rasa.core.brokers.pika import PikaEventBroker
from rasa.utils.endpoints import read_endpoint_config

import rasa.shared.core.events as rasa_events
from connectors.event_filter import RASA_EVENT_KINDS
from connectors.pika_broker import SWITCH_ENV, FilteringPikaEventBroker, RetryingPikaEventBroker, off_reason
from inbox.tests.rabbitmq_server import INSTALLED, RabbitMQServer

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ROOT / "deploy" / "cluster" / "endpoints.cluster.yml"
needs_rabbitmq = pytest.mark.skipif(not INSTALLED, reason="rabbitmq-server is not installed (apt-get install "
                                                          "rabbitmq-server)")
# Customer data that must never reach a log line at INFO or above.
SECRET_BITS = ("4111", "MG Road", "Asha", "9812345", "98123")


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory):
    if not INSTALLED:
        pytest.skip("rabbitmq-server is not installed")
    server = RabbitMQServer(tmp_path_factory.mktemp("rabbitmq") / "node")
    server.start()
    yield server
    server.stop()


_names = iter(range(1, 1000))


async def cluster_broker(server: RabbitMQServer, monkeypatch, **extra) -> tuple[EventBroker, str]:
    """The event broker of deploy/cluster/endpoints.cluster.yml, created as Rasa creates it, with a queue and
    exchange of the test's own."""
    number = next(_names)
    values = {"RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_PORT": str(server.port), "RABBITMQ_USER": server.user,
              "RABBITMQ_PASSWORD": server.password}
    for name in set(re.findall(r"\$\{(\w+)\}", ENDPOINTS.read_text())):
        monkeypatch.setenv(name, values.get(name, "unused-in-this-test"))
    config = read_endpoint_config(str(ENDPOINTS), "event_broker")
    queue = f"test_events_{number}"
    config.kwargs.update(queues=[queue], exchange_name=f"test-exchange-{number}", retry_interval_seconds=0.2,
                         **extra)
    broker = await EventBroker.create(config)
    return broker, queue


def user_event(sender: str, number: int) -> dict:
    """A customer's message as Rasa streams it (number, name and words are personal data)."""
    return {"sender_id": sender, "event": "user", "timestamp": 1764600000.0 + number,
            "text": f"message {number}: my card ends 4111 and I live at 12 MG Road",
            "parse_data": {"intent": {"name": "inform", "confidence": 0.9}},
            "metadata": {"whatsapp": {"wa_id": sender, "profile_name": "Asha"}}}


def body(event: dict) -> bytes:
    return json.dumps(event).encode("utf-8")


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Polls `condition`; the timeout only turns a hang into a failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


class Reader:
    """Reads the test's queue as the inbox's consumer does (a fresh connection per read, acknowledging each)."""

    def __init__(self, server: RabbitMQServer, queue: str):
        self.server, self.queue = server, queue
        self.bodies: List[bytes] = []

    async def read_until(self, expected: List[bytes], timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = await aio_pika.connect(self.server.url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.queue, durable=True)  # as Rasa declares it
            while not set(expected) <= set(self.bodies):
                message = await queue.get(fail=False)
                if message is None:
                    if loop.time() > deadline:
                        missing = [json.loads(b)["timestamp"] for b in expected if b not in self.bodies]
                        raise AssertionError(f"events never reached RabbitMQ's queue (timestamps): {missing}")
                    await asyncio.sleep(0.05)
                    continue
                self.bodies.append(message.body)
                await message.ack()
        finally:
            await connection.close()

    def per_sender(self) -> dict:
        order: dict = {}
        for raw in dict.fromkeys(self.bodies):  # as the inbox applies them: a byte-identical copy is skipped
            event = json.loads(raw)
            order.setdefault(event["sender_id"], []).append(event["timestamp"])
        return order


def publishing_step(broker):
    """The object and name of the call that sends one event: RetryingPikaEventBroker's `_send`, or the exchange's
    `publish` for Rasa's own broker."""
    return (broker, "_send") if isinstance(broker, RetryingPikaEventBroker) else (broker._exchange, "publish")


class FailingPublishes:
    """Makes the broker's publishes fail, as while RabbitMQ is still coming up, until released."""

    def __init__(self, broker):
        self.failures = 0
        self.released = False
        owner, name = publishing_step(broker)
        publish = getattr(owner, name)

        async def failing_publish(*args, **kwargs):
            if not self.released:
                self.failures += 1
                raise ConnectionError("connection reset by peer (RabbitMQ still starting)")
            return await publish(*args, **kwargs)

        setattr(owner, name, failing_publish)


class HangingPublishes:
    """Makes the broker's publishes hang, as on a connection that died under them, until released (the ones
    already hanging never finish)."""

    def __init__(self, broker):
        self.hanging = 0
        self.released = False
        owner, name = publishing_step(broker)
        publish = getattr(owner, name)
        never = asyncio.Event()

        async def hanging_publish(*args, **kwargs):
            if not self.released:
                self.hanging += 1
                await never.wait()
            return await publish(*args, **kwargs)

        setattr(owner, name, hanging_publish)


def connected(broker) -> bool:
    connection = broker._connection
    return connection.connected.is_set() and not connection.reconnecting


def customer_data_logged(caplog) -> List[str]:
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.INFO and any(bit in record.getMessage() for bit in SECRET_BITS)]


@needs_rabbitmq
async def test_events_from_a_rabbitmq_restart_arrive_once_each_in_order_even_when_the_first_retry_fails(
        rabbitmq, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    broker, queue = await cluster_broker(rabbitmq, monkeypatch)
    reader = Reader(rabbitmq, queue)
    a, b, c = "919812345210", "919812345211", "919812345212"
    published: List[dict] = []

    def emit(sender: str, number: int) -> None:
        event = user_event(sender, number)
        published.append(event)
        broker.publish(event)

    try:
        emit(a, 1), emit(b, 2)
        await reader.read_until([body(e) for e in published])

        await asyncio.to_thread(rabbitmq.stop)
        await wait_until(lambda: not broker._connection.connected.is_set(), "Rasa's broker notices RabbitMQ is gone")
        for sender, number in [(a, 3), (b, 4), (a, 5), (c, 6), (a, 7), (b, 8)]:
            emit(sender, number)  # while RabbitMQ is down: kept
        fault = FailingPublishes(broker)

        await asyncio.to_thread(rabbitmq.start)
        await wait_until(lambda: connected(broker) and fault.failures >= 1,
                         "Rasa's broker reconnects and its first try to publish the kept events fails")
        emit(a, 9), emit(c, 10)  # after the reconnect, while the older events are still kept
        fault.released = True

        await reader.read_until([body(e) for e in published])
        emit(a, 11)  # a last event: once it is read, anything published before it has been read too
        await reader.read_until([body(published[-1])])

        assert reader.per_sender() == {a: [1764600000.0 + n for n in (1, 3, 5, 7, 9, 11)],
                                       b: [1764600000.0 + n for n in (2, 4, 8)],
                                       c: [1764600000.0 + n for n in (6, 10)]}
        assert sorted(reader.bodies) == sorted(body(e) for e in published)  # none twice, even as a copy
        warnings = [r.getMessage() for r in caplog.records
                    if r.name == "connectors.pika_broker" and r.levelno == logging.WARNING]
        assert warnings and "keeping" in warnings[0]  # the operator is told events are being kept
        assert customer_data_logged(caplog) == []
    finally:
        await broker.close()


@needs_rabbitmq
async def test_publishes_left_hanging_by_a_closed_connection_are_tried_again_once_rabbitmq_is_back(
        rabbitmq, monkeypatch):
    """The cluster chaos run saw publishes in flight when RabbitMQ stopped wait on the dead connection until their
    timeout while the connection was already back. Here they would wait forever (no timeout to speak of)."""
    broker, queue = await cluster_broker(rabbitmq, monkeypatch, publish_timeout_seconds=3600)
    reader = Reader(rabbitmq, queue)
    stuck = HangingPublishes(broker)
    a, b = "919812345214", "919812345215"
    events = [user_event(a, 1), user_event(b, 2), user_event(a, 3)]
    try:
        for event in events:
            broker.publish(event)
        await wait_until(lambda: stuck.hanging >= 2, "both conversations' first events are in flight")
        await asyncio.to_thread(rabbitmq.stop)
        stuck.released = True
        await asyncio.to_thread(rabbitmq.start)

        last = user_event(b, 4)
        broker.publish(last)
        await reader.read_until([body(event) for event in events + [last]])
        assert reader.per_sender() == {a: [1764600001.0, 1764600003.0], b: [1764600002.0, 1764600004.0]}
    finally:
        await broker.close()


@needs_rabbitmq
async def test_an_event_rabbitmq_cannot_route_yet_is_kept_until_the_queue_is_bound_again(rabbitmq, monkeypatch):
    """After a restart Rasa declares its exchange again, then the queue's binding: an event published in between
    comes back unroutable. RabbitMQ confirms the publish either way; only the returned message says it reached
    no queue."""
    broker, queue = await cluster_broker(rabbitmq, monkeypatch)
    reader = Reader(rabbitmq, queue)
    admin = await aio_pika.connect(rabbitmq.url)
    try:
        channel = await admin.channel()
        bound = await channel.declare_queue(queue, durable=True)
        exchange = broker.exchange_name
        await bound.unbind(exchange, "")
        d, e = "919812345213", "US.13491208655302741918"
        events = [user_event(d, 1), user_event(e, 2), user_event(d, 3)]
        for event in events:
            broker.publish(event)
        if isinstance(broker, RetryingPikaEventBroker):
            await wait_until(lambda: broker.failed_attempts >= 2, "both conversations' first events came back")
        else:
            await wait_until(lambda: not broker._background_tasks, "Rasa's publish tasks have finished")
        await bound.bind(exchange, "")

        last = user_event(d, 4)
        broker.publish(last)
        await reader.read_until([body(event) for event in events + [last]])
        assert reader.per_sender() == {d: [1764600001.0, 1764600003.0, 1764600004.0], e: [1764600002.0]}
    finally:
        await admin.close()
        await broker.close()


@needs_rabbitmq
async def test_many_conversations_at_once_stay_in_order(rabbitmq, monkeypatch):
    broker, queue = await cluster_broker(rabbitmq, monkeypatch)
    reader = Reader(rabbitmq, queue)
    senders = [f"9198123452{n:02d}" for n in range(12)]
    events = [user_event(senders[n % 12], n) for n in range(240)]
    try:
        for event in events:
            broker.publish(event)
        await reader.read_until([body(event) for event in events])
        assert reader.per_sender() == {s: [1764600000.0 + n for n in range(240) if n % 12 == i]
                                       for i, s in enumerate(senders)}
    finally:
        await broker.close()


class CongestedLock:
    """The channel's publish lock, but the first publish to take it finds the event loop busy for a while after
    (as a Rasa instance's loop is, parsing messages between publishes): its deadline passes while it holds it."""

    def __init__(self, real: asyncio.Lock, busy_seconds: float):
        self.real, self.busy_seconds, self.congested = real, busy_seconds, False

    async def __aenter__(self):
        await self.real.acquire()
        if not self.congested:
            self.congested = True
            time.sleep(self.busy_seconds)  # blocks the loop: no timer can interrupt it

    async def __aexit__(self, *exc):
        self.real.release()

    def locked(self):
        return self.real.locked()


@needs_rabbitmq
async def test_a_publish_whose_deadline_passes_while_it_holds_the_channel_lock_does_not_stop_the_stream(
    rabbitmq, monkeypatch
):
    """Found in the cluster benchmark: with aio-pika's own publish timeout, aiormq 6.4 left the channel's lock held
    when the deadline passed inside it, and no later event was published until a reconnect."""
    broker, queue = await cluster_broker(rabbitmq, monkeypatch, publish_timeout_seconds=0.2)
    reader = Reader(rabbitmq, queue)
    channel = broker._exchange.channel
    congested = CongestedLock(channel.lock, busy_seconds=0.5)
    channel._Channel__lock = congested  # aiormq's private publish lock, behind its read-only `lock` property
    assert channel.lock is congested
    events = [user_event("919812345290", n) for n in range(5)]
    try:
        for event in events:
            broker.publish(event)
        await reader.read_until([body(event) for event in events], timeout=20)
        assert reader.per_sender() == {"919812345290": [1764600000.0 + n for n in range(5)]}
        assert congested.congested and not congested.locked()
    finally:
        await broker.close()


@needs_rabbitmq
async def test_a_busy_event_loop_does_not_hold_the_stream_to_one_event_per_turn(rabbitmq, monkeypatch):
    """Found in the session-12 capacity benchmark: each publish waited inside the channel's lock for its frames to
    be written, which takes a turn of the event loop, so a Rasa instance whose loop is busy parsing messages (here:
    20 ms of blocking work per turn) published one event per turn, fewer than it made, and kept thousands.

    Counted in turns of the loop until all 600 publishes have passed the channel's lock (aiormq numbers each one
    there, `delivery_tag`): before the fix that took at least 600 turns. Not the turns until RabbitMQ confirms them,
    which depend on how busy the machine is (a loaded CI machine took 354 turns to confirm them).

    RabbitMQ's confirmations are read one loop turn at a time here, so on a loaded machine they can take longer
    than the broker's 30-second publish timeout, which republishes (at-least-once, as designed; session 17's final
    run saw 1,040 publishes for 600 events). The test gives the broker a timeout it cannot reach, so "published
    once" checks the broker, not the machine's speed."""
    broker, queue = await cluster_broker(rabbitmq, monkeypatch, publish_timeout_seconds=3600)
    reader = Reader(rabbitmq, queue)
    await reader.read_until([])  # the queue exists
    await wait_until(lambda: broker._connected(), "connected to RabbitMQ")
    channel = broker._exchange.channel
    first_tag = channel.delivery_tag
    turns, busy, all_passed_at = 0, True, None

    async def busy_loop():
        nonlocal turns, all_passed_at
        while busy:
            turns += 1
            if all_passed_at is None and channel.delivery_tag - first_tag >= 600:
                all_passed_at = turns
            time.sleep(0.02)  # a message being parsed: nothing else runs meanwhile
            await asyncio.sleep(0)

    events = [user_event(f"9198123460{n % 40:02d}", n) for n in range(600)]
    ticker = asyncio.get_running_loop().create_task(busy_loop())
    try:
        await asyncio.sleep(0)
        started = turns
        for event in events:
            broker.publish(event)
        await wait_until(lambda: broker.kept_events == 0, "every event confirmed", timeout=600)
    finally:
        busy = False
        await ticker
    try:
        await reader.read_until([body(event) for event in events])
        assert reader.per_sender() == {f"9198123460{i:02d}": [1764600000.0 + n for n in range(600) if n % 40 == i]
                                       for i in range(40)}
        assert channel.delivery_tag - first_tag == 600  # one channel throughout: each event published once
        used = all_passed_at - started
        assert used < 60, f"{used} turns of the loop to hand 600 events to the connection's writer"
    finally:
        await broker.close()


@needs_rabbitmq
async def test_the_cluster_endpoints_load_this_broker_unless_switched_off(rabbitmq, monkeypatch):
    monkeypatch.delenv(SWITCH_ENV, raising=False)
    broker, _ = await cluster_broker(rabbitmq, monkeypatch)
    await broker.close()
    assert type(broker) is RetryingPikaEventBroker

    monkeypatch.setenv(SWITCH_ENV, "0")
    broker, _ = await cluster_broker(rabbitmq, monkeypatch)
    await broker.close()
    assert type(broker) is FilteringPikaEventBroker  # Rasa's own, publishing what `publish_only` lets through

    broker, _ = await cluster_broker(rabbitmq, monkeypatch, publish_only=None)
    await broker.close()
    assert type(broker) is PikaEventBroker  # Rasa as shipped


def test_another_rasa_version_gets_rasas_own_broker():
    assert off_reason({}, "3.6.21") is None
    assert off_reason({}, "3.6.22") == "Rasa 3.6.22 is not the tested 3.6.21"
    assert off_reason({SWITCH_ENV: "0"}, "3.6.21") == f"{SWITCH_ENV}=0"


async def test_past_the_memory_limit_events_are_dropped_loudly_and_without_customer_data(caplog):
    caplog.set_level(logging.INFO)
    # Never connected: nothing can be published, so everything is kept.
    broker = RetryingPikaEventBroker("127.0.0.1", "kesar", "secret", queues=["q"], max_kept_megabytes=0.004,
                                     retry_interval_seconds=3600)
    sender = "919812345210"
    size = len(body(user_event(sender, 0))) + 256
    fits = int(0.004 * 1048576) // size
    for number in range(fits + 3):
        broker.publish(user_event(sender, number))

    assert broker.kept_events == fits and broker.kept_bytes <= broker.max_kept_bytes
    assert broker.dropped == 3
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "DROPPING" in errors[0] and "'user' event of +91 98•••••210" in errors[0]

    await broker.close()  # RabbitMQ never confirmed the kept ones: they die with the process, and it says so
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"{fits} event(s) of 1 conversation(s) were never confirmed" in errors[1]
    assert "3 event(s) dropped (user 3) of 1 conversation(s): +91 98•••••210" in errors[2]
    assert customer_data_logged(caplog) == []


# ----- the `publish_only` filter ----------------------------------------------------------------------------------

def turn_events(sender: str, number: int) -> List[dict]:
    """A customer's message answered from the knowledge base, then a hand-off, with every event Rasa 3.6 publishes
    for them (a few ms apart, `timestamp` unique per event)."""
    at = 1764600000.0 + number * 100

    def stamp(n: int, event: dict) -> dict:
        return {**event, "sender_id": sender, "timestamp": at + n / 1000}

    events = [
        {"event": "action", "name": "action_session_start", "policy": None, "confidence": 1.0},
        {"event": "session_started"},
        {"event": "action", "name": "action_listen", "policy": None, "confidence": 1.0},
        user_event(sender, number),
        {"event": "user_featurization", "use_text_for_featurization": False},
        {"event": "action", "name": "action_answer_question", "policy": "RulePolicy", "confidence": 1.0},
        {"event": "bot", "text": "Returns are accepted within 7 days.", "data": {}, "metadata": {}},
        {"event": "slot", "name": "kb_match", "value": {"entry_id": "returns", "score": 0.8}},
        {"event": "slot", "name": "bot_answer_count", "value": 1.0},
        {"event": "action", "name": "action_listen", "policy": None, "confidence": 1.0},
        user_event(sender, number + 1),
        {"event": "active_loop", "name": "order_form"},
        {"event": "slot", "name": "order_number", "value": "2840"},
        {"event": "slot", "name": "requested_slot", "value": None},
        {"event": "bot", "text": "I'm bringing in Anita.", "data": {}, "metadata": {}},
        {"event": "slot", "name": "escalation_reason", "value": "customer_request"},
        {"event": "slot", "name": "escalation_topic", "value": None},
        {"event": "slot", "name": "handoff_id", "value": "hf_0123"},
        {"event": "slot", "name": "handoff_details", "value": {"priority": "high"}},
        {"event": "pause"},
        {"event": "action", "name": "action_listen", "policy": None, "confidence": 1.0},
    ]
    return [stamp(n, event) for n, event in enumerate(events)]


PUBLISHED_KINDS = ["user", "bot", "slot", "user", "slot", "bot", "slot", "slot", "slot", "slot", "pause"]


async def queue_depth(server: RabbitMQServer, queue: str) -> int:
    connection = await aio_pika.connect(server.url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True)
        return declared.declaration_result.message_count
    finally:
        await connection.close()


@needs_rabbitmq
async def test_events_the_filter_leaves_out_never_reach_the_queue_and_the_others_arrive_in_order(
        rabbitmq, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    broker, queue = await cluster_broker(rabbitmq, monkeypatch)
    assert type(broker) is RetryingPikaEventBroker
    reader = Reader(rabbitmq, queue)
    senders = ["919812345230", "919812345231", "US.13491208655302741931"]
    turns = {sender: turn_events(sender, 10 * n) for n, sender in enumerate(senders)}
    everything = [event for step in zip(*turns.values()) for event in step]  # the conversations interleaved
    published = [event for event in everything if broker.event_filter.lets_through(event)]
    assert [e["event"] for e in turns[senders[0]] if broker.event_filter.lets_through(e)] == PUBLISHED_KINDS
    try:
        for event in everything:
            broker.publish(event)
        assert broker.filtered_out == len(everything) - len(published) == 3 * 10
        await reader.read_until([body(event) for event in published])
        await wait_until(lambda: broker.kept_events == 0, "every published event confirmed")
        assert await queue_depth(rabbitmq, queue) == 0  # nothing else was queued
        assert sorted(reader.bodies) == sorted(body(event) for event in published)
        assert reader.per_sender() == {sender: [e["timestamp"] for e in turns[sender]
                                                if broker.event_filter.lets_through(e)] for sender in senders}
        assert (broker.confirmed, broker.dropped, broker.failed_attempts) == (len(published), 0, 0)
        started = [r.getMessage() for r in caplog.records if "publishing only" in r.getMessage()]
        assert started == ["RabbitMQ event stream: publishing only bot, pause, slot, user (slots: escalation_reason, "
                           "escalation_topic, handoff_details, handoff_id, kb_match, order_number) events "
                           "(publish_only); the others are not published"]
    finally:
        await broker.close()


@needs_rabbitmq
async def test_while_rabbitmq_is_away_filtered_events_are_neither_kept_nor_dropped(rabbitmq, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    # Room for the 11 events the filter lets through (4.5 kB with bookkeeping), not for all 21 (8.3 kB).
    broker, queue = await cluster_broker(rabbitmq, monkeypatch, max_kept_megabytes=0.006)
    reader = Reader(rabbitmq, queue)
    sender = "919812345232"
    events = turn_events(sender, 0)
    published = [event for event in events if broker.event_filter.lets_through(event)]
    try:
        await reader.read_until([])  # the queue exists
        await asyncio.to_thread(rabbitmq.stop)
        await wait_until(lambda: not broker._connection.connected.is_set(), "Rasa's broker notices RabbitMQ is gone")
        for event in events:
            broker.publish(event)
        assert (broker.kept_events, broker.dropped, broker.filtered_out) == (len(published), 0, 10)
        assert broker.kept_bytes == sum(len(body(event)) + 256 for event in published)
        await asyncio.to_thread(rabbitmq.start)
        await reader.read_until([body(event) for event in published])
        assert reader.per_sender() == {sender: [event["timestamp"] for event in published]}
        kept = [r.getMessage() for r in caplog.records if "keeping" in r.getMessage()]
        assert kept and "(0.0 MB; slot 6, user 2, bot 2, pause 1)" in kept[0]  # the filtered ones are not counted
    finally:
        await broker.close()


@needs_rabbitmq
async def test_without_the_option_every_event_is_published(rabbitmq, monkeypatch):
    broker, queue = await cluster_broker(rabbitmq, monkeypatch, publish_only=None)
    reader = Reader(rabbitmq, queue)
    events = turn_events("919812345233", 0)
    try:
        assert broker.event_filter is None
        for event in events:
            broker.publish(event)
        await reader.read_until([body(event) for event in events])
        assert reader.per_sender() == {"919812345233": [event["timestamp"] for event in events]}
        assert broker.filtered_out == 0
    finally:
        await broker.close()


@needs_rabbitmq
async def test_rasas_own_broker_applies_the_same_filter(rabbitmq, monkeypatch):
    monkeypatch.setenv(SWITCH_ENV, "0")
    broker, queue = await cluster_broker(rabbitmq, monkeypatch)
    reader = Reader(rabbitmq, queue)
    events = turn_events("919812345234", 0)
    published = [event for event in events if broker.event_filter.lets_through(event)]
    try:
        for event in events:
            broker.publish(event)
        await reader.read_until([body(event) for event in published])
        await wait_until(lambda: not broker._background_tasks, "Rasa's publish tasks have finished")
        assert await queue_depth(rabbitmq, queue) == 0
        assert sorted(reader.bodies) == sorted(body(event) for event in published)
        assert broker.filtered_out == 10
    finally:
        await broker.close()


@pytest.mark.parametrize("option, problem", [
    ({"event_kinds": ["user", "bots"]}, "unknown event kind(s) bots"),
    ({"event_kinds": "user, bot"}, "`publish_only.event_kinds` must be a non-empty list of names, not 'user, bot'"),
    ({"event_kinds": []}, "must be a non-empty list of names"),
    ({"event_kinds": ["user", 3]}, "must be a non-empty list of names"),
    ({"slot_names": ["kb_match"]}, "needs `event_kinds`"),
    ({"event_kinds": ["user", "bot"], "slot_names": ["kb_match"]}, "`slot` is not in `event_kinds`"),
    ({"event_kinds": ["slot"], "slot_names": "kb_match"}, "`publish_only.slot_names` must be a non-empty list"),
    ({"event_kinds": ["slot"], "slots": ["kb_match"]}, "unknown key(s) slots"),
    ({"event_kinds": ["slot"], "handoff_slots_from": "contracts/nowhere.yml"}, "cannot read"),
    ({"event_kinds": ["slot"], "handoff_slots_from": "contracts/graph_api.yml"}, "lists no `slot:`"),
    (["user", "bot"], "`publish_only` must be a mapping"),
])
@pytest.mark.parametrize("switch", ["1", "0"])
async def test_a_mistake_in_the_filter_stops_the_start_up(monkeypatch, option, problem, switch):
    """Raised while the broker is created, before it connects (no RabbitMQ here): Rasa does not start."""
    monkeypatch.setenv(SWITCH_ENV, switch)
    for name in set(re.findall(r"\$\{(\w+)\}", ENDPOINTS.read_text())):
        monkeypatch.setenv(name, "1" if name.endswith("PORT") else "unused-in-this-test")
    config = read_endpoint_config(str(ENDPOINTS), "event_broker")
    config.kwargs["publish_only"] = option
    with pytest.raises(ValueError) as raised:
        await EventBroker.create(config)
    assert problem in str(raised.value)


def test_the_filter_knows_every_kind_of_rasas_events():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    # Only the events a tracker can hold: `rasa test`'s evaluation markers (rasa.core.test: wrong_action,
    # wrong_utterance, warning_predicted) subclass Event too, once a test has imported that module.
    kinds = {cls.type_name for cls in subclasses(rasa_events.Event) if cls.__module__ == rasa_events.__name__}
    assert RASA_EVENT_KINDS == kinds - {"event"}
