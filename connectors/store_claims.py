"""The claim queue of the WhatsApp store: who handles which customer's message, in order.

A process may only claim the *oldest* unfinished message of a customer, with a compare-and-set on
its state, and holds it under a lease it keeps renewing. Two processes therefore never work on the
same customer at once, and a customer's messages are handled one after the other in arrival order.
When a process dies, its lease runs out and any process (or its own restart) takes the message over.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import List, Optional

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from connectors.inbound import InboundMessage
from connectors.prepared_statements import prepared
from connectors.privacy import mask_user_id
from connectors.store_schema import DONE, PENDING, PROCESSING, inbound_messages

logger = logging.getLogger("connectors.store")  # the name operators' log filters already use

_t = inbound_messages.c
_p = inbound_messages.alias("previous").c
# The customer's message stored just before (a CSAT comment follows a CSAT tap): read with the claim,
# which spares the dispatcher a transaction of its own for every text message.
_PREVIOUS_RECORD = (
    select(_p.record).where(_p.wa_id == _t.wa_id, _p.seq < _t.seq).order_by(_p.seq.desc()).limit(1)
    .scalar_subquery()
)
# Built once: parameters are bound per execution (see connectors/store.py, "hot statements").
_OLDEST_UNFINISHED = (
    select(_t.seq, _t.state, _t.claimed_by, _t.lease_until, _t.attempts, _t.record,
           _PREVIOUS_RECORD.label("previous_record"))
    .where(_t.wa_id == bindparam("b_wa_id"), _t.state.in_((PENDING, PROCESSING)))
    .order_by(_t.seq)
    .limit(1)
    .execution_options(**prepared("kesar_oldest"))
)
# Compare-and-set on what was read: of two racing processes only one updates the row.
_CLAIM = update(inbound_messages).where(
    _t.seq == bindparam("b_seq"), _t.state == bindparam("b_state"), _t.attempts == bindparam("b_attempts")
).execution_options(**prepared("kesar_claim"))
# What the sweep (every 0.25 s while a process has room) looks for, in one statement: a pending message,
# or a claim that ran out (its holder died). Oldest first, so a customer waiting longest is never left
# beyond the limit (two queries of up to `limit` each before, in no order).
_WITH_WORK = (
    select(_t.wa_id)
    .where((_t.state == PENDING) | ((_t.state == PROCESSING) & (_t.lease_until < bindparam("b_now"))))
    .group_by(_t.wa_id)
    .order_by(func.min(_t.seq))
    .limit(bindparam("b_limit"))
    .execution_options(**prepared("kesar_with_work"))
)
_FINISH = update(inbound_messages).where(
    _t.seq == bindparam("b_seq"), _t.claimed_by == bindparam("b_owner"), _t.state == PROCESSING
).execution_options(**prepared("kesar_finish"))


@dataclass(frozen=True)
class ClaimedMessage:
    seq: int
    message: InboundMessage
    attempts: int
    # The customer's message stored just before this one, as read with the claim (JSON; None: none).
    previous_record: Optional[str] = field(default=None, repr=False, compare=False)

    def previous_message(self) -> Optional[InboundMessage]:
        """What `ClaimQueue.previous_message(wa_id, seq)` answers, without a query of its own."""
        return InboundMessage.from_record(json.loads(self.previous_record)) if self.previous_record else None


class ClaimQueue:
    """Part of `WhatsAppStore` (connectors/store.py), which provides the engine."""

    _bookkeeping: Engine
    _each_statement: Engine  # statements that commit on their own on PostgreSQL (connectors/store.py)

    def claim_next(self, wa_id: str, owner: str, lease_seconds: float) -> Optional[ClaimedMessage]:
        """Claim the customer's oldest unfinished message, if nobody else holds it. A read, then a compare-and-set on
        what was read: on PostgreSQL each its own statement (`_each_statement`), on SQLite one write transaction."""
        with self._each_statement.begin() as connection:
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
        row = connection.execute(_OLDEST_UNFINISHED, {"b_wa_id": wa_id}).first()
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
            _CLAIM,
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
            previous_record=row.previous_record,
        )

    def previous_message(self, wa_id: str, seq: int) -> Optional[InboundMessage]:
        """The customer's message stored just before `seq` (a CSAT comment follows a CSAT tap)."""
        t = inbound_messages.c
        query = select(t.record).where(t.wa_id == wa_id, t.seq < seq).order_by(t.seq.desc()).limit(1)
        with self._bookkeeping.begin() as connection:
            row = connection.execute(query).first()
        return InboundMessage.from_record(json.loads(row.record)) if row else None

    def finish(self, seq: int, owner: str, *, state: str = DONE, error: Optional[str] = None) -> bool:
        with self._each_statement.begin() as connection:  # one statement
            return self._finish(connection, seq, owner, state, error)

    def _finish(self, connection: Connection, seq: int, owner: str, state: str, error: Optional[str]) -> bool:
        finished = connection.execute(
            _FINISH,
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
        """Customers with a pending message, or one whose claim ran out; those waiting longest first."""
        with self._each_statement.begin() as connection:  # one statement
            return list(connection.execute(_WITH_WORK, {"b_now": time.time(), "b_limit": limit}).scalars())
