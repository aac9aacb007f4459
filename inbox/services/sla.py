"""Flags hand-offs whose first-response target passed without a reply — once, with a Slack ping."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from inbox.models import Conversation, Handoff
from inbox.services.conversation_store import ConversationStore
from inbox.services.periodic import run_periodically
from inbox.services.slack import slack_escape, slack_link

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)


class SlaMonitor:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def check(self) -> int:
        """Marks newly breached hand-offs; returns how many."""
        now = self.inbox.clock()
        messages = []
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            overdue = session.execute(
                select(Handoff, Conversation)
                .join(Conversation, Conversation.current_handoff_id == Handoff.id)
                .where(
                    Conversation.status == "open",
                    Handoff.first_response_at.is_(None),
                    Handoff.sla_breach_notified_at.is_(None),
                    Handoff.sla_due_at < now,
                )
            ).all()
            for handoff, conversation in overdue:
                handoff.sla_breach_notified_at = now
                waited = int((now - (conversation.handed_off_at or handoff.created_at)).total_seconds() // 60)
                owner = conversation.assignee.name if conversation.assignee else "nobody (unassigned)"
                store.add_message(
                    conversation,
                    "system",
                    f"First-response target missed: no reply {waited} min after the hand-off.",
                    now,
                )
                customer = conversation.customer
                who = slack_escape(customer.display_name)
                link = slack_link(self.inbox.settings.conversation_url(conversation.id), "Open conversation")
                messages.append(
                    f":alarm_clock: SLA breached: {who} has waited {waited} min for a first reply "
                    f"(assigned to {slack_escape(owner)}). {link}"
                )
        for message in messages:
            self.inbox.slack.notify(message)
        return len(messages)

    def run_forever(self, stop: threading.Event) -> None:
        run_periodically(self.check, stop, self.inbox.settings.inbox_sla_check_seconds, "SLA check")
