"""Auto-resolve: a hand-off whose last message is the agent's and where the customer has said nothing
for `auto_resolve_after_hours` (inbox/config/csat.yml) is resolved and handed back to the bot through
the same path as an agent's Resolve, so the customer never talks to a paused bot."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select

from inbox.models import Conversation, Message
from inbox.services.conversation_store import ConversationStore
from inbox.services.csat import CsatSurveys
from inbox.services.periodic import run_periodically
from inbox.services.resolution import ResolveAndHandBack, ResolveError
from inbox.services.service_window import _aware

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Inbox:
    """Who resolves, for the transcript line of the shared resolve path."""

    name: str = "the inbox"


class AutoResolver:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def idle_conversations(self) -> list[int]:
        hours = self.inbox.csat_config.auto_resolve_after_hours
        if not hours:
            return []
        cutoff = self.inbox.clock() - timedelta(hours=hours)
        last = (
            select(Message.conversation_id, Message.role, func.max(Message.created_at).label("at"))
            # A reply that failed did not reach the customer: it does not count as the agent's answer.
            .where(or_(Message.role == "customer", and_(Message.role == "agent", Message.delivery_status != "failed")))
            .group_by(Message.conversation_id, Message.role)
            .subquery()
        )
        with self.inbox.db.read() as session:
            rows = session.execute(
                select(Conversation.id, last.c.role, last.c.at)
                .join(last, last.c.conversation_id == Conversation.id)
                .where(Conversation.status == "open", Conversation.first_response_at.is_not(None))
            ).all()
        latest: dict[int, dict[str, object]] = {}
        for conversation_id, role, at in rows:
            latest.setdefault(conversation_id, {})[role] = at
        idle = []
        for conversation_id, times in latest.items():
            agent_at, customer_at = _aware(times.get("agent")), _aware(times.get("customer"))
            if agent_at is None or agent_at > cutoff:
                continue
            if customer_at is None or customer_at < agent_at:
                idle.append(conversation_id)
        return sorted(idle)

    def check(self) -> int:
        hours = self.inbox.csat_config.auto_resolve_after_hours
        resolved = 0
        for conversation_id in self.idle_conversations():
            try:
                ResolveAndHandBack(self.inbox).resolve(conversation_id, _Inbox())
            except ResolveError as error:
                logger.warning("auto-resolve of conversation %s: %s", conversation_id, error)
                continue
            with self.inbox.db.write() as session:
                conversation = ConversationStore(session).lock(conversation_id)
                ConversationStore(session).add_message(
                    conversation,
                    "system",
                    f"Auto-resolved: the customer has not written for {hours:g} h since the agent's last reply; "
                    "the bot has the conversation again.",
                    self.inbox.clock(),
                )
            CsatSurveys(self.inbox).after_resolve(conversation_id)
            resolved += 1
        return resolved

    def run_forever(self, stop: threading.Event) -> None:
        run_periodically(self.check, stop, self.inbox.settings.inbox_sla_check_seconds, "auto-resolve")
