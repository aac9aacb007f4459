"""Agent replies out through WhatsApp, and the delivery statuses that come back."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from inbox.models import Agent, Conversation, Customer, Handoff, Message
from inbox.services.conversation_store import ConversationStore
from inbox.services.media import send_claimed
from inbox.services.periodic import run_periodically
from inbox.services.privacy import is_bsuid
from inbox.services.service_window import service_window
from inbox.services.snooze import wake_for_reply
from inbox.services.templates import TemplateError
from inbox.services.whatsapp import WhatsAppSendError, WhatsAppSendUnconfirmed, explain_error

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)

MAX_REPLY_LENGTH = 4096  # WhatsApp's limit for a text message body
DELIVERY_RANK = {"sending": 0, "unconfirmed": 0, "accepted": 1, "sent": 2, "delivered": 3, "read": 4}
# Waits of the recovery loop between attempts of a reply Meta certainly did not get (no connection,
# 5xx, rate limits); after the last one the reply is marked failed with the reason (about 15 minutes
# in all, well inside the 24-hour window). Each attempt itself tries a few times within a second or two.
RETRY_DELAYS = [timedelta(seconds=seconds) for seconds in (30, 60, 120, 240, 480)]
SEND_KEY_PREFIX = "kl-reply-"


class ReplyError(ValueError):
    """The reply cannot be sent; the message says why (shown to the agent, text kept)."""


def record_first_response(inbox: Inbox, conversation: Conversation, session, at: datetime) -> None:
    if conversation.first_response_at is not None or conversation.status != "open":
        return
    conversation.first_response_at = at
    handoff = session.get(Handoff, conversation.current_handoff_id) if conversation.current_handoff_id else None
    if handoff is not None and handoff.first_response_at is None:
        handoff.first_response_at = at
        start = conversation.handed_off_at or handoff.created_at
        handoff.first_response_business_seconds = inbox.assignment_engine().hours.business_seconds_between(start, at)


class AgentReplies:
    """Sends agent replies at most once each.

    `sending`: not sent yet (a retry is due at `next_attempt_at`). `unconfirmed`: an attempt is in flight
    or its outcome is unknown; it is never POSTed again blindly, a status webhook carrying the reply's
    `send_key` confirms it, else the recovery loop marks it failed after the confirmation window."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def send_template(self, conversation_id: int, agent: Agent, template_key: str, values: list[str]) -> Message:
        """An approved template (inbox/config/templates.yml) with the agent's parameter values: the way
        to reach a customer whose 24-hour window has closed. Stored with its rendered text."""
        template = self.inbox.templates.get(template_key)
        if template is None:
            raise ReplyError("There is no such template (inbox/config/templates.yml).")
        try:
            values = template.check_values(values)
        except TemplateError as error:
            raise ReplyError(str(error)) from None
        spec = {"name": template.name, "language": template.language, "values": values}
        return self._store_and_deliver(conversation_id, agent, template.render(values), template=spec)

    def send(self, conversation_id: int, agent: Agent, text: str) -> Message:
        text = text.strip()
        if not text:
            raise ReplyError("The reply is empty.")
        if len(text) > MAX_REPLY_LENGTH:
            raise ReplyError(
                f"WhatsApp messages can have at most {MAX_REPLY_LENGTH} characters (this one has {len(text)})."
            )
        return self._store_and_deliver(conversation_id, agent, text)

    def _store_and_deliver(self, conversation_id: int, agent: Agent, text: str, template: dict | None = None):
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            wake_for_reply(self.inbox, session, conversation, agent, now)
            self._check_deliverable(conversation)
            if template is None:
                self._check_window(session, conversation_id, now)
            message = store.add_message(
                conversation,
                "agent",
                text,
                now,
                template=template,
                agent_id=agent.id,
                delivery_status="sending",
                send_key=new_send_key(),
                # The recovery loop takes over if this request dies before its first attempt.
                next_attempt_at=now + RETRY_DELAYS[0],
            )
            session.flush()
            message_id = message.id
        return self._deliver(message_id, scheduled=False)

    def retry(self, message_id: int, agent: Agent) -> Message:
        """The agent's Retry: sends a failed reply again (same send key, attempts counted afresh)."""
        with self.inbox.db.write() as session:
            message = session.get(Message, message_id)
            if message is None or message.role != "agent":
                raise ReplyError("There is no such reply.")
            if message.delivery_status != "failed":
                raise ReplyError("Only a failed reply can be sent again.")
            conversation = ConversationStore(session).lock(message.conversation_id)
            wake_for_reply(self.inbox, session, conversation, agent, self.inbox.clock())
            self._check_deliverable(conversation)
            if message.template is None:
                self._check_window(session, conversation.id, self.inbox.clock())
            message.delivery_status, message.delivery_error, message.delivery_error_code = "sending", None, None
            message.send_key = message.send_key or new_send_key()
            message.send_attempts = 0
            message.next_attempt_at = self.inbox.clock() + RETRY_DELAYS[0]
            message.agent_id = agent.id
        return self._deliver(message_id, scheduled=False)

    def recover(self) -> int:
        """One pass of the recovery loop: retries replies whose next attempt is due and gives up on
        unconfirmed ones whose confirmation window passed. Returns how many replies it acted on."""
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            due = session.execute(
                select(Message.id, Message.delivery_status)
                .where(
                    Message.role == "agent",
                    Message.delivery_status.in_(("sending", "unconfirmed")),
                    Message.next_attempt_at <= now,
                )
                .order_by(Message.next_attempt_at)
                .limit(100)
            ).all()
            store = ConversationStore(session)
            for message_id, status in due:
                if status == "unconfirmed":
                    message = session.get(Message, message_id)
                    store.lock(message.conversation_id)  # a status webhook may be confirming it right now
                    session.refresh(message)
                    if message.delivery_status != "unconfirmed":
                        continue
                    self._fail(
                        store,
                        message,
                        now,
                        "WhatsApp did not confirm whether this reply was sent (the request timed out or was cut off). "
                        "It may have reached the customer: check the chat before retrying.",
                    )
        for message_id, status in due:
            if status == "sending":
                self._deliver(message_id, scheduled=True)
        return len(due)

    def run_forever(self, stop: threading.Event) -> None:
        run_periodically(self.recover, stop, self.inbox.settings.inbox_reply_check_seconds, "reply recovery")

    @staticmethod
    def _check_window(session, conversation_id: int, now: datetime) -> None:
        """Free text after the 24-hour window would only come back as WhatsApp's 131047. When the inbox
        has no customer message at all it cannot know the window, and lets WhatsApp decide."""
        window = service_window(session, conversation_id, now)
        if window.closes_at is not None and not window.is_open:
            raise ReplyError(
                "The customer's 24-hour window has closed, so WhatsApp only delivers an approved template. "
                "Pick one under 'Send a template'; the customer's answer opens the window again."
            )

    @staticmethod
    def _check_deliverable(conversation: Conversation) -> None:
        if conversation.channel != "whatsapp":
            raise ReplyError(
                f"This conversation came in on the '{conversation.channel}' channel; "
                "agent replies can only be delivered on WhatsApp."
            )
        if conversation.status != "open":
            raise ReplyError("The bot has this conversation. Replies are possible while it is handed over to the team.")

    def _claim(self, message_id: int, scheduled: bool) -> dict | None:
        """Marks one attempt as started (committed before the POST, so a crash mid-send leaves the
        reply `unconfirmed`, never re-sent blindly). None when someone else has it or it is not due."""
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            message = session.get(Message, message_id)
            if message is None:
                return None
            ConversationStore(session).lock(message.conversation_id)
            session.refresh(message)
            if message.delivery_status != "sending":
                return None
            if scheduled and message.next_attempt_at is not None and message.next_attempt_at > now:
                return None
            conversation = session.get(Conversation, message.conversation_id)
            message.delivery_status = "unconfirmed"
            message.send_attempts = (message.send_attempts or 0) + 1
            message.next_attempt_at = now + timedelta(seconds=self.inbox.settings.inbox_reply_confirm_seconds)
            message.send_key = message.send_key or new_send_key()
            claim = {"send_key": message.send_key, **reply_address(conversation.customer)}
            if message.template:  # re-sent as the same template, never as free text
                return claim | {"template": template_payload(self.inbox, message.template)}
            return claim | {"body": message.text}

    def _deliver(self, message_id: int, *, scheduled: bool) -> Message:
        """Calls WhatsApp outside any transaction, then records the outcome."""
        claim = self._claim(message_id, scheduled)
        if claim is not None:
            try:
                if "template" in claim:
                    whatsapp_id, failure, unconfirmed = self.inbox.whatsapp.send_template(**claim), None, None
                else:
                    whatsapp_id, failure, unconfirmed = send_claimed(self.inbox, message_id, claim), None, None
            except WhatsAppSendError as error:
                whatsapp_id, failure, unconfirmed = None, error, None
            except WhatsAppSendUnconfirmed as error:
                whatsapp_id, failure, unconfirmed = None, None, error
            self._record(message_id, whatsapp_id, failure, unconfirmed)
        with self.inbox.db.read() as session:
            message = session.get(Message, message_id)
            session.expunge(message)
            return message

    def _record(self, message_id, whatsapp_id, failure, unconfirmed) -> None:
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            message = session.get(Message, message_id)
            store.lock(message.conversation_id)
            session.refresh(message)
            if message.delivery_status != "unconfirmed" or message.whatsapp_message_id:
                return  # a status webhook with our key got here first
            if whatsapp_id is not None:
                mark_accepted(self.inbox, store, message, whatsapp_id, now)
            elif unconfirmed is not None:
                message.delivery_error = unconfirmed.reason[:500]  # shown while we wait for the status webhook
                logger.warning(
                    "reply %s: %s Waiting for a status webhook with its key.", message.id, unconfirmed.reason
                )
            elif failure.retryable and message.send_attempts < len(RETRY_DELAYS) + 1:
                delay = RETRY_DELAYS[min(message.send_attempts - 1, len(RETRY_DELAYS) - 1)]
                message.delivery_status = "sending"
                message.delivery_error, message.delivery_error_code = failure.reason[:500], failure.code
                message.next_attempt_at = now + delay
                message.delivery_updated_at = now
                store.touch(store.lock(message.conversation_id))
                logger.warning(
                    "reply %s not sent (attempt %s): %s; next attempt in %s s",
                    message.id,
                    message.send_attempts,
                    failure.reason,
                    int(delay.total_seconds()),
                )
            else:
                reason = failure.reason
                if failure.retryable:
                    reason = f"Gave up after {message.send_attempts} attempts: {reason}"
                self._fail(store, message, now, reason, failure.code)

    @staticmethod
    def _fail(store: ConversationStore, message: Message, now: datetime, reason: str, code: int | None = None) -> None:
        message.delivery_status = "failed"
        message.delivery_error_code = code
        message.delivery_error = reason[:500]
        message.delivery_updated_at = now
        message.next_attempt_at = None
        store.touch(store.lock(message.conversation_id))
        logger.warning("reply %s failed: %s", message.id, reason)


def template_payload(inbox: Inbox, spec: dict) -> dict:
    """The Graph API template object of a stored template reply."""
    template = inbox.templates.get(f"{spec['name']}:{spec['language']}")
    if template is not None:
        return template.graph_payload(list(spec["values"]))
    # Removed from templates.yml since: send what was stored (WhatsApp says whether it still exists).
    parameters = [{"type": "text", "text": value} for value in spec["values"]]
    payload = {"name": spec["name"], "language": {"code": spec["language"]}}
    return payload | ({"components": [{"type": "body", "parameters": parameters}]} if parameters else {})


def new_send_key() -> str:
    return f"{SEND_KEY_PREFIX}{uuid.uuid4().hex}"


def reply_address(customer: Customer) -> dict:
    """`to` = the phone when the customer has one, else `recipient` = their business-scoped user id."""
    if customer.phone_digits:
        return {"to": customer.phone_digits}
    if customer.bsuid:
        return {"recipient": customer.bsuid}
    if is_bsuid(customer.external_id):
        return {"recipient": customer.external_id}
    return {"to": customer.external_id}


def mark_accepted(inbox: Inbox, store: ConversationStore, message: Message, whatsapp_id: str, now: datetime) -> None:
    """Meta has the reply: store its id, count the first response, hand a queued conversation to the sender."""
    conversation = store.lock(message.conversation_id)
    message.whatsapp_message_id = whatsapp_id
    message.delivery_status = "accepted"
    message.delivery_error = message.delivery_error_code = None
    message.next_attempt_at = None
    message.delivery_updated_at = now
    record_first_response(inbox, conversation, store.session, now)
    conversation.waiting_since = None
    if conversation.assignee_id is None and conversation.status == "open":
        conversation.assignee_id = message.agent_id  # whoever answers a queued conversation owns it
    store.touch(conversation)


class DeliveryStatuses:
    """Applies Meta's status objects (forwarded by the connector) to the replies the inbox sent."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def apply(self, statuses) -> int:
        from inbox.services.csat import apply_question_status  # csat imports this module

        if not self._may_be_ours(statuses):
            return 0  # statuses of messages the inbox did not send (the connector forwards few since session 15)
        matched = 0
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            ids = list(dict.fromkeys(status.id for status in statuses))
            by_id = {
                message.whatsapp_message_id: message
                for message in session.scalars(select(Message).where(Message.whatsapp_message_id.in_(ids)))
            }
            for status in statuses:
                message = by_id.get(status.id)
                if message is None:
                    message = self._confirmed_by_key(store, status)
                    if message is not None:
                        by_id[status.id] = message  # it has this id now: a later status of the batch finds it
                if message is None:
                    # A satisfaction question's status (by its send key), else not sent by the inbox (a bot message).
                    matched += apply_question_status(self.inbox, session, status)
                    continue
                matched += 1
                if self._apply_one(message, status):
                    store.touch(store.lock(message.conversation_id))
        return matched

    def _may_be_ours(self, statuses) -> bool:
        """Whether any status can change something here: one carrying the inbox's send key (`kl-reply-…`: every
        agent reply and satisfaction question sends one, and Meta echoes it in each of the message's statuses),
        or one whose id is a stored message's. Since session 15 the connector no longer forwards the statuses of the
        bot's own replies (connectors/README.md, "Statuses"); a keyless one that beats its send's log row, or another
        sender's, can still arrive, and such a batch costs one read and no write transaction (issue 16); any other
        goes on as before. Without a key a status can only
        match by its id, and the read asks exactly that, as the write transaction would (read committed)."""
        if any(_send_key(status) is not None for status in statuses):
            return True
        ids = list(dict.fromkeys(status.id for status in statuses))
        if not ids:
            return False
        with self.inbox.db.read() as session:
            known = select(Message.id).where(Message.whatsapp_message_id.in_(ids)).limit(1)
            return session.scalar(known) is not None

    def _confirmed_by_key(self, store: ConversationStore, status) -> Message | None:
        """A reply whose send timed out (no `wamid` yet) learns it from the first status that carries
        its send key: Meta did send it, so it must not be sent again."""
        key = _send_key(status)
        if key is None:
            return None
        message = store.session.scalars(select(Message).where(Message.send_key == key)).one_or_none()
        if message is None:
            return None  # perhaps a satisfaction question's key (apply)
        if message.whatsapp_message_id is not None:
            if message.whatsapp_message_id != status.id:
                logger.warning("reply %s: a status for a second message id carries its send key", message.id)
            return None
        mark_accepted(self.inbox, store, message, status.id, self.inbox.clock())
        return message

    def _apply_one(self, message: Message, status) -> bool:
        at = _status_time(status.timestamp) or self.inbox.clock()
        if status.status == "failed":
            if message.delivery_status in ("delivered", "read"):
                return False
            message.delivery_error_code, message.delivery_error = delivery_failure(status)
            message.delivery_status = "failed"
            message.delivery_updated_at = at
            return True
        new_rank = DELIVERY_RANK.get(status.status)
        if new_rank is None or new_rank <= DELIVERY_RANK.get(message.delivery_status or "sending", 0):
            return False  # unknown status, or older than what we know (webhooks arrive out of order)
        message.delivery_status = status.status
        message.delivery_error = message.delivery_error_code = None
        message.delivery_updated_at = at
        return True


def delivery_failure(status) -> tuple[int | None, str]:
    """Meta's error code of a `failed` status and the explanation agents are shown (at most 500 chars)."""
    error = status.errors[0] if status.errors else {}
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    code = error.get("code") if isinstance(error.get("code"), int) else None
    return code, explain_error(code, details or error.get("message") or error.get("title"))[:500]


def _send_key(status) -> str | None:
    """The inbox's own send key echoed in a status (agent replies and satisfaction questions), else None."""
    key = status.biz_opaque_callback_data
    return key if isinstance(key, str) and key.startswith(SEND_KEY_PREFIX) else None


def _status_time(raw) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError):
        return None
