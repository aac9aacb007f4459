"""Durable store of the WhatsApp connector (SQLite by default, PostgreSQL in production).

What it keeps, and where the code for each part is:
- every inbound message, persisted before the webhook is acknowledged, with its processing
  state (`pending` -> `processing` -> `done` | `handed_off` | `failed`; `ignored` for removed reactions, reactions
  the bot does not act on, and unknown types). The message id is unique, which is what makes
  duplicate deliveries harmless. Written here (`persist_webhook`); claimed and finished through the
  claim queue (`connectors/store_claims.py`, which states the claiming rule).
- every delivery status, with its forwarding state towards the inbox: the status outbox
  (`connectors/store_statuses.py`).
- dead letters: payloads or parts of payloads that could not be read (here).
- the outbound log, send keys and reply options (`connectors/store_outbound.py`): what was sent to
  whom, Meta's message id, and how the send ended (its delivery statuses are in the statuses table,
  joined on the message id).
The tables and states are defined once, in `connectors/store_schema.py`; `WhatsAppStore` is the one
object callers use (its methods come from the parts above).

Hot statements (run for every message) are built once at import: parameters are bound per
execution, which spares SQLAlchemy rebuilding and re-keying them each time (about half the CPU).

The methods are synchronous (SQLAlchemy 1.4 Core); async callers go through `run()`, which
uses a small thread pool so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, List, Sequence, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool

from connectors.inbound import InboundAction, InboundMessage, ReceivedMessage, Rejected, StatusUpdate
from connectors.store_claims import ClaimedMessage, ClaimQueue
from connectors.store_outbound import OutboundLog
from connectors.store_schema import (  # noqa: F401  (re-exported: callers import them from here)
    CUSTOMER_ID_LENGTH,
    DONE,
    FAILED,
    FORWARD_DONE,
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


class StoreClosed(RuntimeError):
    """The store was closed (the server is shutting down); nothing was written."""


@dataclass(frozen=True)
class PersistOutcome:
    new_messages: List[InboundMessage]  # messages stored for the first time
    duplicates: int
    new_statuses: int


_T = TypeVar("_T")

_INSERT_INBOUND = insert_unless_present(
    inbound_messages,
    ["message_id", "wa_id", "type", "state", "record", "raw", "received_at", "attempts", "finished_at"],
    conflict_on=["message_id"],
)
_INSERT_STATUS = insert_unless_present(
    statuses,
    ["message_id", "status", "recipient_id", "timestamp", "errors", "raw", "received_at", "forward_state",
     "forward_attempts", "next_forward_at"],
    conflict_on=["message_id", "status"],
)


class WhatsAppStore(ClaimQueue, StatusOutbox, OutboundLog):
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
        self._closed = False

    def _create_engine(self, sqlite_synchronous: str) -> Engine:
        assert sqlite_synchronous in ("FULL", "NORMAL")
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True, future=True, hide_parameters=True)
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
            for status in status_updates:
                inserted = connection.execute(
                    _INSERT_STATUS,
                    {
                        "message_id": status.message_id,
                        "status": status.status,
                        "recipient_id": status.recipient_id,
                        "timestamp": status.timestamp,
                        "errors": dumps(status.errors),
                        "raw": dumps(status.raw),
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
                        received_at=now, reason=item.reason, body=dumps(item.fragment).encode("utf-8")
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
