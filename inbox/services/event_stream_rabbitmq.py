"""The event stream from RabbitMQ: Rasa's `pika` event broker publishes every event to a durable queue and
this consumer mirrors it into the inbox with the same `RasaEventApplier` as the SQL broker.

- An event is acknowledged only after the inbox transaction that applied it has committed: a consumer that
  dies mid-batch leaves its deliveries unacknowledged and RabbitMQ hands them out again.
- Redelivery is harmless: RabbitMQ messages have no id, so each event's id is derived from its bytes
  (`delivery_id`) and stored where the SQL broker's row id goes (`rasa_event_id`, unique); an event applied
  before is skipped. Negative, so it never meets a SQL broker id.
- One consumer at a time: `basic.consume(exclusive=True)` on Rasa's queue. A second `consume` process is
  refused by the broker and stands by on its open connection, asking every second how many consumers the
  queue has (a passive `queue.declare`, one round trip) and for the queue once it has none; when the active
  one dies, its unacknowledged deliveries go back to the head of the queue and the standby takes over. One
  reader of one queue keeps every conversation's events in the order Rasa published them. (RabbitMQ's
  single-active-consumer queue argument would do the same without the asking, but Rasa 3.6 declares its
  queues itself without arguments, and RabbitMQ refuses a declaration whose arguments differ from the
  queue's.)
- Idle costs next to nothing: the active consumer blocks on the connection until a delivery arrives (waking
  once a second to see whether it should stop); only a started batch waits `idle_seconds` for more.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING

import pika
from pika.exceptions import AMQPError, ChannelClosedByBroker

from inbox.services.event_stream import BrokerEvent, EventStreamConsumer, SqlBrokerSource

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)
# pika logs every failed connection attempt with a traceback; the consumer says once that it is retrying.
logging.getLogger("pika").setLevel(logging.CRITICAL)

# Rasa 3.6 PikaEventBroker's exchange (rasa.core.brokers.pika.RABBITMQ_EXCHANGE): fanout, not durable.
RASA_EXCHANGE = "rasa-exchange"
ACCESS_REFUSED = 403  # basic.consume(exclusive) on a queue another consumer holds


def delivery_id(body: bytes) -> int:
    """A stable id of one published event: Rasa republishes the same JSON bytes, so a redelivery or a
    republish after a broker outage gets the same id. Negative 63-bit, apart from SQL broker ids."""
    return -(int.from_bytes(hashlib.sha256(body).digest()[:8], "big") >> 1) - 1


def broker_event(body: bytes) -> BrokerEvent:
    try:
        data = json.loads(body)
    except ValueError:
        logger.error("RabbitMQ delivery is not JSON; skipped")
        data = {}
    data = data if isinstance(data, dict) else {}
    sender_id = data.get("sender_id")
    return BrokerEvent(id=delivery_id(body), sender_id=str(sender_id) if sender_id else None, data=data)


class RabbitMQConsumer(EventStreamConsumer):
    NAME = "rasa_pika_broker"

    def __init__(
        self,
        inbox: Inbox,
        url: str,
        queue: str,
        *,
        batch_size: int = 200,
        idle_seconds: float = 0.05,
        retry_seconds: float = 1.0,
        wake_seconds: float = 1.0,
    ):
        super().__init__(inbox, source=None, batch_size=batch_size)
        self.parameters = pika.URLParameters(url)
        # A consumer that hangs (rather than dies) loses the queue after two missed heartbeats.
        self.parameters.heartbeat = 10
        self.queue = queue
        self.idle_seconds = idle_seconds  # how long a partial batch waits for more before it is applied
        self.retry_seconds = retry_seconds  # a standby's question, or a reconnect, this often
        self.wake_seconds = wake_seconds  # with nothing pending, how often the active consumer looks at `stop`
        self.batches_applied = 0
        self.standing_by = False  # logged once per stand-by, not every second
        self.consuming = threading.Event()  # set while this process holds the queue

    def describe(self) -> str:
        return f"amqp://{self.parameters.host}:{self.parameters.port} queue {self.queue}"

    def run_forever(self, stop: threading.Event) -> None:
        logger.info("event-stream consumer started (%s)", self.describe())
        reported = None  # what was last logged, so an outage is reported once, not every second
        while not stop.is_set():
            try:
                self._consume(stop)
                reported = None
            except ChannelClosedByBroker as error:
                if error.reply_code != ACCESS_REFUSED:
                    logger.warning("RabbitMQ closed the channel (%s); reconnecting", error.reply_text)
                else:
                    self._report_standby()  # another process took the queue just before this one
                reported = None
            except AMQPError as error:
                if reported != "down":
                    logger.warning("RabbitMQ unavailable (%r); retrying every %s s", error, self.retry_seconds)
                reported = "down"
            except Exception:
                # e.g. the inbox database is down: the batch was not acknowledged and comes back
                logger.exception("event-stream consumer failed; retrying")
                reported = None
            stop.wait(self.retry_seconds)

    def declare(self, channel) -> None:
        """The exchange, queue and binding exactly as Rasa declares them, so either may start first."""
        channel.exchange_declare(RASA_EXCHANGE, exchange_type="fanout")
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, RASA_EXCHANGE)

    def _consume(self, stop: threading.Event) -> None:
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            self.declare(channel)
            pending: list[tuple[int, bytes]] = []  # appended to by `deliver`, inside process_data_events only

            def deliver(_channel, method, _properties, body: bytes) -> None:
                pending.append((method.delivery_tag, body))

            if not self._hold_the_queue(connection, channel, deliver, stop):
                return
            logger.info("consuming %s", self.queue)
            self.standing_by = False
            self.consuming.set()
            while not stop.is_set():
                if not pending:
                    # Blocks until a delivery arrives (or wake_seconds pass, to look at `stop`); heartbeats
                    # are answered meanwhile. Nothing wakes it every idle_seconds while nothing comes.
                    connection.process_data_events(time_limit=self.wake_seconds)
                    continue
                waiting = len(pending)
                if waiting < self.batch_size:
                    # Returns at the next delivery, or after idle_seconds without one.
                    connection.process_data_events(time_limit=self.idle_seconds)
                    if waiting < len(pending) < self.batch_size:
                        continue  # more came: wait for the next one as long again
                batch = pending[:]
                del pending[: len(batch)]
                self._apply_batch(channel, batch)
        finally:
            self.consuming.clear()
            if connection.is_open:
                connection.close()  # unacknowledged deliveries go back to the queue

    def _hold_the_queue(self, connection, channel, deliver, stop: threading.Event) -> bool:
        """`basic.consume(exclusive)` once the queue has no consumer. Until then this process stands by on its
        open connection (heartbeats answered), asking every `retry_seconds` with a passive `queue.declare`:
        one round trip, not a new connection. False if told to stop meanwhile."""
        while not stop.is_set():
            if channel.queue_declare(self.queue, passive=True).method.consumer_count == 0:
                channel.basic_qos(prefetch_count=self.batch_size)
                # Refused (ACCESS_REFUSED) if another process took the queue since: run_forever retries.
                channel.basic_consume(self.queue, deliver, exclusive=True)
                return True
            self._report_standby()
            connection.sleep(self.retry_seconds)
        return False

    def _report_standby(self) -> None:
        if not self.standing_by:
            logger.info("another consumer holds %s; standing by", self.queue)
            self.standing_by = True

    def _apply_batch(self, channel, deliveries: list[tuple[int, bytes]]) -> None:
        applier = self.apply_in_transaction([broker_event(body) for _tag, body in deliveries])
        self._acknowledge(channel, deliveries[-1][0])  # committed: only now may RabbitMQ forget them
        self.batches_applied += 1
        for message in applier.slack_messages:
            self.inbox.slack.notify(message)

    def _acknowledge(self, channel, last_tag: int) -> None:
        channel.basic_ack(last_tag, multiple=True)


def event_stream_consumer(inbox: Inbox) -> EventStreamConsumer:
    """The consumer of the configured broker (INBOX_EVENT_BROKER: sql, the default, or rabbitmq)."""
    settings = inbox.settings
    if settings.inbox_event_broker == "rabbitmq":
        if settings.rabbitmq_url is None:
            raise ValueError("INBOX_EVENT_BROKER=rabbitmq needs RABBITMQ_URL (amqp://user:password@host:port/vhost)")
        return RabbitMQConsumer(inbox, settings.rabbitmq_url.get_secret_value(), settings.rabbitmq_queue)
    return EventStreamConsumer(inbox, SqlBrokerSource(settings.resolved_rasa_events_db_url))
