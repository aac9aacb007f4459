"""Blue ticks and "typing…" for customers while agents handle their conversation.

WhatsApp has one call for both: POST /messages `{"status": "read", "message_id": <customer's wamid>}`,
plus `"typing_indicator": {"type": "text"}` for "typing…" (shown up to 25 s or until the reply).
Marking a message read marks the earlier ones read too, so only the customer's latest is sent. Each
team chooses in inbox/config/read_receipts.yml; nothing is retried (a missed tick is harmless)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from inbox.models import Conversation, Message, Team
from inbox.services.whatsapp import WhatsAppSendError
from inbox.services.yaml_config import load_yaml_model
from inbox.settings import INBOX_DIR

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)

DEFAULT_READ_RECEIPTS_PATH = INBOX_DIR / "config" / "read_receipts.yml"
WAMID_LIMIT = 128  # messages.whatsapp_message_id


class TeamPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mark_read_on_open: bool = True
    typing_indicator: bool = True


class ReadReceiptConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: TeamPolicy = TeamPolicy()
    teams: dict[str, TeamPolicy] = Field(default_factory=dict)
    typing_refresh_seconds: float = Field(default=20, ge=1, le=25)

    def policy(self, team_name: str | None) -> TeamPolicy:
        return self.teams.get(team_name or "", self.default)


class ReadReceiptConfigError(ValueError):
    pass


def load_read_receipt_config(path: Path = DEFAULT_READ_RECEIPTS_PATH) -> ReadReceiptConfig:
    return load_yaml_model(path, ReadReceiptConfig, ReadReceiptConfigError)


def customer_message_id(event_data: dict) -> str | None:
    """The WhatsApp id of a customer's message, from the connector's metadata in Rasa's event."""
    wamid = ((event_data.get("metadata") or {}).get("whatsapp") or {}).get("message_id")
    return wamid if isinstance(wamid, str) and wamid and len(wamid) <= WAMID_LIMIT else None


def remember_customer_message_id(session, message: Message, event_data: dict, new_ids: set[str] | None = None) -> None:
    """Keeps the WhatsApp id of a customer's message unless another message has it. `new_ids`: ids the
    caller found on no message (the event stream asks once per batch); each is taken out when given,
    and an id not in it is looked up."""
    wamid = customer_message_id(event_data)
    if message.whatsapp_message_id or wamid is None:
        return
    if new_ids is not None and wamid in new_ids:
        new_ids.discard(wamid)
        message.whatsapp_message_id = wamid
        return
    if session.scalar(select(Message.id).where(Message.whatsapp_message_id == wamid)) is None:
        message.whatsapp_message_id = wamid


class ReadReceipts:
    """One per inbox process: remembers what it marked read and when it last passed typing on."""

    def __init__(self, inbox: Inbox, config: ReadReceiptConfig):
        self.inbox = inbox
        self.config = config
        self._lock = threading.Lock()
        self._marked: dict[int, str] = {}  # conversation id -> the wamid last marked read
        self._typing_sent_at: dict[int, datetime] = {}

    def _latest(self, conversation_id: int) -> tuple[str, TeamPolicy] | None:
        """The customer's latest WhatsApp message id and the team's policy, for a conversation the team has."""
        with self.inbox.db.read() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.status != "open" or conversation.channel != "whatsapp":
                return None  # the bot's conversations: the connector marks those read itself
            team = session.get(Team, conversation.team_id) if conversation.team_id else None
            wamid = session.scalar(
                select(Message.whatsapp_message_id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.role == "customer",
                    Message.whatsapp_message_id.is_not(None),
                )
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(1)
            )
        return (wamid, self.config.policy(team.name if team else None)) if wamid else None

    def on_open(self, conversation_id: int) -> str:
        """An agent opened the conversation: mark its new customer messages read, if the team wants it."""
        latest = self._latest(conversation_id)
        if latest is None:
            return "nothing"
        wamid, policy = latest
        if not policy.mark_read_on_open:
            return "off"
        with self._lock:
            if self._marked.get(conversation_id) == wamid:
                return "already"
            self._marked[conversation_id] = wamid
        return self._send(conversation_id, wamid, typing=False)

    def on_typing(self, conversation_id: int) -> str:
        """The agent is typing: "typing…" for the customer, at most once per `typing_refresh_seconds`."""
        latest = self._latest(conversation_id)
        if latest is None:
            return "nothing"
        wamid, policy = latest
        if not policy.typing_indicator:
            return "off"
        now = self.inbox.clock()
        with self._lock:
            last = self._typing_sent_at.get(conversation_id)
            if last is not None and now - last < timedelta(seconds=self.config.typing_refresh_seconds):
                return "throttled"
            self._typing_sent_at[conversation_id] = now
            self._marked[conversation_id] = wamid
        return self._send(conversation_id, wamid, typing=True)

    def reply_sent(self, conversation_id: int) -> None:
        """WhatsApp hides "typing…" when the reply arrives: the next keystroke may show it again."""
        with self._lock:
            self._typing_sent_at.pop(conversation_id, None)

    def _send(self, conversation_id: int, wamid: str, *, typing: bool) -> str:
        try:
            self.inbox.whatsapp.mark_read(wamid, typing=typing)
        except WhatsAppSendError as error:
            logger.warning(
                "conversation %s: could not mark the customer's message read%s: %s",
                conversation_id,
                " with typing" if typing else "",
                error.reason,
            )
            return "failed"
        return "typing" if typing else "marked"
