"""The event stream from RabbitMQ: Rasa's `pika` event broker publishes every event to a durable queue and
this consumer mirrors it into the inbox with the same `RasaEventApplier` as the SQL broker.

- An event is acknowledged only after the inbox transaction that applied it has committed: a consumer that
  dies mid-batch leaves its deliveries unacknowledged and RabbitMQ hands them out again.
- Redelivery is harmless: RabbitMQ messages have no id, so each event's id is derived from its bytes
  (`delivery_id`) and stored where the SQL broker's row id goes (`rasa_event_id`, unique); an event applied
  before is skipped. Negative, so it never meets a SQL broker id.
- One consumer at a time: `basic.consume(exclusive=True)` on Rasa's queue. A second `consume` process is
  refused by the broker and stands by, retrying every second; when the active one dies, its unacknowledged
  deliveries go back to the head of the queue and the standby takes over. One reader of one queue keeps
  every conversation's events in the order Rasa published them. (RabbitMQ's single-active-consumer queue
  argument would do the same without the retry, but Rasa 3.6 declares its queues itself without arguments,
  and RabbitMQ refuses a declaration whose arguments differ from the queue's.)
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
    ):
        super().__init__(inbox, source=None, batch_size=batch_size)
        self.parameters = pika.URLParameters(url)
        # A consumer that hangs (rather than dies) loses the queue after two missed heartbeats.
        self.parameters.heartbeat = 10
        self.queue = queue
        self.idle_seconds = idle_seconds  # how long a partial batch waits for more before it is applied
        self.retry_seconds = retry_seconds
        self.batches_applied = 0
        self.consuming = threading.Event()  # set while this process holds the queue

    def describe(self) -> str:
        return f"amqp://{self.parameters.host}:{self.parameters.port} queue {self.queue}"

    def run_forever(self, stop: threading.Event) -> None:
        logger.info("event-stream consumer started (%s)", self.describe())
        reported = None  # what was last logged, so a standby or an outage is reported once, not every second
        while not stop.is_set():
            try:
                self._consume(stop)
                reported = None
            except ChannelClosedByBroker as error:
                if error.reply_code != ACCESS_REFUSED:
                    logger.warning("RabbitMQ closed the channel (%s); reconnecting", error.reply_text)
                elif reported != "standby":
                    logger.info("another consumer holds %s; standing by", self.queue)
                reported = "standby" if error.reply_code == ACCESS_REFUSED else None
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
            channel.basic_qos(prefetch_count=self.batch_size)
            pending: list[tuple[int, bytes]] = []
            deliveries = channel.consume(self.queue, exclusive=True, inactivity_timeout=self.idle_seconds)
            for method, _properties, body in deliveries:
                if not self.consuming.is_set():
                    logger.info("consuming %s", self.queue)
                    self.consuming.set()
                if method is not None:
                    pending.append((method.delivery_tag, body))
                if pending and (method is None or len(pending) >= self.batch_size):
                    self._apply_batch(channel, pending)
                    pending = []
                if stop.is_set():
                    break
        finally:
            self.consuming.clear()
            if connection.is_open:
                connection.close()  # unacknowledged deliveries go back to the queue

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
