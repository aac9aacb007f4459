"""The status outbox of the WhatsApp store: delivery statuses waiting to be forwarded to the inbox.

Each status is stored by the webhook (connectors/store.py) as `pending` and leaves the outbox as
`forwarded`, or `rejected` (the inbox refused it for its content; kept as a dead letter).
Forwarding itself is connectors/status_forwarding.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from connectors.store_schema import FORWARD_DONE, FORWARD_PENDING, FORWARD_REJECTED, dead_letters, statuses


@dataclass(frozen=True)
class StatusToForward:
    id: int
    raw: Dict[str, Any]
    attempts: int


class StatusOutbox:
    """Part of `WhatsAppStore` (connectors/store.py), which provides the engines."""

    engine: Engine
    _bookkeeping: Engine

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
