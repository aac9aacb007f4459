"""Snooze: an agent parks an open conversation until a time or until the customer writes. While
snoozed (status `snoozed`) it is off the active lists and its first-response clock is paused; it comes
back open, to the same agent, with a line in the transcript — at the time (the periodic worker) or on
the customer's message (the event stream)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from inbox.models import Agent, Conversation, Handoff, Snooze
from inbox.services.conversation_store import ConversationStore
from inbox.services.periodic import run_periodically

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

MAX_SNOOZE = timedelta(days=90)


class SnoozeError(ValueError):
    """Shown to the agent."""


def _when(at: datetime, tz) -> str:
    return at.astimezone(tz).strftime("%a %d %b %H:%M")


class Snoozing:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    @property
    def _tz(self):
        return self.inbox.assignment_engine().hours.tz

    def snooze(self, conversation_id: int, agent: Agent, until: datetime | None) -> None:
        """`until` None: until the customer writes."""
        now = self.inbox.clock()
        if until is not None and until <= now:
            raise SnoozeError("Pick a time in the future.")
        if until is not None and until - now > MAX_SNOOZE:
            raise SnoozeError("A conversation can be snoozed for at most 90 days.")
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            if conversation.status != "open":
                raise SnoozeError("Only a conversation with the team can be snoozed.")
            conversation.status = "snoozed"
            conversation.assignee_id = conversation.assignee_id or agent.id  # it comes back to someone
            conversation.waiting_since = None
            session.add(
                Snooze(conversation_id=conversation.id, agent_id=conversation.assignee_id, until=until, created_at=now)
            )
            what = f"until {_when(until, self._tz)}" if until else "until the customer replies"
            store.add_message(conversation, "system", f"Snoozed by {agent.name} {what}.", now)

    def wake(self, conversation_id: int, agent: Agent) -> None:
        """The agent's 'Wake now'."""
        with self.inbox.db.write() as session:
            conversation = ConversationStore(session).lock(conversation_id)
            if conversation.status != "snoozed":
                raise SnoozeError("This conversation is not snoozed.")
            wake_in_session(
                session, conversation, self.inbox.clock(), f"woken early by {agent.name}", "agent", self._tz
            )

    def wake_due(self) -> int:
        """One pass of the periodic worker: wakes the snoozes whose time has come."""
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            due = session.scalars(
                select(Snooze.conversation_id).where(Snooze.woke_at.is_(None), Snooze.until <= now).limit(200)
            ).all()
            for conversation_id in due:
                conversation = ConversationStore(session).lock(conversation_id)
                if conversation.status == "snoozed":
                    wake_in_session(session, conversation, now, "the snooze time has come", "time", self._tz)
                else:  # back by another way meanwhile (e.g. a new hand-off re-opened it)
                    for snooze in session.scalars(
                        select(Snooze).where(Snooze.conversation_id == conversation_id, Snooze.woke_at.is_(None))
                    ):
                        snooze.woke_at, snooze.woke_by = now, "other"
        return len(due)

    def run_forever(self, stop: threading.Event) -> None:
        run_periodically(self.wake_due, stop, self.inbox.settings.inbox_sla_check_seconds, "snooze wake-up")


def open_snooze(session: Session, conversation_id: int) -> Snooze | None:
    return session.scalars(
        select(Snooze)
        .where(Snooze.conversation_id == conversation_id, Snooze.woke_at.is_(None))
        .order_by(Snooze.id.desc())
    ).first()


def wake_in_session(session: Session, conversation: Conversation, now: datetime, why: str, by: str, tz) -> None:
    """Back to `open` with the snoozing agent; a first-response target not met yet moves on by the
    time spent snoozed (the clock was paused)."""
    snooze = open_snooze(session, conversation.id)
    conversation.status = "open"
    if snooze is not None:
        snooze.woke_at, snooze.woke_by = now, by
        paused = now - snooze.created_at
        if snooze.agent_id is not None and _active(session, snooze.agent_id):
            conversation.assignee_id = snooze.agent_id
        if conversation.first_response_at is None and conversation.sla_due_at is not None:
            conversation.sla_due_at += paused
            handoff = session.get(Handoff, conversation.current_handoff_id) if conversation.current_handoff_id else None
            if handoff is not None and handoff.first_response_at is None:
                handoff.sla_due_at += paused
    owner = conversation.assignee.name if conversation.assignee else "the queue"
    ConversationStore(session).add_message(conversation, "system", f"Back from snooze ({why}), for {owner}.", now)


def wake_for_reply(inbox: Inbox, session: Session, conversation: Conversation, agent: Agent, now: datetime) -> None:
    """An agent writes to the customer of a snoozed conversation: that ends the snooze (what the
    agent expects), with the usual line in the transcript before their message."""
    if conversation.status == "snoozed":
        why = f"{agent.name} wrote to the customer"
        wake_in_session(session, conversation, now, why, "agent", inbox.assignment_engine().hours.tz)


def _active(session: Session, agent_id: int) -> bool:
    agent = session.get(Agent, agent_id)
    return agent is not None and agent.is_active


def on_customer_message(inbox: Inbox, session: Session, conversation: Conversation, at: datetime) -> bool:
    """From the event stream: the customer wrote to a snoozed conversation, so it comes back."""
    if conversation.status != "snoozed":
        return False
    wake_in_session(session, conversation, at, "the customer wrote", "customer", inbox.assignment_engine().hours.tz)
    return True


def follow_ups(session: Session, now: datetime, tz) -> dict:
    """The 'Follow-ups due' view: snoozes coming back by the end of today, later ones, and those
    waiting for the customer."""
    end_of_today = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    rows = session.scalars(
        select(Snooze)
        .join(Conversation, Conversation.id == Snooze.conversation_id)
        .where(Snooze.woke_at.is_(None), Conversation.status == "snoozed")
        .order_by(Snooze.until.is_(None), Snooze.until, Snooze.id)
    ).all()
    today = [row for row in rows if row.until is not None and row.until < end_of_today]
    later = [row for row in rows if row.until is not None and row.until >= end_of_today]
    on_reply = [row for row in rows if row.until is None]
    return {"today": today, "later": later, "on_reply": on_reply}
