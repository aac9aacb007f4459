"""The event stream from RabbitMQ, against a real rabbitmq-server (inbox/tests/rabbitmq_server.py): events
published the way Rasa 3.6's PikaEventBroker publishes them reach the inbox once each and in order per
conversation, through a consumer crash mid-batch, a standby consumer taking over, and broker restarts."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import timedelta

import pika
import pytest
from sqlalchemy import select

from inbox.models import Conversation, Message
from inbox.services.event_stream_rabbitmq import RASA_EXCHANGE, RabbitMQConsumer, event_stream_consumer
from inbox.settings import Settings
from inbox.tests.conftest import WEDNESDAY_11AM
from inbox.tests.rabbitmq_server import INSTALLED, RabbitMQServer
from inbox.tests.rasa_events import RasaBrokerTable

pytestmark = pytest.mark.skipif(not INSTALLED, reason="rabbitmq-server is not installed (apt-get install rabbitmq-server)")

T0 = WEDNESDAY_11AM - timedelta(minutes=10)
_queues = itertools.count(1)


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the consumer catches it."""


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory):
    server = RabbitMQServer(tmp_path_factory.mktemp("rabbitmq") / "node")
    server.start()
    yield server
    server.stop()


class RabbitPublisher(RasaBrokerTable):
    """Publishes RasaBrokerTable's events as Rasa's PikaEventBroker does: JSON of {"sender_id", **event} to the
    fanout exchange `rasa-exchange`, persistent, with publisher confirms, after declaring its queue."""

    def __init__(self, url: str, queue: str):  # not super().__init__: that would create the SQLite table
        self.parameters = pika.URLParameters(url)
        self.queue = queue
        self.published: dict[str, list[str]] = {}  # sender -> message texts in publish order
        self._connect()

    def _connect(self) -> None:
        self.connection = pika.BlockingConnection(self.parameters)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.exchange_declare(RASA_EXCHANGE, exchange_type="fanout")
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, RASA_EXCHANGE)

    def reconnect(self) -> None:
        self._connect()

    def publish(self, sender_id: str, event: dict) -> int:
        body = json.dumps({"sender_id": sender_id, **event}).encode()
        self.channel.basic_publish(RASA_EXCHANGE, "", body, pika.BasicProperties(delivery_mode=2))
        if event.get("text"):
            self.published.setdefault(sender_id, []).append(event["text"])
        return 0

    def conversation(self, sender_id: str, turns: int, start: int = 0) -> None:
        for turn in range(start, start + turns):
            at = T0 + timedelta(seconds=turn)
            self.user(sender_id, f"{sender_id} asks #{turn}", at)
            self.bot(sender_id, f"{sender_id} answer #{turn}", at + timedelta(milliseconds=500))

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def queue(rabbitmq):
    name = f"inbox_test_{next(_queues)}"
    yield name
    with pika.BlockingConnection(pika.URLParameters(rabbitmq.url)) as connection:
        connection.channel().queue_delete(name)


@pytest.fixture
def publisher(rabbitmq, queue):
    publisher = RabbitPublisher(rabbitmq.url, queue)
    yield publisher
    publisher.close()


class Running:
    """A consumer in a thread, as `python -m inbox consume` runs it; `crashed` once a Crash ended it."""

    def __init__(self, consumer: RabbitMQConsumer):
        self.consumer = consumer
        self.stop = threading.Event()
        self.crashed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.consumer.run_forever(self.stop)
        except Crash:
            self.crashed.set()

    def halt(self):
        self.stop.set()
        self.thread.join(timeout=30)


def consumer(inbox, rabbitmq, queue, **overrides) -> RabbitMQConsumer:
    instance = RabbitMQConsumer(inbox, rabbitmq.url, queue, retry_seconds=0.2)
    instance.wake_seconds = 0.2  # halts quickly
    for name, method in overrides.items():
        setattr(instance, name, method.__get__(instance))
    return instance


def crash_mid_batch(after: int):
    """An `_apply_one` that dies before the `after`+1-th event: the open transaction is rolled back."""
    applied = itertools.count()

    def _apply_one(self, session, applier, event):
        if next(applied) == after:
            raise Crash()
        RabbitMQConsumer._apply_one(self, session, applier, event)

    return _apply_one


def crash_before_acknowledging(self, channel, last_tag):
    raise Crash()  # the batch is committed; RabbitMQ never hears of it


def transcripts(inbox) -> dict[str, list[str]]:
    """Each conversation's texts in the order the consumer stored them (row id order)."""
    with inbox.db.read() as session:
        rows = session.execute(
            select(Conversation.sender_id, Message.text).join(Message).order_by(Message.id)
        ).all()
    found: dict[str, list[str]] = {}
    for sender_id, text in rows:
        found.setdefault(sender_id, []).append(text)
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


def wait_until_mirrored(inbox, publisher, timeout: float = 60) -> dict[str, list[str]]:
    expected = sum(len(texts) for texts in publisher.published.values())
    wait_for(lambda: sum(len(t) for t in transcripts(inbox).values()) >= expected, timeout,
             f"{expected} messages in the inbox")
    return transcripts(inbox)


@pytest.mark.parametrize("crash", ["mid-batch", "after commit, before the acknowledgement"])
def test_a_batch_redelivered_after_a_consumer_crash_is_applied_once(crash, inbox, rabbitmq, queue, publisher):
    for customer in ("919800000001", "919800000002", "919800000003"):
        publisher.conversation(customer, turns=5)
    hook = (
        {"_apply_one": crash_mid_batch(after=12)}
        if crash == "mid-batch"
        else {"_acknowledge": crash_before_acknowledging}
    )
    first = Running(consumer(inbox, rabbitmq, queue, **hook))
    assert first.crashed.wait(30), "the first consumer never received the batch"
    if crash == "mid-batch":
        assert transcripts(inbox) == {}  # nothing of the rolled-back batch is visible
    else:
        assert transcripts(inbox) == publisher.published  # committed, but not acknowledged

    second = Running(consumer(inbox, rabbitmq, queue))
    try:
        wait_for(lambda: second.consumer.batches_applied >= 1, 30, "the redelivered batch")
        assert wait_until_mirrored(inbox, publisher) == publisher.published  # each once, in order
    finally:
        second.halt()


def test_two_consumers_keep_each_conversation_in_order_when_the_active_one_dies(inbox, rabbitmq, queue, publisher):
    active = Running(consumer(inbox, rabbitmq, queue, _apply_one=crash_mid_batch(after=70)))
    assert active.consumer.consuming.wait(30), "the first consumer never held the queue"
    standby = Running(consumer(inbox, rabbitmq, queue))
    customers = [f"91980000010{n}" for n in range(8)]
    try:
        for turn in range(12):  # interleaved: every customer speaks in every round
            for customer in customers:
                publisher.conversation(customer, turns=1, start=turn)
        assert active.crashed.wait(30), "the first consumer did not die mid-stream"
        mirrored = wait_until_mirrored(inbox, publisher)
        # The standby commits a batch, then acknowledges it, then counts it: the transcripts can be complete a
        # moment before its counter says so (a loaded CI machine saw 0 here once), so the count is waited for.
        wait_for(lambda: standby.consumer.batches_applied >= 1, 30, "the standby taking over")
        assert mirrored == publisher.published
    finally:
        standby.halt()


def test_a_broker_restart_loses_nothing(inbox, rabbitmq, queue, publisher):
    # Published while no consumer runs, then the broker restarts: the queue and its messages are on disk.
    publisher.conversation("919800000201", turns=6)
    rabbitmq.restart()
    running = Running(consumer(inbox, rabbitmq, queue))
    try:
        wait_until_mirrored(inbox, publisher)
        # The consumer stays up through a second restart and reconnects by itself.
        rabbitmq.restart()
        publisher.reconnect()  # Rasa's robust connection does the same, re-declaring exchange and queue
        publisher.conversation("919800000201", turns=6, start=6)
        publisher.conversation("919800000202", turns=6)
        assert wait_until_mirrored(inbox, publisher) == publisher.published
    finally:
        running.halt()


def test_rabbitmq_without_a_url_is_a_clear_error(inbox):
    inbox.settings = Settings(inbox_env="test", inbox_event_broker="rabbitmq")
    with pytest.raises(ValueError, match="RABBITMQ_URL"):
        event_stream_consumer(inbox)


def ioloop_wakeups_in(thread_name: str, monkeypatch) -> list[int]:
    """Counts pika's ioloop polls (each wake-up of a BlockingConnection: I/O, a timer or a time limit) made
    by the thread of that name."""
    from pika.adapters.select_connection import IOLoop

    counted = [0]
    original = IOLoop.poll

    def poll(self):
        if threading.current_thread().name == thread_name:
            counted[0] += 1
        return original(self)

    monkeypatch.setattr(IOLoop, "poll", poll)
    return counted


def test_an_idle_consumer_waits_for_a_delivery_instead_of_polling(inbox, rabbitmq, queue, publisher, monkeypatch):
    # Session 16: the active consumer used to wake every idle_seconds (50 ms) with nothing to do, ~20 times a
    # second; now it blocks until a delivery arrives, waking once per wake_seconds to look at `stop`.
    idle = consumer(inbox, rabbitmq, queue)
    idle.wake_seconds = 1.0  # as shipped
    running = Running(idle)
    wakeups = ioloop_wakeups_in(running.thread.name, monkeypatch)
    try:
        assert running.consumer.consuming.wait(30), "the consumer never held the queue"
        time.sleep(0.5)
        before = wakeups[0]
        time.sleep(3)
        assert wakeups[0] - before <= 8, f"{wakeups[0] - before} wake-ups in 3 s of silence"
        # ... and a delivery still wakes it at once: with wake_seconds far off, the turn is applied within
        # idle_seconds plus the transaction.
        running.consumer.wake_seconds = 30
        time.sleep(1.2)  # the wait with the old wake_seconds has ended; the next one lasts 30 s
        started = time.monotonic()
        publisher.conversation("919800000301", turns=1)
        assert wait_until_mirrored(inbox, publisher, timeout=5) == publisher.published
        assert time.monotonic() - started < 2
        # Several deliveries that come close together still make one batch (one transaction, one ack).
        applied = running.consumer.batches_applied
        publisher.conversation("919800000302", turns=20)
        assert wait_until_mirrored(inbox, publisher, timeout=10) == publisher.published
        assert running.consumer.batches_applied - applied < 10
    finally:
        running.consumer.wake_seconds = 0.2
        running.halt()


def test_a_standby_keeps_its_connection_and_takes_over_within_a_second(inbox, rabbitmq, queue, publisher,
                                                                       monkeypatch):
    # Session 16: the standby used to open a new connection (TCP, AMQP handshake, three declarations) every
    # second; now it keeps one and asks the queue's consumer count.
    import inbox.services.event_stream_rabbitmq as module

    opened: list[str] = []
    real = pika.BlockingConnection

    def counting(parameters):
        opened.append(threading.current_thread().name)
        return real(parameters)

    monkeypatch.setattr(module.pika, "BlockingConnection", counting)
    active = Running(consumer(inbox, rabbitmq, queue))
    assert active.consumer.consuming.wait(30), "the first consumer never held the queue"
    standby = Running(consumer(inbox, rabbitmq, queue))  # retry_seconds 0.2: 12 tries in the 2.5 s below
    try:
        time.sleep(2.5)
        assert not standby.consumer.consuming.is_set()
        assert opened.count(standby.thread.name) == 1, opened
        publisher.conversation("919800000401", turns=3)
        wait_until_mirrored(inbox, publisher)
        active.halt()  # its connection closes: the queue has no consumer
        stopped = time.monotonic()
        assert standby.consumer.consuming.wait(5), "the standby never took over"
        assert time.monotonic() - stopped < 1.0
        publisher.conversation("919800000402", turns=3)
        assert wait_until_mirrored(inbox, publisher) == publisher.published
        assert opened.count(standby.thread.name) == 1
    finally:
        active.halt()
        standby.halt()
