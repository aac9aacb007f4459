"""WhatsApp's customer-service window: free-form replies are allowed for 24 hours after the customer's
last message; after that only an approved template reaches them (Meta answers free text with 131047)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inbox.models import Message

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
