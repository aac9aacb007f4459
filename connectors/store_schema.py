"""The WhatsApp connector store's tables, states and schema creation (one definition for every part).

The store's parts (`connectors/store.py` and the `store_*` modules) share these tables; the customer
identities (`connectors/customer_identities.py`) add theirs to the same `metadata`.
"""

from __future__ import annotations

import json
from typing import Any, List

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
    text,
)
from sqlalchemy.engine import Engine

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
# A status of a message this connector sent (a bot reply): nothing in the inbox acts on it, so it is not
# forwarded (connectors/store.py, `_INSERT_STATUS_TO_FORWARD`).
FORWARD_NOT_NEEDED = "not_needed"

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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def insert_unless_present(table: Table, columns: List[str], conflict_on: List[str]) -> Any:
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


def create_schema(engine: Engine) -> None:
    """Creates the missing tables.

    Several processes (Sanic workers) may do this at the same moment on a fresh database. The
    check for existing tables and the creation run under one database-wide lock, so the
    second process waits and then finds the tables, instead of crashing on "already exists".
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
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
