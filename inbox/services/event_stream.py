"""Mirrors every Rasa conversation from the event broker into the inbox.

`SqlBrokerSource` reads Rasa's SQL event broker table; `RasaEventApplier` turns one Rasa event
into inbox changes; `EventStreamConsumer` moves its stored position forward in the same
transaction as the changes it applied, so it resumes exactly where it stopped after downtime.
Swapping the broker (RabbitMQ/Kafka) means another source with the same `fetch_after` shape.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from inbox.models import ConsumerPosition, Conversation, Handoff, KbMatch, Message
from inbox.schemas import HandoffRequest
from inbox.services import csat, snooze
from inbox.services.conversation_store import ConversationStore, insert_ignoring_duplicates
from inbox.services.handoff_contract import HANDOFF_SLOTS, PRIORITIES, REASONS
from inbox.services.handoffs import HandoffIntake
from inbox.services.media import DOWNLOADED_KINDS, record_inbound
from inbox.services.message_merge import MATCH_WINDOW, BatchMessages, MessageMerger
from inbox.services.order_numbers import ORDER_NUMBER_ENTITY, canonical_order_number, order_numbers_in_user_event
from inbox.services.privacy import masked
from inbox.services.read_receipts import customer_message_id, remember_customer_message_id

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)


@dataclass
class BrokerEvent:
    id: int
    sender_id: str | None
    data: dict


class SqlBrokerSource:
    """Rasa 3.6's SQLEventBroker: table `events` (id integer PK, sender_id varchar, data text = event JSON)."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        self._sqlite_path: Path | None = None
        if parsed.get_backend_name() == "sqlite":
            self._sqlite_path = Path(parsed.database or "")
            # Read-only: never create or change the file Rasa owns.
            url = f"sqlite:///file:{self._sqlite_path}?mode=ro&uri=true"
        self.engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
        self.table = Table(
            "events",
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("sender_id", String(255)),
            Column("data", Text),
        )
        self._waiting_logged = False

    def fetch_after(self, position: int, limit: int) -> list[BrokerEvent]:
        if self._sqlite_path is not None and not self._sqlite_path.exists():
            self._log_waiting(f"{self._sqlite_path} does not exist yet")
            return []
        query = select(self.table).where(self.table.c.id > position).order_by(self.table.c.id).limit(limit)
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        except (OperationalError, ProgrammingError) as error:
            self._log_waiting(str(error.orig))
            return []
        self._waiting_logged = False
        events = []
        for row in rows:
            try:
                data = json.loads(row.data or "{}")
            except ValueError:
                logger.error("broker event %s is not JSON; skipped", row.id)
                data = {}
            events.append(BrokerEvent(id=row.id, sender_id=row.sender_id, data=data if isinstance(data, dict) else {}))
        return events

    def _log_waiting(self, why: str) -> None:
        if not self._waiting_logged:
            logger.info("Rasa's event broker table is not readable yet (%s); will retry", why)
            self._waiting_logged = True

    def close(self) -> None:
        self.engine.dispose()


def event_timestamp(data: dict) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(data["timestamp"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def event_time(data: dict, fallback: datetime) -> datetime:
    at = event_timestamp(data)
    return fallback if at is None else at


def describe_user_message(data: dict) -> str:
    text = data.get("text")
    if text:
        return text
    kind = ((data.get("metadata") or {}).get("whatsapp") or {}).get("type")
    return f"[{kind} message]" if kind and kind != "text" else "[empty message]"


def describe_bot_message(data: dict) -> str | None:
    if data.get("text"):
        return data["text"]
    payload = data.get("data") or {}
    for kind in ("image", "attachment", "custom", "buttons", "elements"):
        if payload.get(kind):
            return f"[{kind}]"
    return None


class RasaEventApplier:
    """Applies a batch's events in one transaction.

    `careful` (one savepoint per event, every question asked of the database as it comes) is how a batch
    with an event that fails is applied. Otherwise (`prepare` first, `finish` last) the batch's
    conversations are locked and loaded in one go, with what its events need to know about their
    messages, CSAT comments and WhatsApp ids; an event that fails then fails the whole batch, which the
    consumer applies again carefully (services/event_stream.py, `EventStreamConsumer.apply_batch`)."""

    def __init__(self, inbox: Inbox, session: Session, *, careful: bool = True):
        self.inbox = inbox
        self.session = session
        self.careful = careful
        self.store = ConversationStore(session, inbox.assignment_config().vip_customers)
        self.merger = MessageMerger(session, self.store)
        self.intake = HandoffIntake(inbox)
        self.slack_messages: list[str] = []
        # Conversations this transaction has locked, by sender, kept loaded: a second event of the same
        # conversation in the batch neither finds nor locks nor reloads it (no other transaction can change
        # it while the lock is held). A lock taken inside a savepoint that is rolled back is released, so
        # `forget_locks` empties it then.
        self._locked: dict[str, Conversation] = {}
        # Learnt by `prepare` (None or empty when careful, or when the batch did not allow it).
        self._messages: BatchMessages | None = None
        self._new_wamids: set[str] = set()  # the batch's WhatsApp message ids on no message (taken out when given)
        self._comments_known: set[int] = set()  # conversations whose CSAT comment state is known
        self._may_comment: set[int] = set()  # ... and where a customer message may be a comment
        self._kb_rows: list[dict] = []  # inserted together by `finish`

    @staticmethod
    def changes_anything(event: BrokerEvent) -> bool:
        """False for the events `apply` ignores (actions, featurisations, sessions, slots the inbox does
        not keep, bot events without text...): most of a turn's events. `apply` ignores exactly these, and the
        consumer skips them without opening a savepoint. (Pure: it reads only the event.)"""
        data = event.data
        kind = data.get("event")
        if not (event.sender_id or data.get("sender_id")):
            return False
        if kind in ("user", "pause"):
            return True
        if kind == "bot":
            return bool(describe_bot_message(data))
        if kind == "slot":
            name = data.get("name")
            return (
                name == ORDER_NUMBER_ENTITY
                or name in HANDOFF_SLOTS
                or (name == "kb_match" and isinstance(data.get("value"), dict))
            )
        return False

    def forget_locks(self) -> None:
        self._locked.clear()

    def prepare(self, events: list[BrokerEvent]) -> None:
        """Before a batch that is not applied carefully: locks the conversations its events touch that
        exist (one statement, in id order; PostgreSQL), then loads them with their customers and, in the
        same statement, whether any of the batch's event ids or WhatsApp message ids is stored already,
        whether a conversation has transcript copies its events could claim, and whether a rating there
        waits for a comment. Queries after the locks, as `find_by_sender` then a query would."""
        assert not self.careful
        applying = [event for event in events if self.changes_anything(event)]
        senders = list(dict.fromkeys(sender for event in applying if isinstance(sender := _sender(event), str)))
        if not senders:
            return
        with_messages = [event for event in applying if event.data.get("event") in ("user", "bot")]
        times = [event_timestamp(event.data) for event in with_messages]
        if any(at is None for at in times):
            return  # Rasa stamps every event; without a time the window of a message is unknown
        event_ids = [event.id for event in with_messages]
        wamids = list(dict.fromkeys(filter(None, (customer_message_id(event.data) for event in with_messages))))
        user_times = [at for event, at in zip(with_messages, times, strict=True) if event.data.get("event") == "user"]
        self._messages = BatchMessages(set(), {})
        if self.store.is_postgresql:
            locked = self.session.scalars(
                select(Conversation.id)
                .where(Conversation.sender_id.in_(senders))
                .order_by(Conversation.id)
                .with_for_update()
            ).all()
            if not locked:  # all new: get_or_create makes them (see `_hold`)
                self._check_wamids(wamids)
                return
        columns = [Conversation]
        if times:
            window = (min(times) - MATCH_WINDOW, max(times) + MATCH_WINDOW)
            columns.append(select(Message.id).where(Message.rasa_event_id.in_(event_ids)).exists().label("applied"))
            columns.append(
                select(Message.id)
                .where(
                    Message.conversation_id == Conversation.id,
                    Message.rasa_event_id.is_(None),
                    Message.from_transcript.is_(True),
                    Message.created_at >= window[0],
                    Message.created_at <= window[1],
                )
                .exists()
                .label("copies")
            )
        if wamids:
            columns.append(select(Message.id).where(Message.whatsapp_message_id.in_(wamids)).exists().label("wamids"))
        if user_times:
            columns.append(csat.awaiting_comment(min(user_times)).label("comment"))
        rows = self.session.execute(
            select(*columns)
            .where(Conversation.sender_id.in_(senders))
            .order_by(Conversation.id)
            .execution_options(populate_existing=True)
        ).all()
        for row in rows:
            self._locked[row.Conversation.sender_id] = row.Conversation
        if not rows:
            self._check_wamids(wamids)
            return
        held = {row.Conversation.id for row in rows}
        if times and not rows[0].applied:  # else (a redelivery) each of their events asks, as when careful
            self._messages.conversation_ids |= held
            self._messages.copies = self._copies([row.Conversation.id for row in rows if row.copies], window)
        if wamids and not rows[0].wamids:
            self._new_wamids = set(wamids)
        if user_times:
            self._comments_known |= held
            self._may_comment = {row.Conversation.id for row in rows if row.comment}

    def _hold(self, sender_id: str, conversation: Conversation) -> Conversation:
        """Remembers a conversation `store` found and locked, or created. One this transaction created
        has no messages, transcript copies or ratings yet: when not careful its events ask nothing of them."""
        self._locked[sender_id] = conversation
        if self._messages is not None and conversation.id in self.store.created:
            self._messages.conversation_ids.add(conversation.id)
            self._comments_known.add(conversation.id)
        return conversation

    def _check_wamids(self, wamids: list[str]) -> None:
        """`prepare`'s question about WhatsApp ids when no conversation of the batch exists yet."""
        if wamids and not self.session.scalar(
            select(select(Message.id).where(Message.whatsapp_message_id.in_(wamids)).exists())
        ):
            self._new_wamids = set(wamids)

    def _copies(self, conversation_ids: list[int], window: tuple[datetime, datetime]) -> dict[int, list[Message]]:
        copies: dict[int, list[Message]] = {}
        if conversation_ids:
            for message in self.session.scalars(
                select(Message)
                .where(
                    Message.conversation_id.in_(conversation_ids),
                    Message.rasa_event_id.is_(None),
                    Message.from_transcript.is_(True),
                    Message.created_at >= window[0],
                    Message.created_at <= window[1],
                )
                .order_by(Message.id)
            ):
                copies.setdefault(message.conversation_id, []).append(message)
        return copies

    def finish(self) -> None:
        """After the batch's last event: what `apply` left for the end (the knowledge-base lookups)."""
        if self._kb_rows:
            insert_ignoring_duplicates(self.session, KbMatch, self._kb_rows, ["rasa_event_id"])
            self._kb_rows = []

    def apply(self, event: BrokerEvent) -> None:
        if not self.changes_anything(event):  # the one place that says which events are ignored
            return
        data = event.data
        sender_id = _sender(event)
        kind = data.get("event")
        at = event_time(data, self.inbox.clock())
        if kind == "user":
            self._customer_message(event, sender_id, at)
        elif kind == "bot":
            self._bot_message(event, sender_id, at)
        elif kind == "slot":
            self._slot(event, sender_id, at)
        else:
            self._pause(sender_id, at)

    def _conversation_for_user_event(self, sender_id: str, data: dict) -> Conversation:
        whatsapp = (data.get("metadata") or {}).get("whatsapp") or {}
        # The customer is keyed like the conversation (phone digits when known, else the BSUID);
        # the metadata says what this message knew: wa_id may be absent, user_id is the BSUID.
        customer = {
            "channel": data.get("input_channel"),
            "customer_name": _text_or_none(whatsapp.get("profile_name")),
            "phone_number_id": _text_or_none(whatsapp.get("phone_number_id")),
            "wa_id": _text_or_none(whatsapp.get("wa_id")),
            "bsuid": _text_or_none(whatsapp.get("user_id")),
            "username": _text_or_none(whatsapp.get("username")),
        }
        held = None if self.careful else self._locked.get(sender_id)
        if held is not None and self.store.update_held(held, **customer):
            return held  # what get_or_create would do to it, without finding, locking or reloading it
        return self._hold(sender_id, self.store.get_or_create(sender_id, **customer))

    def _find_locked(self, sender_id: str) -> Conversation | None:
        """`store.find_by_sender`, without finding and locking again a row this transaction already holds."""
        conversation = self._locked.get(sender_id)
        if conversation is not None:
            return conversation
        conversation = self.store.find_by_sender(sender_id)
        return self._hold(sender_id, conversation) if conversation is not None else None

    def _conversation(self, sender_id: str) -> Conversation:
        conversation = self._find_locked(sender_id)
        if conversation is None:
            conversation = self._hold(sender_id, self.store.get_or_create(sender_id, channel=None))
        return conversation

    def _customer_message(self, event: BrokerEvent, sender_id: str, at: datetime) -> None:
        conversation = self._conversation_for_user_event(sender_id, event.data)
        stored = self.merger.add_from_event(
            conversation, "customer", describe_user_message(event.data), at, event.id, self._messages
        )
        if stored is None:
            return  # applied before
        # The numbers Rasa's NLU found in it (nlp/entity_patterns.yml).
        self.store.remember_order_numbers(conversation, order_numbers_in_user_event(event.data))
        # Its WhatsApp id: blue ticks and "typing…" (services/read_receipts.py).
        remember_customer_message_id(self.session, stored, event.data, None if self.careful else self._new_wamids)
        # A photo, document, location…: the fetcher downloads it (services/media.py).
        if _media_kind(event.data):
            self.session.flush()  # the media row refers to the message's id
            record_inbound(self.session, stored, event.data, self.inbox.clock())
        # A snoozed conversation comes back; a CSAT answer or comment is recorded.
        snooze.on_customer_message(self.inbox, self.session, conversation, at)
        may_be_comment = conversation.id not in self._comments_known or conversation.id in self._may_comment
        if csat.on_customer_message(self.session, conversation, event.data, at, may_be_comment=may_be_comment):
            self._may_comment.add(conversation.id)  # a tap may open the window for a comment
        if conversation.status == "open" and conversation.waiting_since is None:
            conversation.waiting_since = at  # the agent owes an answer again

    def _bot_message(self, event: BrokerEvent, sender_id: str, at: datetime) -> None:
        text = describe_bot_message(event.data)
        if text:
            self.merger.add_from_event(self._conversation(sender_id), "bot", text, at, event.id, self._messages)

    def _slot(self, event: BrokerEvent, sender_id: str, at: datetime) -> None:
        name, value = event.data.get("name"), event.data.get("value")
        if name == ORDER_NUMBER_ENTITY:  # the order form's answer: a bare "2840" counts once the form asked
            number = canonical_order_number(value)
            if number:
                self.store.remember_order_numbers(self._conversation(sender_id), [number])
        elif name in HANDOFF_SLOTS:
            conversation = self._conversation(sender_id)
            conversation.tracker_state = {**(conversation.tracker_state or {}), name: value}
        elif name == "kb_match" and isinstance(value, dict):
            conversation = self._conversation(sender_id)
            row = {
                "rasa_event_id": event.id,
                "conversation_id": conversation.id,
                "entry_id": str(value["entry_id"]) if value.get("entry_id") is not None else None,
                "score": _as_float(value.get("score")),
                "answered": bool(value.get("answered")),
                "threshold": _as_float(value.get("threshold")),
                "matched_at": at,
            }
            if self.careful:
                insert_ignoring_duplicates(self.session, KbMatch, row, ["rasa_event_id"])
            else:
                self._kb_rows.append(row)  # nothing in the batch reads them back

    def _pause(self, sender_id: str, at: datetime) -> None:
        """A pause after the hand-off slots: create the hand-off unless the HTTP call already did."""
        conversation = self._find_locked(sender_id)
        state = (conversation.tracker_state or {}) if conversation else {}
        handoff_key = state.get("handoff_id")
        if conversation is None or not handoff_key:
            return  # e.g. the re-pause of a new Rasa session: nothing new for the humans
        if self.session.scalar(select(Handoff.id).where(Handoff.handoff_key == str(handoff_key))) is not None:
            return
        details = state.get("handoff_details") if isinstance(state.get("handoff_details"), dict) else {}
        reason = state.get("escalation_reason")
        if reason not in REASONS:
            logger.warning(
                "hand-off %s of %s has escalation_reason %r; recorded as customer_request",
                handoff_key,
                masked(sender_id),
                reason,
            )
            reason = "customer_request"
        customer = conversation.customer
        try:
            request = HandoffRequest.model_validate(
                {
                    "handoff_id": str(handoff_key),
                    "conversation_id": sender_id,
                    "channel": conversation.channel,
                    "customer": {
                        "whatsapp_id": customer.external_id,
                        "name": customer.name,
                        "bsuid": customer.bsuid,
                        "username": customer.username,
                        "phone_number_id": conversation.phone_number_id,
                    },
                    "reason": reason,
                    "topic": state.get("escalation_topic"),
                    "tags": [str(tag) for tag in details.get("tags") or []],
                    "priority": details.get("priority") if details.get("priority") in PRIORITIES else "normal",
                    "summary": (details.get("summary") or None) and str(details["summary"])[:500],
                    "order_numbers": [str(number) for number in details.get("order_numbers") or []],
                    "transcript": [],  # the messages came in on the stream already
                    "requested_at": at,
                }
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
                for problem in error.errors(include_input=False)  # the input may carry the phone number
            )
            logger.error(
                "could not read the hand-off %r of %s from the event stream: %s",
                handoff_key,
                masked(sender_id),
                problems,
            )
            return
        outcome = self.intake.accept_in_session(self.session, request, source="event_stream")
        if outcome.created and outcome.slack_message:
            self.slack_messages.append(outcome.slack_message)


def _sender(event: BrokerEvent):
    return event.sender_id or event.data.get("sender_id")


def _media_kind(data: dict) -> bool:
    """Whether `record_inbound` keeps a media row for this user event (the same kinds)."""
    kind = ((data.get("metadata") or {}).get("whatsapp") or {}).get("type")
    return kind in DOWNLOADED_KINDS or kind in ("location", "contacts")


def _text_or_none(value) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


def _as_float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class ApplyCarefully(Exception):
    """An event failed in a batch applied without savepoints: apply the batch again, carefully."""

    def __init__(self, events: int, error: Exception):
        super().__init__(f"{events} events")
        self.events = events
        self.error = error

    def log(self) -> None:
        # The careful pass logs the event that fails, with its traceback; the error's text may carry
        # customer data, so only its kind is named here.
        logger.warning(
            "a batch of %s broker events failed (%s); applying it again event by event",
            self.events,
            type(self.error).__name__,
        )


class EventStreamConsumer:
    NAME = "rasa_sql_broker"

    def __init__(
        self,
        inbox: Inbox,
        source: SqlBrokerSource,
        *,
        batch_size: int = 200,
        gap_grace_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.inbox = inbox
        self.source = source
        self.batch_size = batch_size
        self.gap_grace = gap_grace_seconds
        self.monotonic = monotonic  # the clock of the gap grace period (tests pass their own)
        self._gap_seen: tuple[int, float] | None = None  # (missing id, monotonic time first seen)

    def position(self) -> int:
        with self.inbox.db.read() as session:
            return session.scalar(select(ConsumerPosition.position).where(ConsumerPosition.name == self.NAME)) or 0

    def run_once(self) -> int:
        """Applies the next batch; returns how many broker events it consumed."""
        try:
            return self._run_once(careful=False)
        except ApplyCarefully as failed:
            failed.log()
            return self._run_once(careful=True)

    def _run_once(self, *, careful: bool) -> int:
        db = self.inbox.db
        with db.write() as session:
            insert_ignoring_duplicates(session, ConsumerPosition, {"name": self.NAME, "position": 0}, ["name"])
            stored = session.scalars(
                select(ConsumerPosition).where(ConsumerPosition.name == self.NAME).with_for_update()
            ).one()
            events = self._contiguous(stored.position, self.source.fetch_after(stored.position, self.batch_size))
            if not events:
                return 0
            applier = self.apply_batch(session, events, careful=careful)
            stored.position = events[-1].id
            stored.updated_at = self.inbox.clock()
        for message in applier.slack_messages:
            self.inbox.slack.notify(message)
        return len(events)

    def apply_in_transaction(self, events: list[BrokerEvent]) -> RasaEventApplier:
        """Applies `events` in a transaction of their own (the RabbitMQ consumer's batch)."""
        try:
            with self.inbox.db.write() as session:
                return self.apply_batch(session, events, careful=False)
        except ApplyCarefully as failed:  # rolled back: again, each event in its own savepoint
            failed.log()
            with self.inbox.db.write() as session:
                return self.apply_batch(session, events, careful=True)

    def apply_batch(self, session: Session, events: list[BrokerEvent], *, careful: bool) -> RasaEventApplier:
        """Applies the events in `session`'s transaction. Not `careful`: no savepoints and one query for
        what the batch's events need to know (`RasaEventApplier.prepare`); if any event fails, this raises
        `ApplyCarefully` and the caller rolls the transaction back and applies the batch again carefully:
        each event in its own savepoint, a failing one logged and skipped, the others applied. Database
        trouble (OperationalError) propagates either way: the batch is retried later."""
        applier = RasaEventApplier(self.inbox, session, careful=careful)
        try:
            if not careful:
                applier.prepare(events)
            for event in events:
                self._apply_one(session, applier, event)
            applier.finish()
            if not careful:
                session.flush()  # a failure to write belongs to the batch, not to the commit
        except OperationalError:
            raise
        except Exception as error:
            if careful:
                raise
            raise ApplyCarefully(len(events), error) from error
        return applier

    def _apply_one(self, session: Session, applier: RasaEventApplier, event: BrokerEvent) -> None:
        if not applier.changes_anything(event):
            return  # no savepoint (two round trips) for an event that changes nothing
        if not applier.careful:
            applier.apply(event)  # a failure fails the batch (see `apply_batch`)
            return
        try:
            with session.begin_nested():
                applier.apply(event)
        except OperationalError:
            raise  # database trouble: retry the whole batch later
        except Exception:
            applier.forget_locks()  # the savepoint's rollback released the row locks taken in it
            # A malformed event must not block the stream behind it; it is logged for a person to look at.
            logger.exception(
                "broker event %s (sender %s) could not be applied; skipped", event.id, masked(event.sender_id)
            )

    def _contiguous(self, position: int, events: list[BrokerEvent]) -> list[BrokerEvent]:
        """Stops before an id gap that may still fill: on PostgreSQL a lower id can commit after a
        higher one. A gap is accepted once it is older than the grace period."""
        accepted: list[BrokerEvent] = []
        expected = position + 1
        for event in events:
            if event.id != expected and not self._gap_is_settled(expected, event):
                break
            accepted.append(event)
            expected = event.id + 1
        return accepted

    def _gap_is_settled(self, missing_id: int, next_event: BrokerEvent) -> bool:
        if position_is_old(next_event, self.inbox.clock(), timedelta(seconds=30)):
            return True
        now = self.monotonic()
        if self._gap_seen is None or self._gap_seen[0] != missing_id:
            self._gap_seen = (missing_id, now)
        return now - self._gap_seen[1] >= self.gap_grace

    def run_forever(self, stop: threading.Event) -> None:
        logger.info(
            "event-stream consumer started (%s)", make_url(self.source.url).render_as_string(hide_password=True)
        )
        while not stop.is_set():
            try:
                consumed = self.run_once()
            except Exception:
                logger.exception("event-stream consumer failed; retrying")
                stop.wait(2.0)
                continue
            if consumed == 0:
                stop.wait(self.inbox.settings.inbox_consumer_poll_seconds)


def position_is_old(event: BrokerEvent, now: datetime, age: timedelta) -> bool:
    return event_time(event.data, now) < now - age
