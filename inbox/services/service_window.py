"""WhatsApp's customer-service window: free-form replies are allowed for 24 hours after the customer's
last message; after that only an approved template reaches them (Meta answers free text with 131047)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inbox.models import Message

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ServiceWindow:
    last_customer_message_at: datetime | None
    now: datetime

    @property
    def closes_at(self) -> datetime | None:
        return self.last_customer_message_at + WINDOW if self.last_customer_message_at else None

    @property
    def is_open(self) -> bool:
        return self.closes_at is not None and self.now < self.closes_at

    @property
    def remaining_seconds(self) -> int:
        return max(0, int((self.closes_at - self.now).total_seconds())) if self.closes_at else 0

    def remaining_text(self) -> str:
        """'23 h 59 min left', '12 min left' (the page counts down live from `closes_at`)."""
        minutes = -(-self.remaining_seconds // 60)  # rounded up: "1 min" until it is really over
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min left" if hours else f"{minutes} min left"


def service_window(session: Session, conversation_id: int, now: datetime) -> ServiceWindow:
    """From the time of the customer's last message the inbox has (Rasa's event time, which is when the
    assistant took it: at most seconds after WhatsApp's own time unless the assistant was down)."""
    last = session.scalar(
        select(func.max(Message.created_at)).where(
            Message.conversation_id == conversation_id, Message.role == "customer"
        )
    )
    return ServiceWindow(last_customer_message_at=_aware(last), now=now)


def _aware(value) -> datetime | None:
    """func.max can lose the column type (SQLite gives a string back)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


SOURCE_LABELS = {
    "customer_first_name": "customer's first name",
    "order_number": "order number",
    "agent_first_name": "your first name",
    "none": "type it",
}


def composer_window(inbox: Inbox, session: Session, conversation, agent) -> dict:
    """What the composer shows: the window (state open / closed / unknown, closes_at for the live
    countdown, measured on the server's clock) and, when closed, the templates with their values
    filled from the conversation."""
    now = inbox.clock()
    window = service_window(session, conversation.id, now)
    state = "unknown" if window.closes_at is None else ("open" if window.is_open else "closed")
    templates = []
    if state == "closed":
        from inbox.services.templates import fill_values

        for template in inbox.templates.values():
            values = fill_values(
                template,
                customer_name=conversation.customer.name,
                order_numbers=conversation.order_numbers,
                agent_first_name=agent.first_name,
            )
            templates.append(
                {
                    "key": template.key,
                    "label": template.label,
                    "language": template.language,
                    "category": template.category,
                    "body": template.body,
                    "rendered": template.render(values),
                    "fields": [
                        {"value": value, "source": SOURCE_LABELS[parameter.source]}
                        for value, parameter in zip(values, template.parameters, strict=True)
                    ],
                }
            )
    return {"window": window, "window_state": state, "window_templates": templates, "server_now": now}
