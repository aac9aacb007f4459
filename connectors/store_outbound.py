"""The outbound side of the WhatsApp store: the log of what was sent, the send keys that keep a reply
from being POSTed twice (connectors/send_keys.py), and reply options (button payloads too long for
WhatsApp's id field, stored under a short key).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection, Engine

from connectors.prepared_statements import prepared
from connectors.store_schema import (
    REPLY_OPTION_PREFIX,
    SEND_FAILED,
    SEND_SENDING,
    SEND_SENT,
    SEND_UNKNOWN,
    dumps,
    insert_unless_present,
    outbound_messages,
    reply_options,
    send_keys,
)

# Built once: parameters are bound per execution (see connectors/store.py, "hot statements").
_INSERT_OUTBOUND = outbound_messages.insert().execution_options(**prepared("kesar_outbound"))
_INSERT_SEND_KEY = insert_unless_present(
    send_keys, ["key", "recipient_id", "state", "created_at", "updated_at"], conflict_on=["key"]
).execution_options(**prepared("kesar_send_key"))

_OUTBOUND_COLUMNS = ["wamid", "recipient_id", "kind", "request", "state", "http_status", "error_code", "error_title",
                     "attempts", "created_at"]
for _name in _OUTBOUND_COLUMNS:
    outbound_messages.c[_name]  # a typo in a column name fails at import
# PostgreSQL: a reply's outbound log row and its send key's outcome in one statement (the WITH's INSERT runs to
# completion whether or not anything reads it). `sent` is final, as in `_settle_send_key`.
_LOG_AND_SETTLE = text(
    f"WITH logged AS (INSERT INTO {outbound_messages.name} ({', '.join(_OUTBOUND_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _OUTBOUND_COLUMNS)})) "
    f"UPDATE {send_keys.name} SET state = :key_state, wamid = :wamid, updated_at = :created_at "
    f"WHERE key = :send_key AND state != '{SEND_SENT}'"
).execution_options(**prepared("kesar_log_settle"))


def _outcome(wamid: Optional[str], uncertain: bool) -> str:
    """A send key's state after its send: `sent` with Meta's id, else `unknown` when the request may have reached
    Meta, else `failed`."""
    return SEND_SENT if wamid else (SEND_UNKNOWN if uncertain else SEND_FAILED)


class KnownSentKeys:
    """Send keys this process knows to be `sent` in the store: it wrote `sent` itself, or its status
    update changed the row to `sent`, or storing a status found the key `sent` (PostgreSQL,
    connectors/store.py `_store_and_settle_status`). `sent` is final (no statement ever moves a key away from it:
    `claim_send_key` retakes only `failed` and stale `sending`/`unknown` keys, and `settle_send_key`
    leaves a `sent` key alone), so a status echoing such a key needs no UPDATE: it would change nothing. Meta
    sends three statuses (sent, delivered, read) per reply, each echoing the key. Bounded: when full
    it starts again empty (a forgotten key only costs the UPDATE again)."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._keys: Dict[str, None] = {}
        self._lock = threading.Lock()

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                if len(self._keys) >= self.LIMIT:
                    self._keys.clear()
                self._keys[key] = None

    def __contains__(self, key: str) -> bool:
        return key in self._keys


class OutboundLog:
    """Part of `WhatsAppStore` (connectors/store.py), which provides the engines."""

    engine: Engine
    _bookkeeping: Engine
    _each_statement: Engine  # statements that commit on their own on PostgreSQL (connectors/store.py)
    _autocommit: Optional[Engine]  # PostgreSQL's autocommit engine (connectors/store.py); None on SQLite
    _insert: Callable[..., Any]  # the dialect's insert (on-conflict support)
    _known_sent: KnownSentKeys

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
        send_key: Optional[str] = None,
        uncertain: bool = False,
    ) -> None:
        """Logs a send; with `send_key`, also settles that key from the send's outcome (what
        `settle_send_key` does) in the same transaction: one commit per reply instead of two. If the
        transaction fails, neither is written (the caller then settles the key on its own). On PostgreSQL
        both are one statement (`_LOG_AND_SETTLE`), committed on its own: one round trip instead of four."""
        now = time.time()
        values = {
            "wamid": wamid,
            "recipient_id": recipient_id,
            "kind": kind,
            "request": dumps(request),
            "state": "sent" if wamid else "failed",
            "http_status": http_status,
            "error_code": error_code,
            "error_title": error_title,
            "attempts": attempts,
            "created_at": now,
        }
        state = _outcome(wamid, uncertain) if send_key else None
        if self._autocommit is not None:
            with self._autocommit.begin() as connection:
                if send_key:
                    connection.execute(_LOG_AND_SETTLE, {**values, "send_key": send_key, "key_state": state})
                else:
                    connection.execute(_INSERT_OUTBOUND, values)
        else:
            with self._bookkeeping.begin() as connection:
                connection.execute(_INSERT_OUTBOUND, values)
                if send_key:
                    self._settle_send_key(connection, send_key, wamid, uncertain)
        if state == SEND_SENT:
            self._known_sent.add([send_key])  # after the commit

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
        # Usually the INSERT alone. Each step stands on its own (an insert unless present, a compare-and-set,
        # a read): on PostgreSQL each commits by itself (`_each_statement`), the key `sending` before the POST.
        with self._each_statement.begin() as connection:
            inserted = connection.execute(
                _INSERT_SEND_KEY,
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
        if row.state == SEND_SENT:
            self._known_sent.add([key])
        return row.state, row.wamid, max(0.0, row.updated_at + settle_seconds - now)

    def settle_send_key(self, key: str, wamid: Optional[str], uncertain: bool) -> None:
        with self._bookkeeping.begin() as connection:
            state = self._settle_send_key(connection, key, wamid, uncertain)
        if state == SEND_SENT:
            self._known_sent.add([key])  # after the commit

    @staticmethod
    def _settle_send_key(connection: Connection, key: str, wamid: Optional[str], uncertain: bool) -> str:
        state = _outcome(wamid, uncertain)
        # `sent` is final: a process whose send of a retaken key ended otherwise does not undo what
        # another process (or a status from Meta) settled (and KnownSentKeys relies on it).
        connection.execute(
            update(send_keys)
            .where(send_keys.c.key == key, send_keys.c.state != SEND_SENT)
            .values(state=state, wamid=wamid, updated_at=time.time())
        )
        return state

    def keys_not_known_sent(self, keyed: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
        """The (key, wamid) pairs whose key this process does not know to be `sent` (no database work)."""
        return [(key, wamid) for key, wamid in keyed if key not in self._known_sent]

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
