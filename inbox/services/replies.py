"""Agent replies out through WhatsApp, and the delivery statuses that come back."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from inbox.models import Agent, Conversation, Handoff, Message
from inbox.services.conversation_store import ConversationStore
from inbox.services.whatsapp import WhatsAppSendError, explain_error

MAX_REPLY_LENGTH = 4096  # WhatsApp's limit for a text message body
DELIVERY_RANK = {"sending": 0, "accepted": 1, "sent": 2, "delivered": 3, "read": 4}


class ReplyError(ValueError):
    """The reply cannot be sent; the message says why (shown to the agent, text kept)."""


def record_first_response(inbox, conversation: Conversation, session, at: datetime) -> None:
    if conversation.first_response_at is not None or conversation.status != "open":
        return
    conversation.first_response_at = at
    handoff = session.get(Handoff, conversation.current_handoff_id) if conversation.current_handoff_id else None
    if handoff is not None and handoff.first_response_at is None:
        handoff.first_response_at = at
        start = conversation.handed_off_at or handoff.created_at
        handoff.first_response_business_seconds = inbox.assignment_engine().hours.business_seconds_between(start, at)


class AgentReplies:
    def __init__(self, inbox):
        self.inbox = inbox

    def send(self, conversation_id: int, agent: Agent, text: str) -> Message:
        text = text.strip()
        if not text:
            raise ReplyError("The reply is empty.")
        if len(text) > MAX_REPLY_LENGTH:
            raise ReplyError(
                f"WhatsApp messages can have at most {MAX_REPLY_LENGTH} characters (this one has {len(text)})."
            )
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            self._check_deliverable(conversation)
            message = store.add_message(
                conversation, "agent", text, self.inbox.clock(), agent_id=agent.id, delivery_status="sending"
            )
            session.flush()
            message_id = message.id
        return self._deliver(message_id)

    def retry(self, message_id: int, agent: Agent) -> Message:
        with self.inbox.db.write() as session:
            message = session.get(Message, message_id)
            if message is None or message.role != "agent":
                raise ReplyError("There is no such reply.")
            if message.delivery_status != "failed":
                raise ReplyError("Only a failed reply can be sent again.")
            conversation = ConversationStore(session).lock(message.conversation_id)
            self._check_deliverable(conversation)
            message.delivery_status, message.delivery_error, message.delivery_error_code = "sending", None, None
            message.agent_id = agent.id
        return self._deliver(message_id)

    @staticmethod
    def _check_deliverable(conversation: Conversation) -> None:
        if conversation.channel != "whatsapp":
            raise ReplyError(
                f"This conversation came in on the '{conversation.channel}' channel; "
                "agent replies can only be delivered on WhatsApp."
            )
        if conversation.status != "open":
            raise ReplyError("The bot has this conversation. Replies are possible while it is handed over to the team.")

    def _deliver(self, message_id: int) -> Message:
        """Calls WhatsApp outside any transaction, then records the outcome."""
        with self.inbox.db.read() as session:
            message = session.get(Message, message_id)
            conversation = session.get(Conversation, message.conversation_id)
            to, body = conversation.customer.external_id, message.text
        try:
            whatsapp_id, failure = self.inbox.whatsapp.send_text(to, body), None
        except WhatsAppSendError as error:
            whatsapp_id, failure = None, error
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            message = session.get(Message, message_id)
            conversation = store.lock(message.conversation_id)
            message.delivery_updated_at = now
            if failure is not None:
                message.delivery_status = "failed"
                message.delivery_error_code = failure.code
                message.delivery_error = failure.reason[:500]
            else:
                message.whatsapp_message_id = whatsapp_id
                message.delivery_status = "accepted"
                record_first_response(self.inbox, conversation, session, now)
                conversation.waiting_since = None
                if conversation.assignee_id is None and conversation.status == "open":
                    conversation.assignee_id = message.agent_id  # whoever answers a queued conversation owns it
            store.touch(conversation)
        return message


class DeliveryStatuses:
    """Applies Meta's status objects (forwarded by the connector) to the replies the inbox sent."""

    def __init__(self, inbox):
        self.inbox = inbox

    def apply(self, statuses) -> int:
        matched = 0
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            for status in statuses:
                message = session.scalars(select(Message).where(Message.whatsapp_message_id == status.id)).one_or_none()
                if message is None:
                    continue  # not sent by the inbox (e.g. a bot message)
                matched += 1
                if self._apply_one(message, status):
                    store.touch(store.lock(message.conversation_id))
        return matched

    def _apply_one(self, message: Message, status) -> bool:
        at = _status_time(status.timestamp) or self.inbox.clock()
        if status.status == "failed":
            if message.delivery_status in ("delivered", "read"):
                return False
            error = status.errors[0] if status.errors else {}
            details = (
                (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
            )
            code = error.get("code") if isinstance(error.get("code"), int) else None
            message.delivery_status = "failed"
            message.delivery_error_code = code
            message.delivery_error = explain_error(code, details or error.get("message") or error.get("title"))[:500]
            message.delivery_updated_at = at
            return True
        new_rank = DELIVERY_RANK.get(status.status)
        if new_rank is None or new_rank <= DELIVERY_RANK.get(message.delivery_status or "sending", 0):
            return False  # unknown status, or older than what we know (webhooks arrive out of order)
        message.delivery_status = status.status
        message.delivery_error = message.delivery_error_code = None
        message.delivery_updated_at = at
        return True


def _status_time(raw) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError):
        return None
