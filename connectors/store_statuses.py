"""The status outbox of the WhatsApp store: delivery statuses waiting to be forwarded to the inbox.

Each status is stored by the webhook (connectors/store.py) as `pending` and leaves the outbox as
`forwarded`, or `rejected` (the inbox refused it for its content; kept as a dead letter). A status of a
message the connector sent itself (a bot reply) is stored `not_needed` and never enters the outbox.
Forwarding itself is connectors/status_forwarding.py.

The forwarder's loop (one `forward_due()` per wake-up) reads what is due, posts it, marks it
forwarded, reads again (usually nothing) and asks when the next status falls due: four transactions
per status webhook. Reads that always follow a write are done in the write's transaction and handed to
the very next call (`_hint`): `mark_forwarded` also reads the next batch (and, when there is none,
the next due time), and a `statuses_due` that finds nothing also reads the next due time. Two
transactions instead of four, the same statements. What the hint holds is what the separate
transaction would have read a moment earlier; a status stored in between is stored by this process
(its webhook wakes the forwarder, which looks again at once, as it always did for a status stored
just after its last look) or by another process (whose forwarder forwards it). Any other call on the
outbox drops the hint.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from connectors.store_schema import FORWARD_DONE, FORWARD_PENDING, FORWARD_REJECTED, dead_letters, statuses


@dataclass(frozen=True)
class StatusToForward:
    id: int
    raw: Dict[str, Any]
    attempts: int


_s = statuses.c
# Built once: parameters are bound per execution (see connectors/store.py, "hot statements").
_DUE = (
    select(_s.id, _s.raw, _s.forward_attempts)
    .where(_s.forward_state == FORWARD_PENDING, _s.next_forward_at <= bindparam("b_now"))
    .order_by(_s.id)
    .limit(bindparam("b_limit"))
)
_NEXT_DUE_TIME = (
    select(_s.next_forward_at).where(_s.forward_state == FORWARD_PENDING).order_by(_s.next_forward_at).limit(1)
)
_NO_HINT = object()


@dataclass(frozen=True)
class _Hint:
    due: Optional[Tuple[int, List["StatusToForward"]]]  # (limit, batch) for the next statuses_due
    next_time: Any  # for the next next_forward_time (_NO_HINT: not read)


class StatusOutbox:
    """Part of `WhatsAppStore` (connectors/store.py), which provides the engines."""

    engine: Engine
    _bookkeeping: Engine

    def _init_status_outbox(self) -> None:
        self._hint_lock = threading.Lock()
        self._hint: Optional[_Hint] = None
        self._due_limit = 100  # the forwarder's batch size, as last asked for

    def _take_hint(self) -> Optional[_Hint]:
        with self._hint_lock:
            hint, self._hint = self._hint, None
        return hint

    def _leave_hint(self, hint: _Hint) -> None:
        with self._hint_lock:
            self._hint = hint

    @staticmethod
    def _read_due(connection: Connection, limit: int) -> List[StatusToForward]:
        rows = connection.execute(_DUE, {"b_now": time.time(), "b_limit": limit}).all()
        return [StatusToForward(id=row.id, raw=json.loads(row.raw), attempts=row.forward_attempts) for row in rows]

    def statuses_due(self, limit: int = 100) -> List[StatusToForward]:
        hint = self._take_hint()
        self._due_limit = limit
        if hint is not None and hint.due is not None and hint.due[0] == limit:
            batch = hint.due[1]
            if not batch and hint.next_time is not _NO_HINT:
                self._leave_hint(_Hint(due=None, next_time=hint.next_time))
            return batch
        with self._bookkeeping.begin() as connection:
            batch = self._read_due(connection, limit)
            next_time = connection.execute(_NEXT_DUE_TIME).scalar() if not batch else _NO_HINT
        if not batch:
            self._leave_hint(_Hint(due=None, next_time=next_time))
        return batch

    def mark_forwarded(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        self._take_hint()
        limit = self._due_limit
        with self._bookkeeping.begin() as connection:
            connection.execute(
                update(statuses)
                .where(statuses.c.id.in_(ids))
                .values(forward_state=FORWARD_DONE, forwarded_at=time.time())
            )
            batch = self._read_due(connection, limit)  # what the forwarder asks for next
            next_time = connection.execute(_NEXT_DUE_TIME).scalar() if not batch else _NO_HINT
        self._leave_hint(_Hint(due=(limit, batch), next_time=next_time))

    def reject_forwarding(self, status_id: int, reason: str) -> None:
        """The inbox will never take this status: stop offering it, keep it as a dead letter."""
        self._take_hint()
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
        self._take_hint()
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
        hint = self._take_hint()
        if hint is not None and hint.due is None and hint.next_time is not _NO_HINT:
            return hint.next_time
        with self._bookkeeping.begin() as connection:
            return connection.execute(_NEXT_DUE_TIME).scalar()
