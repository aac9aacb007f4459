"""Rasa's RabbitMQ event broker, keeping every event until RabbitMQ confirms it (the cluster profile's broker).

    event_broker:
      type: connectors.pika_broker.RetryingPikaEventBroker   # instead of `type: pika`; the same other keys

Why. Rasa 3.6.21's `PikaEventBroker` (rasa/core/brokers/pika.py) publishes each event in a task of its own. An
event whose publish raises (RabbitMQ down or restarting: the channel is closed and the publish fails at once)
goes into `_unpublished_events`, which is published again only from the connection's reconnect callback. If
that second try fails as well (RabbitMQ still starting, the channel closing again) the event goes back into the
list and waits for the *next* reconnect, which may never come: held in memory until the process ends, then
lost, and nothing says so. Events published meanwhile go out ahead of it, so a conversation's stream is out
of order. And an event RabbitMQ accepts but cannot route (no queue bound to `rasa-exchange` yet: after a
restart the exchange, which Rasa declares non-durable, and the queue's binding are declared again one after
the other) comes back as a `basic.return`, which Rasa counts as published: lost without a line in the log.
Publisher confirms are on (aio-pika's default channel), but Rasa does not look at what the confirmation says.

What this broker does instead. `publish` serialises the event at once (the same bytes Rasa would send, so the
inbox's duplicate check, a hash of the bytes, sees a re-sent event as the same one) and appends it to its
conversation's queue in memory; it never publishes directly. One task publishes the oldest unconfirmed events
of each conversation (up to `in_flight` conversations at a time, up to `per_conversation` events of each while
all is well, one after a failure until a round succeeds again) on Rasa's one channel, so they leave in order,
and forgets an event only once RabbitMQ has acknowledged it (`basic.ack`: routed to the queue and, the
messages being persistent, written to disk). An event that fails, is refused (`basic.nack`), is returned
unroutable, gets no confirmation within `publish_timeout_seconds` or is still in flight when the connection or
the channel closes stays at the head of its conversation and is tried again after each reconnect and channel
reopening and every `retry_interval_seconds` while anything is kept; a conversation's later events wait
behind it. So per conversation the events reach RabbitMQ in Rasa's order, each at least once: an event whose
confirmation was lost with the connection is sent again, and the inbox's consumer skips the copy (it stores
the hash of the bytes, `rasa_event_id`, as unique), so the inbox applies each event once. (One exception to
the order, logged at WARNING: while several events of a conversation are in flight, RabbitMQ refusing one and
taking the next, which a broker-internal error or a queue binding appearing between the two would do.)

Bounded. What is kept is limited to `max_kept_megabytes` (default 64 MB, bodies plus bookkeeping). Past it, new
events are dropped, never silently: an ERROR line at the first one and a count of every one dropped (Rasa's
tracker store still has them; the inbox will not). On shutdown (`close`) the broker waits up to
`close_timeout_seconds` for RabbitMQ to confirm what is kept, then says at ERROR how many events die with the
process.

Filtered. With the `publish_only` option (connectors/event_filter.py; the cluster profile sets it to the events
the inbox applies) an event it does not let through is not serialised, kept or published at all: it never counts
as kept, dropped or failed (`filtered_out` counts it), and the published ones keep their order per conversation.
Without the option every event is published, as Rasa does. RASA_PIKA_RETRY=0 applies the same filter to Rasa's
own broker (`FilteringPikaEventBroker`). Either way a user event is published without the parse-data keys only its
turn needs (`event_filter.lean_event`: the NLU's `text_embedding`); only Rasa's own broker without `publish_only`
publishes it whole.

Log lines name no customer: event kinds, counts and the masked sender of connectors/privacy.py (as every
connector line at INFO and above), never the event's text or metadata. Rasa's own per-event
"pika.events.publish.failed" ERROR line (which carries the event; connectors/broker_logs.py masks it) is not
logged at all by this broker.

Switch and version. RASA_PIKA_RETRY=0 makes the same endpoint configuration load Rasa's own PikaEventBroker, as
does any Rasa version other than the one this was tested on (rasa_speedups.TESTED_RASA_VERSION: it relies on
the broker's internals, `connect`, `_exchange`, `_connection`, the reconnect callback); one line at start-up
says which broker runs.
Tests: tests/connector/test_pika_broker.py, against a real RabbitMQ.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import Counter, OrderedDict, deque
from typing import Any, Deque, Dict, List, Optional, Text

import aio_pika
from pamqp.commands import Basic
from rasa.core.brokers.pika import PikaEventBroker
from rasa.shared.utils.io import DEFAULT_ENCODING

from connectors import rasa_speedups
from connectors.event_filter import OPTION as FILTER_OPTION
from connectors.event_filter import EventFilter, event_filter, lean_event
from connectors.privacy import mask_user_id

logger = logging.getLogger(__name__)

# On any Rasa but rasa_speedups.TESTED_RASA_VERSION, Rasa's own broker runs. Upgrading Rasa: run
# tests/connector/test_pika_broker.py on the new version too.
SWITCH_ENV = "RASA_PIKA_RETRY"
# Bookkeeping per kept event on top of its body (object, deque slot, headers): a generous estimate.
EVENT_OVERHEAD_BYTES = 256


def off_reason(environ: Optional[Dict[str, str]] = None, rasa_version: Optional[str] = None) -> Optional[str]:
    """Why Rasa's own PikaEventBroker should run instead, or None."""
    return rasa_speedups.off_reason(SWITCH_ENV, environ, rasa_version)


class KeptEvent:
    __slots__ = ("body", "headers", "kind", "size")

    def __init__(self, body: bytes, headers: Optional[Dict[Text, Text]], kind: str) -> None:
        self.body = body
        self.headers = headers
        self.kind = kind
        self.size = len(body) + EVENT_OVERHEAD_BYTES


def _who(sender: Any) -> str:
    """A conversation as connector log lines name it: the masked sender id."""
    return mask_user_id(None if sender is None else str(sender))


def _kinds(counter: Counter) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in counter.most_common()) or "none"


def _log_filter(events: Optional[EventFilter]) -> None:
    if events is not None:
        logger.info(f"RabbitMQ event stream: publishing only {events.describe()} events ({FILTER_OPTION}); "
                    f"the others are not published")


class FilteringPikaEventBroker(PikaEventBroker):
    """Rasa's own PikaEventBroker (RASA_PIKA_RETRY=0) publishing only what `publish_only` lets through."""

    def __init__(self, *args: Any, event_filter: EventFilter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.event_filter = event_filter
        self.filtered_out = 0

    def publish(self, event: Dict[Text, Any], headers: Optional[Dict[Text, Text]] = None) -> None:
        if not self.event_filter.lets_through(event):
            self.filtered_out += 1
            return
        super().publish(lean_event(event), headers)


class RetryingPikaEventBroker(PikaEventBroker):
    """PikaEventBroker whose events are kept, in order per conversation, until RabbitMQ confirms them."""

    def __init__(
        self,
        host: Text,
        username: Text,
        password: Text,
        retry_interval_seconds: float = 2.0,
        max_kept_megabytes: float = 64,
        publish_timeout_seconds: float = 30.0,
        close_timeout_seconds: float = 10.0,
        in_flight: int = 100,
        per_conversation: int = 16,
        publish_only: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(host, username, password, **kwargs)
        # None: every event is published. Checked first: a mistake in it stops the start-up with a ValueError.
        self.event_filter: Optional[EventFilter] = event_filter(publish_only)
        self.retry_interval = float(retry_interval_seconds)
        self.max_kept_bytes = int(float(max_kept_megabytes) * 1024 * 1024)
        self.publish_timeout = float(publish_timeout_seconds)
        self.close_timeout = float(close_timeout_seconds)
        self.in_flight = max(1, int(in_flight))
        self.per_conversation = max(1, int(per_conversation))
        # sender_id -> its unconfirmed events, oldest first; senders in the order they are served.
        self._pending: "OrderedDict[Any, Deque[KeptEvent]]" = OrderedDict()
        self.kept_events = 0
        self.kept_bytes = 0
        self.confirmed = 0  # events RabbitMQ acknowledged
        self.failed_attempts = 0  # publish attempts that did not end in an acknowledgement
        self.dropped = 0  # events refused because the limit was reached (each one logged or counted at ERROR)
        self.filtered_out = 0  # events `publish_only` does not let through: never kept, never published
        self._work = asyncio.Event()  # something was kept
        self._retry_now = asyncio.Event()  # reconnected / channel reopened: try again before the timer
        self._lost = asyncio.Event()  # the connection or the channel closed: give up the publishes in flight
        self._idle = asyncio.Event()  # nothing is kept
        self._idle.set()
        self._pump_task: Optional[asyncio.Task] = None
        self._abandoned: set = set()  # publishes still running on a connection that closed under them
        self._closing = False
        self._failing_since: Optional[float] = None
        self._failed_rounds = 0
        self._dropped_unreported = 0
        self._dropped_kinds: Counter = Counter()
        self._dropped_senders: set = set()

    @classmethod
    async def from_endpoint_config(cls, broker_config: Any, event_loop: Optional[asyncio.AbstractEventLoop] = None
                                   ) -> Optional[PikaEventBroker]:
        if broker_config is None:
            return None
        reason = off_reason()
        if reason is not None:
            logger.warning(f"RabbitMQ event broker: Rasa's own PikaEventBroker ({reason}): an event that fails to "
                           f"publish waits for the next reconnect and may be lost")
            kwargs = dict(broker_config.kwargs)
            events = event_filter(kwargs.pop(FILTER_OPTION, None))
            if events is None:
                return await PikaEventBroker.from_endpoint_config(broker_config, event_loop)
            rasas = FilteringPikaEventBroker(broker_config.url, **kwargs, event_filter=events, event_loop=event_loop)
            await rasas.connect()
            _log_filter(events)
            return rasas
        try:
            broker = cls(broker_config.url, **broker_config.kwargs, event_loop=event_loop)
        except (AttributeError, ImportError) as error:
            # Rasa answers these two from a custom broker with "no event broker at all" and a warning: fail instead.
            raise RuntimeError(f"RabbitMQ event broker could not be created: {error!r}") from error
        broker.widen_the_write_buffer()
        await broker.connect()
        logger.info(f"RabbitMQ event broker: every event kept until RabbitMQ confirms it (retried every "
                    f"{broker.retry_interval:g} s, at most {broker.max_kept_bytes / 1048576:g} MB kept; "
                    f"{SWITCH_ENV}=0 runs Rasa's own broker)")
        _log_filter(broker.event_filter)
        return broker

    # ----- Rasa's hooks --------------------------------------------------------------------------------------

    def publish(self, event: Dict[Text, Any], headers: Optional[Dict[Text, Text]] = None) -> None:
        """Keeps the event (as the bytes that will be sent) behind its conversation's earlier ones; an event
        `publish_only` does not let through is forgotten here, before anything else."""
        if self.event_filter is not None and not self.event_filter.lets_through(event):
            self.filtered_out += 1
            return
        body = json.dumps(lean_event(event)).encode(DEFAULT_ENCODING)  # what Rasa's `_message` sends, lean
        kept = KeptEvent(body, headers, str(event.get("event")))
        sender = event.get("sender_id")
        if self.kept_bytes + kept.size > self.max_kept_bytes:
            self._drop(kept, sender)
            return
        if self._closing and (self._pump_task is None or self._pump_task.done()):
            self._drop(kept, sender, why="the broker is closed")
            return
        queue = self._pending.get(sender)
        if queue is None:
            queue = self._pending[sender] = deque()
        queue.append(kept)
        self.kept_events += 1
        self.kept_bytes += kept.size
        self._idle.clear()
        self._work.set()
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = self._loop.create_task(self._pump())

    def _publish_unpublished_messages(self, *_: Any, **__: Any) -> None:
        """The connection's reconnect callback (Rasa's `connect` registers it) and the channel's reopen callback
        (`_set_up_exchange`): try again now rather than at the next tick of the timer."""
        self._retry_now.set()

    def _connection_lost(self, *_: Any, **__: Any) -> None:
        self._lost.set()

    async def _set_up_exchange(self, channel: aio_pika.RobustChannel) -> aio_pika.RobustExchange:
        channel.reopen_callbacks.add(self._publish_unpublished_messages)
        # Publishes in flight when the connection closes can wait on the dead connection until their timeout
        # (seen in the cluster chaos run: 30 s) while the robust connection is already back: stop waiting then.
        channel.close_callbacks.add(self._connection_lost)
        if self._connection is not None:
            self._connection.close_callbacks.add(self._connection_lost)
        return await super()._set_up_exchange(channel)

    async def close(self) -> None:
        """Waits (up to close_timeout_seconds, while connected) for what is kept to be confirmed, then closes."""
        self._closing = True
        if self.kept_events and self._connected() and self._pump_task is not None and not self._pump_task.done():
            try:
                await asyncio.wait_for(self._idle.wait(), self.close_timeout)
            except asyncio.TimeoutError:
                pass
        for task in [self._pump_task, *self._abandoned]:
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self.kept_events:
            logger.error(f"RabbitMQ event stream: {self.kept_events} event(s) of {len(self._pending)} conversation(s) "
                         f"were never confirmed by RabbitMQ and are lost with this process ({self._kept_summary()}); "
                         f"Rasa's tracker store has them, the inbox does not")
        self._report_drops()
        await super().close()

    # ----- the publishing task -------------------------------------------------------------------------------

    def _connected(self) -> bool:
        connection = self._connection
        return (connection is not None and self._exchange is not None and not connection.is_closed
                and connection.connected.is_set() and not getattr(connection, "reconnecting", False))

    async def _pump(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._work.clear()
                if self._closing:
                    return
                await self._work.wait()
                continue
            self._retry_now.clear()  # a reconnect from here on triggers the next try at once
            try:
                problem = await self._publish_round()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a bug here must not stop the stream: log it and retry
                logger.exception("RabbitMQ event stream: unexpected error while publishing")
                problem = f"unexpected {type(error).__name__}"
            if problem is None:
                self._note_progress()
                continue
            self._note_failure(problem)
            try:
                await asyncio.wait_for(self._retry_now.wait(), self.retry_interval)
            except asyncio.TimeoutError:
                pass

    async def _publish_round(self) -> Optional[str]:
        """Publishes the oldest kept events of up to `in_flight` conversations: up to `per_conversation` of each
        while all is well, only the oldest one after a failure (until a round succeeds). None if RabbitMQ confirmed
        them all, else what went wrong; the unconfirmed ones stay where they are."""
        self._lost.clear()
        if not self._connected():
            return "not connected to RabbitMQ"
        exchange = self._exchange
        window = 1 if self._failing_since is not None else self.per_conversation
        batches = [(sender, list(itertools.islice(queue, window)))
                   for sender, queue in itertools.islice(self._pending.items(), self.in_flight)]
        # One channel: the publishes leave in this order, so each conversation's events reach RabbitMQ in order.
        results = iter(await self._publish_all([kept for _sender, batch in batches for kept in batch], exchange))
        problem = None
        for sender, batch in batches:
            queue = self._pending[sender]
            refused_earlier = False
            for kept in batch:
                result = next(results)
                if result is not None:
                    problem = problem or result
                    self.failed_attempts += 1
                    refused_earlier = True
                    continue
                if refused_earlier:
                    # Only with several in flight (all was well), if RabbitMQ refuses or returns one event and takes
                    # the next: that one is delivered, the refused one follows it.
                    queue.remove(kept)
                    logger.warning(f"RabbitMQ event stream: RabbitMQ took a '{kept.kind}' event of "
                                   f"{_who(sender)} but not an earlier one, "
                                   f"which follows it: that conversation's events reach the inbox out of order")
                else:
                    queue.popleft()
                self.kept_events -= 1
                self.kept_bytes -= kept.size
                self.confirmed += 1
            if queue:
                self._pending.move_to_end(sender)  # the next round serves the others first
            else:
                del self._pending[sender]
        return problem

    async def _publish_all(self, events: List[KeptEvent], exchange: Any) -> List[Optional[str]]:
        """Each event's outcome (None: confirmed), in order; the ones still in flight when the connection or the
        channel closes count as failed at once."""
        tasks = [self._loop.create_task(self._publish_one(exchange, kept)) for kept in events]
        lost = self._loop.create_task(self._lost.wait())
        try:
            waiting = set(tasks)
            while waiting and not lost.done():
                done, waiting = await asyncio.wait(waiting | {lost}, return_when=asyncio.FIRST_COMPLETED)
                waiting.discard(lost)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        finally:
            lost.cancel()
        # Not cancelled: they end by themselves (aiormq fails them, or their timeout), and reading their outcome
        # then keeps aiormq's failed futures from being logged as "never retrieved". On a closed channel they can
        # deliver nothing any more; their events are tried again on the new one.
        for task in tasks:
            if not task.done():
                self._abandoned.add(task)
                task.add_done_callback(self._abandoned.discard)
        return [task.result() if task.done() else "the connection to RabbitMQ closed" for task in tasks]

    async def _publish_one(self, exchange: Any, kept: KeptEvent) -> Optional[str]:
        message = aio_pika.Message(kept.body, headers=kept.headers, app_id=self.rasa_environment,
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            # Our own timeout, not aio-pika's `timeout=`: aiormq 6.4 checks that deadline again when it leaves the
            # channel's lock and raises before releasing it once the deadline has passed, so one late publish
            # left the lock held and every later publish on the channel waited for it (under load, the cluster
            # benchmark's stream stalled until a reconnect). Cancelling from outside releases the lock.
            result = await asyncio.wait_for(self._send(exchange, message), self.publish_timeout)
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            return f"no confirmation within {self.publish_timeout:g} s"
        except Exception as error:
            # aiormq's channel and connection errors name the channel and the AMQP reason, never a message body.
            return f"{type(error).__name__}: {str(error)[:200]}"
        if isinstance(result, Basic.Ack):
            return None
        if isinstance(result, Basic.Nack):
            return "refused by RabbitMQ (basic.nack)"
        return "returned by RabbitMQ: no queue bound to the exchange"

    def widen_the_write_buffer(self) -> None:
        """aiormq queues at most 10 frames for its connection's writer (Connection.FRAME_BUFFER_SIZE), which
        empties the queue once per turn of the event loop; past 10, each publish waits for a turn while it holds
        the channel's lock, and the next publish waits another turn for the lock. On a busy Rasa loop that is about
        one event per turn. A buffer as large as one round (`in_flight` x `per_conversation` publishes) lets a
        round leave in a turn or two. Read when aiormq creates a connection, so it holds for every reconnect;
        bounded by the round, and what is kept is bounded by `max_kept_megabytes`."""
        import aiormq

        wanted = self.in_flight * self.per_conversation + 16
        if aiormq.Connection.FRAME_BUFFER_SIZE < wanted:
            aiormq.Connection.FRAME_BUFFER_SIZE = wanted

    @staticmethod
    async def _send(exchange: Any, message: aio_pika.Message) -> Any:
        """aio-pika's `Exchange.publish` (the same frames, `mandatory` so an unroutable event comes back), except
        that the publish does not wait inside the channel's lock for its frames to be written. aiormq's default does,
        and the writer needs a turn of the event loop: on a Rasa instance whose loop is busy parsing messages a turn
        takes tens of milliseconds, so publishes went out one per turn, ~50 events a second, fewer than Rasa makes
        at 20 messages a second (seen in the session-12 capacity benchmark: thousands of events kept, rounds without
        a confirmation for 30 s, events lost at shutdown). Now a round's publishes are queued for the writer in one
        turn, in order; each still waits for RabbitMQ's confirmation (basic.ack) outside the lock."""
        return await exchange.channel.basic_publish(
            message.body, exchange=exchange.name, routing_key="", properties=message.properties,
            mandatory=True, wait=False,
        )

    # ----- log lines -----------------------------------------------------------------------------------------

    def _kept_summary(self) -> str:
        kinds: Counter = Counter(kept.kind for queue in self._pending.values() for kept in queue)
        return f"{self.kept_bytes / 1048576:.1f} MB; {_kinds(kinds)}"

    def _note_failure(self, problem: str) -> None:
        self._failed_rounds += 1
        every = max(1, round(60 / self.retry_interval)) if self.retry_interval > 0 else 60
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning(f"RabbitMQ event stream: {problem}; keeping {self.kept_events} event(s) of "
                           f"{len(self._pending)} conversation(s) in memory ({self._kept_summary()}) until RabbitMQ "
                           f"confirms them, retrying every {self.retry_interval:g} s and after each reconnect")
        elif self._failed_rounds % every == 0:
            logger.warning(f"RabbitMQ event stream: still {problem} after "
                           f"{time.monotonic() - self._failing_since:.0f} s; keeping {self.kept_events} event(s) of "
                           f"{len(self._pending)} conversation(s) ({self._kept_summary()})")

    def _note_progress(self) -> None:
        if self._failing_since is not None:
            logger.info(f"RabbitMQ event stream: RabbitMQ confirms events again after "
                        f"{time.monotonic() - self._failing_since:.0f} s; {self.kept_events} event(s) still to publish")
            self._failing_since = None
            self._failed_rounds = 0
        self._report_drops()

    def _drop(self, kept: KeptEvent, sender: Any, why: Optional[str] = None) -> None:
        self.dropped += 1
        self._dropped_unreported += 1
        self._dropped_kinds[kept.kind] += 1
        if len(self._dropped_senders) < 1000:
            self._dropped_senders.add(sender)
        if self._dropped_unreported == 1:
            why = why or (f"{self.kept_bytes / 1048576:.1f} MB of events are waiting for RabbitMQ, the limit "
                          f"(max_kept_megabytes)")
            logger.error(f"RabbitMQ event stream: DROPPING events: {why}. First dropped: a '{kept.kind}' event of "
                         f"{_who(sender)}. The inbox will miss them (Rasa's "
                         f"tracker store keeps them); every drop is counted and reported")
        elif self._dropped_unreported % 1000 == 0:
            self._report_drops()

    def _report_drops(self) -> None:
        if not self._dropped_unreported:
            return
        senders = sorted(_who(s) for s in self._dropped_senders)
        shown = ", ".join(senders[:20]) + (f" and {len(senders) - 20} more" if len(senders) > 20 else "")
        logger.error(f"RabbitMQ event stream: {self._dropped_unreported} event(s) dropped "
                     f"({_kinds(self._dropped_kinds)}) of {len(senders)} conversation(s): {shown}; "
                     f"{self.dropped} dropped since start")
        self._dropped_unreported = 0
        self._dropped_kinds.clear()
        self._dropped_senders.clear()
