"""Durable store of the WhatsApp connector (SQLite by default, PostgreSQL in production).

What it keeps:
- every inbound message, persisted before the webhook is acknowledged, with its processing
  state (`pending` -> `processing` -> `done` | `handed_off` | `failed`; `ignored` for removed reactions, reactions
  the bot does not act on, and unknown types). The message id is unique, which is what makes
  duplicate deliveries harmless.
- every delivery status, with its forwarding state towards the inbox (an outbox).
- dead letters: payloads or parts of payloads that could not be read.
- the outbound log: what was sent to whom, Meta's message id, and how the send ended (its
  delivery statuses are in the statuses table, joined on the message id).
- reply options: button payloads too long for WhatsApp's id field, stored under a short key.

Claiming rule (ordering and multi-process safety): a process may only claim the *oldest*
unfinished message of a customer, with a compare-and-set on its state, and holds it under a
lease it keeps renewing. Two processes therefore never work on the same customer at once,
and a customer's messages are handled one after the other in arrival order. When a process
dies, its lease runs out and any process (or its own restart) takes the message over.

The methods are synchronous (SQLAlchemy 1.4 Core); async callers go through `run()`, which
uses a small thread pool so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import QueuePool

from connectors.inbound import InboundAction, InboundMessage, ReceivedMessage, Rejected, StatusUpdate
from connectors.privacy import mask_user_id

logger = logging.getLogger(__name__)

PENDING = "pending"
PROCESSING = "processing"
DONE = "done"
FAILED = "failed"
HANDED_OFF = "handed_off"  # could not be handled within the retry budget: bot_unavailable + hand-off
IGNORED = "ignored"

FORWARD_PENDING = "pending"
FORWARD_DONE = "forwarded"
FORWARD_SKIPPED = "skipped"  # no inbox configured
FORWARD_REJECTED = "rejected"  # the inbox refused it for its content: kept as a dead letter

REPLY_OPTION_PREFIX = "opt:"
# A customer id: phone digits, or a business-scoped user id (Meta: up to `CC.ENT.` + 128 characters).
CUSTOMER_ID_LENGTH = 160
# Columns created narrower by earlier versions; widened in place on PostgreSQL (SQLite ignores lengths).
_WIDENED_ID_COLUMNS = (("wa_inbound_messages", "wa_id"), ("wa_statuses", "recipient_id"),
                       ("wa_outbound_messages", "recipient_id"), ("wa_send_keys", "recipient_id"))

metadata = MetaData()

inbound_messages = Table(
    "wa_inbound_messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("wa_id", String(CUSTOMER_ID_LENGTH), nullable=False),
    Column("type", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("record", Text, nullable=False),  # InboundMessage.to_record() as JSON
    Column("raw", Text, nullable=False),  # the message object as Meta sent it
    Column("received_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(128)),
    Column("lease_until", Float),
    Column("finished_at", Float),
    Column("last_error", Text),
    Index("ix_wa_inbound_customer_queue", "wa_id", "state", "seq"),
    Index("ix_wa_inbound_state", "state"),
)

statuses = Table(
    "wa_statuses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("recipient_id", String(CUSTOMER_ID_LENGTH), nullable=False),
    Column("timestamp", String(32), nullable=False),
    Column("errors", Text, nullable=False),  # JSON list
    Column("raw", Text, nullable=False),  # Meta's status object as received
    Column("received_at", Float, nullable=False),
    Column("forward_state", String(16), nullable=False),
    Column("forward_attempts", Integer, nullable=False, default=0),
    Column("next_forward_at", Float),
    Column("forwarded_at", Float),
    UniqueConstraint("message_id", "status", name="uq_wa_status_message_status"),
    Index("ix_wa_status_forwarding", "forward_state", "next_forward_at"),
)

dead_letters = Table(
    "wa_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

outbound_messages = Table(
    "wa_outbound_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("wamid", String(255), index=True),
    Column("recipient_id", String(CUSTOMER_ID_LENGTH), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("request", Text, nullable=False),
    Column("state", String(16), nullable=False),  # sent | failed
    Column("http_status", Integer),
    Column("error_code", Integer),
    Column("error_title", Text),
    Column("attempts", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Keys of our outbound messages (connectors/send_keys.py): a key is POSTed to Meta at most once
# unless Meta is known not to have it.
SEND_SENDING = "sending"  # written before the POST; a crash leaves it here (outcome unknown)
SEND_SENT = "sent"
SEND_FAILED = "failed"  # Meta answered an error, or was never reached: may be sent again
SEND_UNKNOWN = "unknown"  # timed out / dropped after the request went out: never re-sent automatically

send_keys = Table(
    "wa_send_keys",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("recipient_id", String(CUSTOMER_ID_LENGTH), nullable=False),
    Column("state", String(16), nullable=False),
    Column("wamid", String(255)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

reply_options = Table(
    "wa_reply_options",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)


def _switch_to_wal(cursor: Any, patience_seconds: float = 10.0) -> None:
    """`PRAGMA journal_mode=WAL`, retried while the database is locked.

    Switching a fresh database to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once instead of waiting (its busy timeout does not apply) while other connections
    are opening the same file - as when several Sanic workers start together. Once the file is in
    WAL mode the pragma is a no-op and never waits.
    """
    deadline = time.monotonic() + patience_seconds
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class StoreClosed(RuntimeError):
    """The store was closed (the server is shutting down); nothing was written."""


@dataclass(frozen=True)
class ClaimedMessage:
    seq: int
    message: InboundMessage
    attempts: int


@dataclass(frozen=True)
class PersistOutcome:
    new_messages: List[InboundMessage]  # messages stored for the first time
    duplicates: int
    new_statuses: int


@dataclass(frozen=True)
class StatusToForward:
    id: int
    raw: Dict[str, Any]
    attempts: int


_T = TypeVar("_T")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _HotStatements:
    """Statements run for every message, built once: parameters are bound per execution,
    which spares SQLAlchemy rebuilding and re-keying them each time (about half the CPU)."""

    def __init__(self) -> None:
        t = inbound_messages.c
        self.insert_inbound = _insert_unless_present(
            inbound_messages,
            ["message_id", "wa_id", "type", "state", "record", "raw", "received_at", "attempts", "finished_at"],
            conflict_on=["message_id"],
        )
        self.insert_status = _insert_unless_present(
            statuses,
            ["message_id", "status", "recipient_id", "timestamp", "errors", "raw", "received_at", "forward_state",
             "forward_attempts", "next_forward_at"],
            conflict_on=["message_id", "status"],
        )
        self.insert_outbound = outbound_messages.insert()
        self.insert_send_key = _insert_unless_present(
            send_keys, ["key", "recipient_id", "state", "created_at", "updated_at"], conflict_on=["key"]
        )
        self.oldest_unfinished = (
            select(t.seq, t.state, t.claimed_by, t.lease_until, t.attempts, t.record)
            .where(t.wa_id == bindparam("b_wa_id"), t.state.in_((PENDING, PROCESSING)))
            .order_by(t.seq)
            .limit(1)
        )
        # Compare-and-set on what was read: of two racing processes only one updates the row.
        self.claim = update(inbound_messages).where(
            t.seq == bindparam("b_seq"), t.state == bindparam("b_state"), t.attempts == bindparam("b_attempts")
        )
        self.finish = update(inbound_messages).where(
            t.seq == bindparam("b_seq"), t.claimed_by == bindparam("b_owner"), t.state == PROCESSING
        )


def _insert_unless_present(table: Table, columns: List[str], conflict_on: List[str]) -> Any:
    """`INSERT ... ON CONFLICT (...) DO NOTHING`, identical in SQLite (>= 3.24) and PostgreSQL.

    Written as text because SQLAlchemy 1.4 cannot cache its dialect-specific on-conflict inserts
    ("no key" in its echo log) and compiled them anew for every message and status (~6 % of the
    connector's CPU). A text statement is compiled once per engine.
    """
    for name in (*columns, *conflict_on):
        table.c[name]  # a typo in a column name fails at import, not on the first message
    return text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(conflict_on)}) DO NOTHING"
    )


# Any constant works; it only has to be the same in every process that creates this schema.
_SCHEMA_LOCK_KEY = 0x5741_5354  # "WAST"


class WhatsAppStore:
    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # Customer messages and dead letters are committed with a full fsync before Meta gets
        # its 200; statuses and the connector's own bookkeeping (claims, outbound log,
        # forwarding marks) only need to survive a crash of the process, which SQLite's WAL
        # gives without an fsync (synchronous=NORMAL).
        self.engine = self._create_engine("FULL")
        self._bookkeeping = self._create_engine("NORMAL") if self.is_sqlite else self.engine
        # SQLite has one writer: one thread keeps this process from contending with itself.
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 4, thread_name_prefix="whatsapp-store"
        )
        self._insert = sqlite.insert if self.is_sqlite else postgresql.insert
        self._statements = _HotStatements()
        self._closed = False

    def _create_engine(self, sqlite_synchronous: str) -> Engine:
        assert sqlite_synchronous in ("FULL", "NORMAL")
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True, future=True)
        database = self.url.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(
            self.url,
            future=True,
            poolclass=QueuePool,
            pool_size=2,
            connect_args={"check_same_thread": False, "timeout": 10},
        )

        @event.listens_for(engine, "connect")
        def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite opens a write transaction (BEGIN IMMEDIATE) before the first write of a
            # transaction; reads before it see committed data, and every claim re-checks the
            # state it read in its UPDATE, so a stale read can never claim twice.
            dbapi_connection.isolation_level = "IMMEDIATE"
            cursor = dbapi_connection.cursor()
            _switch_to_wal(cursor)
            # FULL: a commit survives power loss, not only a crash of this process.
            cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        return engine

    def create_schema(self) -> None:
        """Creates the missing tables.

        Several processes (Sanic workers) may do this at the same moment on a fresh database. The
        check for existing tables and the creation run under one database-wide lock, so the
        second process waits and then finds the tables, instead of crashing on "already exists".
        """
        with self.engine.connect() as connection:
            if self.is_sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, until commit
            elif connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)" % _SCHEMA_LOCK_KEY)
            metadata.create_all(connection, checkfirst=True)
            if connection.dialect.name == "postgresql":
                for table, column in _WIDENED_ID_COLUMNS:
                    width = connection.execute(
                        text("SELECT character_maximum_length FROM information_schema.columns "
                             "WHERE table_schema = current_schema() AND table_name = :t AND column_name = :c"),
                        {"t": table, "c": column},
                    ).scalar()
                    if width is not None and width < CUSTOMER_ID_LENGTH:  # metadata only: no table rewrite
                        connection.exec_driver_sql(
                            f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR({CUSTOMER_ID_LENGTH})"
                        )
            connection.commit()

    async def run(self, method: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(method, *args, **kwargs))
        except RuntimeError as error:
            if self._closed:  # requests still arriving while the server shuts down
                raise StoreClosed("the WhatsApp store is closed: the server is shutting down") from error
            raise

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True)
        self.engine.dispose()
        self._bookkeeping.dispose()

    # --- webhook side ------------------------------------------------------------------

    def persist_webhook(
        self,
        received: Sequence[ReceivedMessage],
        status_updates: Sequence[StatusUpdate],
        rejected: Sequence[Rejected],
        forward_statuses: bool,
    ) -> PersistOutcome:
        """Store everything one webhook carried, in one transaction (before the 200).

        A webhook carrying customer messages or dead letters is committed with a full fsync.
        One carrying only delivery statuses (three per reply, informational) is committed
        without: it survives a crash of the process, and the next message's fsync makes it
        durable on disk too.
        """
        now = time.time()
        new_messages: List[InboundMessage] = []
        new_statuses = 0
        engine = self.engine if (received or rejected) else self._bookkeeping
        with engine.begin() as connection:
            for item in received:
                message = item.message
                state = IGNORED if message.action is InboundAction.IGNORE else PENDING
                inserted = connection.execute(
                    self._statements.insert_inbound,
                    {
                        "message_id": message.message_id,
                        "wa_id": message.wa_id,
                        "type": message.type,
                        "state": state,
                        "record": _dumps(message.to_record()),
                        "raw": _dumps(item.raw),
                        "received_at": now,
                        "attempts": 0,
                        "finished_at": now if state == IGNORED else None,
                    },
                ).rowcount
                if inserted == 1:
                    new_messages.append(message)
            for status in status_updates:
                inserted = connection.execute(
                    self._statements.insert_status,
                    {
                        "message_id": status.message_id,
                        "status": status.status,
                        "recipient_id": status.recipient_id,
                        "timestamp": status.timestamp,
                        "errors": _dumps(status.errors),
                        "raw": _dumps(status.raw),
                        "received_at": now,
                        "forward_state": FORWARD_PENDING if forward_statuses else FORWARD_SKIPPED,
                        "forward_attempts": 0,
                        "next_forward_at": now,
                    },
                ).rowcount
                if inserted == 1:
                    new_statuses += 1
            for item in rejected:
                connection.execute(
                    dead_letters.insert().values(
                        received_at=now, reason=item.reason, body=_dumps(item.fragment).encode("utf-8")
                    )
                )
        return PersistOutcome(
            new_messages=new_messages,
            duplicates=len(received) - len(new_messages),
            new_statuses=new_statuses,
        )

    def add_dead_letter(self, reason: str, body: bytes) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                dead_letters.insert().values(received_at=time.time(), reason=reason, body=body)
            )
            return int(result.inserted_primary_key[0])

    # --- processing side ---------------------------------------------------------------

    def claim_next(self, wa_id: str, owner: str, lease_seconds: float) -> Optional[ClaimedMessage]:
        """Claim the customer's oldest unfinished message, if nobody else holds it."""
        with self._bookkeeping.begin() as connection:
            return self._claim_next(connection, wa_id, owner, lease_seconds)

    def finish_and_claim_next(
        self, seq: int, owner: str, wa_id: str, lease_seconds: float, *, state: str = DONE,
        error: Optional[str] = None,
    ) -> Optional[ClaimedMessage]:
        """Mark a message done (or `ignored`), then claim the customer's next one.

        Two transactions on purpose. Say another process stores this customer's next message while
        this one finishes. Either this claim, which starts after the finish is committed, sees that
        message, or the other process's own claim, which starts after the message is committed,
        sees this one finished. In a single transaction, under PostgreSQL's READ COMMITTED, both
        could miss it, and the message would wait for the next sweep.
        """
        self.finish(seq, owner, state=state, error=error)
        return self.claim_next(wa_id, owner, lease_seconds)

    def _claim_next(self, connection: Connection, wa_id: str, owner: str, lease_seconds: float) -> Optional[ClaimedMessage]:
        now = time.time()
        row = connection.execute(self._statements.oldest_unfinished, {"b_wa_id": wa_id}).first()
        if row is None:
            return None
        held_by_other = (
            row.state == PROCESSING
            and row.claimed_by != owner
            and row.lease_until is not None
            and row.lease_until > now
        )
        if held_by_other:
            return None
        if row.state == PROCESSING and row.claimed_by != owner:
            logger.warning(
                "Taking over WhatsApp message seq=%s of %s: the claim of %s ran out",
                row.seq, mask_user_id(wa_id), row.claimed_by,
            )
        claimed = connection.execute(
            self._statements.claim,
            {
                "b_seq": row.seq,
                "b_state": row.state,
                "b_attempts": row.attempts,
                "state": PROCESSING,
                "claimed_by": owner,
                "lease_until": now + lease_seconds,
                "attempts": row.attempts + 1,
            },
        ).rowcount
        if claimed != 1:
            return None
        return ClaimedMessage(
            seq=row.seq,
            message=InboundMessage.from_record(json.loads(row.record)),
            attempts=row.attempts + 1,
        )

    def previous_message(self, wa_id: str, seq: int) -> Optional[InboundMessage]:
        """The customer's message stored just before `seq` (a CSAT comment follows a CSAT tap)."""
        t = inbound_messages.c
        query = select(t.record).where(t.wa_id == wa_id, t.seq < seq).order_by(t.seq.desc()).limit(1)
        with self._bookkeeping.begin() as connection:
            row = connection.execute(query).first()
        return InboundMessage.from_record(json.loads(row.record)) if row else None

    def finish(self, seq: int, owner: str, *, state: str = DONE, error: Optional[str] = None) -> bool:
        with self._bookkeeping.begin() as connection:
            return self._finish(connection, seq, owner, state, error)

    def _finish(self, connection: Connection, seq: int, owner: str, state: str, error: Optional[str]) -> bool:
        finished = connection.execute(
            self._statements.finish,
            {"b_seq": seq, "b_owner": owner, "state": state, "finished_at": time.time(),
             "lease_until": None, "last_error": error},
        ).rowcount
        if finished != 1:
            logger.warning("WhatsApp message seq=%s was no longer claimed by %s when it finished", seq, owner)
        return finished == 1

    def release(self, seq: int, owner: str, error: str) -> bool:
        """Give a claimed message back (it will be tried again)."""
        with self._bookkeeping.begin() as connection:
            return (
                connection.execute(
                    update(inbound_messages)
                    .where(inbound_messages.c.seq == seq, inbound_messages.c.claimed_by == owner)
                    .values(state=PENDING, lease_until=None, claimed_by=None, last_error=error)
                ).rowcount
                == 1
            )

    def renew_claims(self, owner: str, lease_seconds: float) -> int:
        with self._bookkeeping.begin() as connection:
            return connection.execute(
                update(inbound_messages)
                .where(inbound_messages.c.claimed_by == owner, inbound_messages.c.state == PROCESSING)
                .values(lease_until=time.time() + lease_seconds)
            ).rowcount

    def customers_with_work(self, limit: int = 500) -> List[str]:
        """Customers with a pending message, or one whose claim ran out."""
        now = time.time()
        with self._bookkeeping.begin() as connection:
            pending = connection.execute(
                select(inbound_messages.c.wa_id)
                .where(inbound_messages.c.state == PENDING)
                .group_by(inbound_messages.c.wa_id)
                .limit(limit)
            ).scalars().all()
            stale = connection.execute(
                select(inbound_messages.c.wa_id)
                .where(inbound_messages.c.state == PROCESSING, inbound_messages.c.lease_until < now)
                .group_by(inbound_messages.c.wa_id)
                .limit(limit)
            ).scalars().all()
        return list(dict.fromkeys([*pending, *stale]))

    # --- statuses -> inbox -------------------------------------------------------------

    def statuses_due(self, limit: int = 100) -> List[StatusToForward]:
        with self._bookkeeping.begin() as connection:
            rows = connection.execute(
                select(statuses.c.id, statuses.c.raw, statuses.c.forward_attempts)
                .where(
                    statuses.c.forward_state == FORWARD_PENDING,
                    statuses.c.next_forward_at <= time.time(),
                )
                .order_by(statuses.c.id)
                .limit(limit)
            ).all()
        return [StatusToForward(id=row.id, raw=json.loads(row.raw), attempts=row.forward_attempts) for row in rows]

    def mark_forwarded(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        with self._bookkeeping.begin() as connection:
            connection.execute(
                update(statuses)
                .where(statuses.c.id.in_(ids))
                .values(forward_state=FORWARD_DONE, forwarded_at=time.time())
            )

    def reject_forwarding(self, status_id: int, reason: str) -> None:
        """The inbox will never take this status: stop offering it, keep it as a dead letter."""
        with self.engine.begin() as connection:
            raw = connection.execute(select(statuses.c.raw).where(statuses.c.id == status_id)).scalar()
            connection.execute(
                update(statuses).where(statuses.c.id == status_id).values(forward_state=FORWARD_REJECTED)
            )
            connection.execute(
                dead_letters.insert().values(received_at=time.time(), reason=reason, body=(raw or "").encode("utf-8"))
            )

    def postpone_forwarding(self, ids: Iterable[int], delay_seconds: float) -> None:
        ids = list(ids)
        with self._bookkeeping.begin() as connection:
            connection.execute(
                update(statuses)
                .where(statuses.c.id.in_(ids))
                .values(
                    forward_attempts=statuses.c.forward_attempts + 1,
                    next_forward_at=time.time() + delay_seconds,
                )
            )

    def next_forward_time(self) -> Optional[float]:
        with self._bookkeeping.begin() as connection:
            return connection.execute(
                select(statuses.c.next_forward_at)
                .where(statuses.c.forward_state == FORWARD_PENDING)
                .order_by(statuses.c.next_forward_at)
                .limit(1)
            ).scalar()

    # --- outbound log ------------------------------------------------------------------

    def record_outbound(
        self,
        *,
        recipient_id: str,
        kind: str,
        request: Dict[str, Any],
        wamid: Optional[str],
        http_status: Optional[int],
        error_code: Optional[int],
        error_title: Optional[str],
        attempts: int,
    ) -> None:
        with self._bookkeeping.begin() as connection:
            connection.execute(
                self._statements.insert_outbound,
                {
                    "wamid": wamid,
                    "recipient_id": recipient_id,
                    "kind": kind,
                    "request": _dumps(request),
                    "state": "sent" if wamid else "failed",
                    "http_status": http_status,
                    "error_code": error_code,
                    "error_title": error_title,
                    "attempts": attempts,
                    "created_at": time.time(),
                },
            )

    def sent_to(self, wamid: str, recipient_id: str) -> bool:
        """Whether the bot sent the message `wamid` to this customer (what a reaction may react to)."""
        with self._bookkeeping.begin() as connection:
            return connection.execute(
                select(outbound_messages.c.id)
                .where(outbound_messages.c.wamid == wamid)
                .where(outbound_messages.c.recipient_id == recipient_id)
                .limit(1)
            ).first() is not None

    # --- send keys ---------------------------------------------------------------------

    def claim_send_key(
        self, key: str, recipient_id: str, settle_seconds: float
    ) -> Optional[Tuple[str, Optional[str], float]]:
        """None: go ahead and send (the key is now `sending`). Otherwise (state, wamid, wait) of the
        earlier send, which must not be repeated now. A `sending`/`unknown` key is checked for
        `settle_seconds`: Meta reports a message it has within seconds (a status echoing the key
        marks it `sent`); after that without one, Meta does not have it and it may be sent again
        (`wait` says how long is left)."""
        now = time.time()
        t = send_keys.c
        with self._bookkeeping.begin() as connection:
            inserted = connection.execute(
                self._statements.insert_send_key,
                {"key": key, "recipient_id": recipient_id, "state": SEND_SENDING, "created_at": now, "updated_at": now},
            ).rowcount
            if inserted == 1:
                return None
            retaken = connection.execute(
                update(send_keys)
                .where(t.key == key)
                .where(
                    (t.state == SEND_FAILED)
                    | (t.state.in_((SEND_SENDING, SEND_UNKNOWN)) & (t.updated_at <= now - settle_seconds))
                )
                .values(state=SEND_SENDING, updated_at=now)
            ).rowcount
            if retaken == 1:
                return None
            row = connection.execute(select(t.state, t.wamid, t.updated_at).where(t.key == key)).first()
            if row is None:
                return None
            return row.state, row.wamid, max(0.0, row.updated_at + settle_seconds - now)

    def settle_send_key(self, key: str, wamid: Optional[str], uncertain: bool) -> None:
        state = SEND_SENT if wamid else (SEND_UNKNOWN if uncertain else SEND_FAILED)
        with self._bookkeeping.begin() as connection:
            connection.execute(
                update(send_keys).where(send_keys.c.key == key).values(state=state, wamid=wamid, updated_at=time.time())
            )

    def settle_send_keys_from_statuses(self, keyed: Sequence[Tuple[str, str]]) -> int:
        """(key, wamid) pairs from status webhooks: Meta has these messages, whatever we thought."""
        settled = 0
        with self._bookkeeping.begin() as connection:
            for key, wamid in keyed:
                settled += connection.execute(
                    update(send_keys)
                    .where(send_keys.c.key == key, send_keys.c.state.in_((SEND_SENDING, SEND_UNKNOWN, SEND_FAILED)))
                    .values(state=SEND_SENT, wamid=wamid, updated_at=time.time())
                ).rowcount
        return settled

    def send_key_state(self, key: str) -> Optional[str]:
        with self._bookkeeping.begin() as connection:
            return connection.execute(select(send_keys.c.state).where(send_keys.c.key == key)).scalar()

    # --- reply options -----------------------------------------------------------------

    def remember_reply_option(self, payload: str) -> str:
        key = REPLY_OPTION_PREFIX + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
        with self.engine.begin() as connection:
            connection.execute(
                self._insert(reply_options)
                .values(key=key, payload=payload, created_at=time.time())
                .on_conflict_do_nothing(index_elements=["key"])
            )
        return key

    def resolve_reply_option(self, key: str) -> Optional[str]:
        with self._bookkeeping.begin() as connection:
            return connection.execute(
                select(reply_options.c.payload).where(reply_options.c.key == key)
            ).scalar()
