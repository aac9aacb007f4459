"""Durable store of the WhatsApp connector (SQLite by default, PostgreSQL in production).

What it keeps, and where the code for each part is:
- every inbound message, persisted before the webhook is acknowledged, with its processing
  state (`pending` -> `processing` -> `done` | `handed_off` | `failed`; `ignored` for removed reactions, reactions
  the bot does not act on, and unknown types). The message id is unique, which is what makes
  duplicate deliveries harmless. Written here (`persist_webhook`); claimed and finished through the
  claim queue (`connectors/store_claims.py`, which states the claiming rule).
- every delivery status, with its forwarding state towards the inbox: the status outbox
  (`connectors/store_statuses.py`). A status of the connector's own send (a bot reply) is stored
  `not_needed` and never forwarded (`_insert_status_to_forward`).
- dead letters: payloads or parts of payloads that could not be read (here).
- the outbound log, send keys and reply options (`connectors/store_outbound.py`): what was sent to
  whom, Meta's message id, and how the send ended (its delivery statuses are in the statuses table,
  joined on the message id).
The tables and states are defined once, in `connectors/store_schema.py`; `WhatsAppStore` is the one
object callers use (its methods come from the parts above).

Hot statements (run for every message) are built once at import: parameters are bound per
execution, which spares SQLAlchemy rebuilding and re-keying them each time (about half the CPU). On
PostgreSQL they are also prepared on the server once per connection (`prepared(...)`,
connectors/prepared_statements.py): no parse or plan per message in PostgreSQL.

The methods are synchronous (SQLAlchemy 1.4 Core); async callers go through `run()`, which
uses a small thread pool so the event loop never waits on the database.

Pooled PostgreSQL connections are checked before use only when in doubt (`_ping_when_in_doubt`):
after sitting idle in the pool for `IDLE_PING_SECONDS`, or when the server has already written to or
closed the idle connection (a restart, `pg_terminate_backend`, an idle timeout), which a zero-timeout
poll of its socket shows without a round trip. `pool_pre_ping` pinged on every checkout: one `SELECT 1`
round trip per transaction, some 26 per customer message (tests/connector/test_store_work.py). A
failed ping is handled exactly as `pool_pre_ping` handles one: the pool's older connections are
invalidated and a new connection is made before the transaction starts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import select
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import QueuePool
from whatsapp_cloud import SEND_KEY_FIELD

from connectors.inbound import InboundAction, InboundMessage, ReceivedMessage, Rejected, StatusUpdate
from connectors.prepared_statements import prepare_marked_statements, prepared
from connectors.store_claims import ClaimedMessage, ClaimQueue
from connectors.store_outbound import OutboundLog
from connectors.store_schema import (  # noqa: F401  (re-exported: callers import them from here)
    CUSTOMER_ID_LENGTH,
    DONE,
    FAILED,
    FORWARD_DONE,
    FORWARD_NOT_NEEDED,
    FORWARD_PENDING,
    FORWARD_REJECTED,
    FORWARD_SKIPPED,
    HANDED_OFF,
    IGNORED,
    PENDING,
    PROCESSING,
    REPLY_OPTION_PREFIX,
    SEND_FAILED,
    SEND_SENDING,
    SEND_SENT,
    SEND_UNKNOWN,
    create_schema,
    dead_letters,
    dumps,
    inbound_messages,
    insert_unless_present,
    metadata,
    outbound_messages,
    reply_options,
    send_keys,
    statuses,
)
from connectors.store_outbound import KnownSentKeys
from connectors.store_statuses import StatusOutbox, StatusToForward  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

__all__ = ["WhatsAppStore", "StoreClosed", "PersistOutcome", "ClaimedMessage", "StatusToForward", "metadata"]

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


# A pooled PostgreSQL connection idle longer than this is pinged before use (see the module's docstring).
IDLE_PING_SECONDS = 5.0
_CHECKED_IN_AT = "kesar_checked_in_at"  # in the pool's connection record: when it went back to the pool


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection has something to read (the server said goodbye, or closed it), or
    may be unusable for another reason: no round trip, one `poll()` with a zero timeout.

    Between transactions the server sends nothing on a connection nobody LISTENs on; what it does
    send unasked is the notice before it closes the connection (shutdown, restart, terminated
    backend, idle timeout) and the close itself. When we cannot tell, the answer is yes (ping)."""
    try:
        if getattr(dbapi_connection, "closed", 0):
            return True
        fileno = dbapi_connection.fileno()
    except Exception:
        return True
    try:
        poller = select.poll()
        poller.register(fileno, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def _ping_when_in_doubt(engine: Engine, idle_seconds: float, clock: Callable[[], float]) -> None:
    """`pool_pre_ping`, but only for connections that idled `idle_seconds` or that the server spoke to."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_CHECKED_IN_AT, None)  # a new connection needs no ping

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None and record is not None:
            record.info[_CHECKED_IN_AT] = clock()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.pop(_CHECKED_IN_AT, None)
        if checked_in_at is None:
            return  # fresh from connect()
        if clock() - checked_in_at < idle_seconds and not _server_spoke(dbapi_connection):
            return
        if not engine.dialect.do_ping(dbapi_connection):
            # What pool_pre_ping raises: the pool invalidates this and every older connection, then
            # connects anew (the checkout is retried) before the caller's transaction starts.
            raise exc.InvalidatePoolError()


class StoreClosed(RuntimeError):
    """The store was closed (the server is shutting down); nothing was written."""


@dataclass(frozen=True)
class PersistOutcome:
    new_messages: List[InboundMessage]  # messages stored for the first time
    duplicates: int
    new_statuses: int
    # Of those, the ones waiting to be forwarded to the inbox (not a bot reply's, an inbox configured).
    statuses_to_forward: int = 0


_T = TypeVar("_T")

_INSERT_INBOUND = insert_unless_present(
    inbound_messages,
    ["message_id", "wa_id", "type", "state", "record", "raw", "received_at", "attempts", "finished_at"],
    conflict_on=["message_id"],
).execution_options(**prepared("kesar_inbound"))
_INSERT_STATUS = insert_unless_present(
    statuses,
    ["message_id", "status", "recipient_id", "timestamp", "errors", "raw", "received_at", "forward_state",
     "forward_attempts", "next_forward_at"],
    conflict_on=["message_id", "status"],
)


_STATUS_COLUMNS = ["message_id", "status", "recipient_id", "timestamp", "errors", "raw", "received_at",
                   "forward_attempts", "next_forward_at"]
for _name in _STATUS_COLUMNS:
    statuses.c[_name]  # a typo in a column name fails at import
assert "key" in send_keys.c and "wamid" in outbound_messages.c and "state" in send_keys.c
# Whether a status needs forwarding to the inbox (issue 16). It does not when its message was sent by this connector
# (a bot reply): the inbox acts only on the messages it sent itself (straight to the Graph API, never through the
# connector), so those statuses would each cost it a request for `{"accepted": 0}`. A message is this connector's when
# the status echoes one of its send keys (`wa_send_keys`, written before the POST, so even a status faster than the
# outbound log row is recognised) or its id is in the outbound log (sends without a key). Anything else stays
# `pending` and is forwarded as before: the inbox's replies, satisfaction questions and templates (a `kl-reply-` key
# is never in `wa_send_keys`), and unknown ids; a status arriving before an unkeyed send's log row is forwarded too
# (harmless).
_FORWARD_DECISION = (
    f"CASE WHEN EXISTS (SELECT 1 FROM {send_keys.name} WHERE key = :send_key)"
    f" OR EXISTS (SELECT 1 FROM {outbound_messages.name} WHERE wamid = :message_id)"
    f" THEN '{FORWARD_NOT_NEEDED}' ELSE '{FORWARD_PENDING}' END"
)
# A status echoing one of our send keys proves Meta has that message: the key becomes `sent` (connectors/send_keys.py).
_SETTLE_WHERE = (f"key = :settle_key AND state IN ('{SEND_SENDING}', '{SEND_UNKNOWN}', '{SEND_FAILED}')")


def _insert_status_to_forward(returning: bool) -> Any:
    """`_INSERT_STATUS` for a connector that forwards statuses to the inbox, deciding in the same statement
    whether the status needs forwarding at all (`_FORWARD_DECISION`). With `returning`, the row's decided state
    comes back (SQLite >= 3.35, PostgreSQL); without, the caller only knows that a row was inserted."""
    return text(
        f"INSERT INTO {statuses.name} ({', '.join(_STATUS_COLUMNS)}, forward_state) "
        f"VALUES ({', '.join(':' + c for c in _STATUS_COLUMNS)}, {_FORWARD_DECISION}) "
        f"ON CONFLICT (message_id, status) DO NOTHING" + (" RETURNING forward_state" if returning else "")
    )


def _store_and_settle_status(forwarding: bool) -> Any:
    """PostgreSQL: a status webhook's whole work for one status in one statement: the status stored (its forwarding
    state decided as `_insert_status_to_forward` does, or `:forward_state` without an inbox), its send key
    (`:settle_key`, NULL for none) settled `sent` (`_SETTLE_WHERE`), and back come the stored
    row's forwarding state (NULL: Meta repeated a status already stored) and whether the key is `sent` now (it was
    before the statement, or the statement made it so; NULL key: false). The statement's parts share one snapshot
    (the settle cannot change what the forwarding decision sees: it asks only whether the key exists)."""
    state = _FORWARD_DECISION if forwarding else ":forward_state"
    return text(
        f"WITH stored AS (INSERT INTO {statuses.name} ({', '.join(_STATUS_COLUMNS)}, forward_state) "
        f"VALUES ({', '.join(':' + c for c in _STATUS_COLUMNS)}, {state}) "
        f"ON CONFLICT (message_id, status) DO NOTHING RETURNING forward_state), "
        f"settled AS (UPDATE {send_keys.name} SET state = '{SEND_SENT}', wamid = :message_id, "
        f"updated_at = :received_at WHERE {_SETTLE_WHERE} RETURNING key) "
        f"SELECT (SELECT forward_state FROM stored) AS forward_state, "
        f"(EXISTS (SELECT 1 FROM settled) OR EXISTS (SELECT 1 FROM {send_keys.name} "
        f"WHERE key = :settle_key AND state = '{SEND_SENT}')) AS key_sent"
    )


_INSERT_STATUS_TO_FORWARD = _insert_status_to_forward(returning=True)
_INSERT_STATUS_TO_FORWARD_COUNTED = _insert_status_to_forward(returning=False)  # SQLite before 3.35
_STORE_AND_SETTLE = {forwarding: _store_and_settle_status(forwarding).execution_options(**prepared("kesar_status"))
                     for forwarding in (True, False)}
# SQLite has no UPDATE in a WITH: the settle is a second statement of the webhook's transaction.
_SETTLE_KEY = text(f"UPDATE {send_keys.name} SET state = '{SEND_SENT}', wamid = :message_id, "
                   f"updated_at = :received_at WHERE {_SETTLE_WHERE}")


class WhatsAppStore(ClaimQueue, StatusOutbox, OutboundLog):
    def __init__(
        self, url: str, *, idle_ping_seconds: Optional[float] = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._idle_ping_seconds = IDLE_PING_SECONDS if idle_ping_seconds is None else idle_ping_seconds
        self._clock = clock
        self._known_sent = KnownSentKeys()  # send keys this process knows Meta has (store_outbound.py)
        self._init_status_outbox()
        # Customer messages and dead letters are committed with a full fsync before Meta gets
        # its 200; statuses and the connector's own bookkeeping (claims, outbound log,
        # forwarding marks) only need to survive a crash of the process, which SQLite's WAL
        # gives without an fsync (synchronous=NORMAL).
        self.engine = self._create_engine("FULL")
        self._bookkeeping = self._create_engine("NORMAL") if self.is_sqlite else self.engine
        # PostgreSQL: connections that stay in autocommit, for work that is one statement (a status webhook) or
        # whose statements need no transaction around them (`_each_statement`): PostgreSQL commits each on its own,
        # without BEGIN and COMMIT round trips. Their own pool: switching a pooled connection in and out of
        # autocommit costs a `SET default_transaction_isolation` round trip each time.
        self._autocommit = None if self.is_sqlite else self._create_engine("FULL", autocommit=True)
        # For the claim queue's steps and the send key's claim (store_claims.py, store_outbound.py): under
        # PostgreSQL's READ COMMITTED every statement reads its own snapshot whether or not a transaction surrounds
        # it, and each of those steps is a read followed by a compare-and-set, or one statement, so a transaction
        # adds only its BEGIN and COMMIT round trips. SQLite keeps its write transactions (one writer, IMMEDIATE).
        self._each_statement = self._autocommit if self._autocommit is not None else self._bookkeeping
        # SQLite has one writer: one thread keeps this process from contending with itself.
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 4, thread_name_prefix="whatsapp-store"
        )
        self._insert = sqlite.insert if self.is_sqlite else postgresql.insert
        self._insert_status_to_forward = (
            _INSERT_STATUS_TO_FORWARD_COUNTED if self.is_sqlite and sqlite3.sqlite_version_info < (3, 35)
            else _INSERT_STATUS_TO_FORWARD
        )
        self._closed = False

    def _create_engine(self, sqlite_synchronous: str, autocommit: bool = False) -> Engine:
        assert sqlite_synchronous in ("FULL", "NORMAL")
        if not self.is_sqlite:
            # LIFO: the connection just used is taken again (it needs no ping); the others idle out and
            # are pinged when the pool next reaches for them.
            options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
            engine = create_engine(self.url, pool_use_lifo=True, future=True, hide_parameters=True, **options)
            _ping_when_in_doubt(engine, self._idle_ping_seconds, self._clock)
            prepare_marked_statements(engine)  # the hot statements: PREPARE once per connection, then EXECUTE
            return engine
        database = self.url.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(
            self.url,
            future=True,
            poolclass=QueuePool,
            pool_size=2,
            hide_parameters=True,  # errors must not carry customer ids or texts into the log
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
        """Creates the missing tables (safe when several processes start at once)."""
        create_schema(self.engine)

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
        if self._autocommit is not None:
            self._autocommit.dispose()

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

        A status echoing one of our send keys settles that key `sent` in the same transaction (Meta has the
        message; connectors/send_keys.py), unless this process knows it is `sent` already. On PostgreSQL each
        status is one statement (`_store_and_settle_status`), and a webhook of one message or one status, the
        usual one, is that statement alone, committed by PostgreSQL on its own (autocommit, with the same
        durability as a COMMIT): one round trip instead of BEGIN, the statement, COMMIT.
        """
        if self._autocommit is not None and not rejected and len(received) + len(status_updates) == 1:
            with self._autocommit.connect() as connection:
                outcome, now_sent = self._persist(connection, received, status_updates, rejected, forward_statuses)
        else:
            with (self.engine if (received or rejected) else self._bookkeeping).begin() as connection:
                outcome, now_sent = self._persist(connection, received, status_updates, rejected, forward_statuses)
        if now_sent:
            self._known_sent.add(now_sent)  # only once the work has committed
        return outcome

    def _persist(
        self,
        connection: Connection,
        received: Sequence[ReceivedMessage],
        status_updates: Sequence[StatusUpdate],
        rejected: Sequence[Rejected],
        forward_statuses: bool,
    ) -> Tuple[PersistOutcome, List[str]]:
        """The webhook's statements on `connection`: what it stored, and the send keys its statuses made (or found)
        `sent`, for `KnownSentKeys` once committed."""
        now = time.time()
        new_messages: List[InboundMessage] = []
        new_statuses = to_forward = 0
        for item in received:
            message = item.message
            state = IGNORED if message.action is InboundAction.IGNORE else PENDING
            inserted = connection.execute(
                _INSERT_INBOUND,
                {
                    "message_id": message.message_id,
                    "wa_id": message.wa_id,
                    "type": message.type,
                    "state": state,
                    "record": dumps(message.to_record()),
                    "raw": dumps(item.raw),
                    "received_at": now,
                    "attempts": 0,
                    "finished_at": now if state == IGNORED else None,
                },
            ).rowcount
            if inserted == 1:
                new_messages.append(message)
        now_sent: List[str] = []
        for status in status_updates:
            stored, forward, sent_key = self._store_status(connection, status, forward_statuses, now)
            new_statuses += stored
            to_forward += forward
            if sent_key is not None:
                now_sent.append(sent_key)
        for item in rejected:
            connection.execute(
                dead_letters.insert().values(
                    received_at=now, reason=item.reason, body=dumps(item.fragment).encode("utf-8")
                )
            )
        return PersistOutcome(
            new_messages=new_messages,
            duplicates=len(received) - len(new_messages),
            new_statuses=new_statuses,
            statuses_to_forward=to_forward,
        ), now_sent

    def _store_status(
        self, connection: Connection, status: StatusUpdate, forward_statuses: bool, now: float
    ) -> Tuple[bool, bool, Optional[str]]:
        """Stores one status and settles the send key it echoes: (stored anew, waiting to be forwarded, the key
        when it is `sent` now, for `KnownSentKeys`)."""
        values = {
            "message_id": status.message_id,
            "status": status.status,
            "recipient_id": status.recipient_id,
            "timestamp": status.timestamp,
            "errors": dumps(status.errors),
            "raw": dumps(status.raw),
            "received_at": now,
            "forward_attempts": 0,
            "next_forward_at": now,
        }
        key = status.raw.get(SEND_KEY_FIELD)
        key = key if isinstance(key, str) else None
        # A failed status does not prove Meta has the message; a key known `sent` needs nothing (sent is final).
        settle_key = key if key is not None and status.status != "failed" and key not in self._known_sent else None
        if forward_statuses:  # the statement decides pending or not_needed
            values["send_key"] = key
        else:
            values["forward_state"] = FORWARD_SKIPPED
        if not self.is_sqlite:
            row = connection.execute(_STORE_AND_SETTLE[forward_statuses], {**values, "settle_key": settle_key}).one()
            stored = row.forward_state is not None  # None: Meta repeated a status already stored
            return stored, row.forward_state == FORWARD_PENDING, settle_key if row.key_sent else None
        result = connection.execute(self._insert_status_to_forward if forward_statuses else _INSERT_STATUS, values)
        if result.returns_rows:
            state = result.scalar()
            stored, forward = state is not None, state == FORWARD_PENDING
        else:
            stored = result.rowcount == 1
            forward = stored and forward_statuses  # perhaps a bot reply's: the forwarder looks and finds nothing
        settled = settle_key is not None and connection.execute(
            _SETTLE_KEY, {"settle_key": settle_key, "message_id": status.message_id, "received_at": now}
        ).rowcount == 1
        return stored, forward, settle_key if settled else None

    def add_dead_letter(self, reason: str, body: bytes) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                dead_letters.insert().values(received_at=time.time(), reason=reason, body=body)
            )
            return int(result.inserted_primary_key[0])
