"""The satisfaction question after a resolve (inbox/config/csat.yml): three WhatsApp reply buttons,
the answer and an optional comment taken from the event stream, and a "Not good" flagged for the team
lead. The connector records the tap in the tracker without letting the bot read it
(connectors/README.md, "Satisfaction answers"), so a "Not good" never starts a complaint hand-off."""

from __future__ import annotations

import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from inbox.models import Conversation, CsatSurvey, Handoff
from inbox.services.conversation_store import ConversationStore
from inbox.services.periodic import run_periodically
from inbox.services.replies import RETRY_DELAYS, SEND_KEY_PREFIX, delivery_failure, new_send_key, reply_address
from inbox.services.service_window import service_window
from inbox.services.whatsapp import WhatsAppSendError, WhatsAppSendUnconfirmed
from inbox.services.yaml_config import load_yaml_model
from inbox.settings import INBOX_DIR

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)

DEFAULT_CSAT_PATH = INBOX_DIR / "config" / "csat.yml"
PREFIX = "csat:"  # button ids: csat:<token>:<rating>:<comment minutes> (the connector reads the minutes)
BUTTON_ID = re.compile(r"^csat:([0-9a-f]{16,32}):(great|okay|not_good)(?::(\d{1,4}))?$")
SCORES = {"great": 3, "okay": 2, "not_good": 1}
LABELS = {"great": "Great", "okay": "Okay", "not_good": "Not good"}


class CsatConfigError(ValueError):
    """csat.yml is invalid; the message names the file and the field."""


class _Buttons(BaseModel):
    model_config = ConfigDict(extra="forbid")
    great: str = Field(min_length=1, max_length=20)
    okay: str = Field(min_length=1, max_length=20)
    not_good: str = Field(min_length=1, max_length=20)


class CsatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ask: bool = True
    question: str = Field(default="How did our team do?", min_length=1, max_length=1024)
    buttons: _Buttons = _Buttons(great="😊 Great", okay="😐 Okay", not_good="😞 Not good")
    comment_minutes: int = Field(default=10, ge=0, le=1440)
    auto_resolve_after_hours: float = Field(default=24, ge=0)


def load_csat_config(path: Path = DEFAULT_CSAT_PATH) -> CsatConfig:
    return load_yaml_model(path, CsatConfig, CsatConfigError)


def button_payload(config: CsatConfig, token: str) -> dict:
    """The Cloud API `interactive` object of type `button`: body text and three reply buttons."""
    buttons = [
        {"type": "reply", "reply": {"id": f"{PREFIX}{token}:{key}:{config.comment_minutes}", "title": title}}
        for key, title in config.buttons.model_dump().items()
    ]
    return {"type": "button", "body": {"text": config.question}, "action": {"buttons": buttons}}


@dataclass(frozen=True)
class CsatTap:
    token: str
    rating: str
    comment_minutes: int


def parse_tap(event_data: dict) -> CsatTap | None:
    """A CSAT button reply in a Rasa user event (the connector puts the reply id in the metadata)."""
    whatsapp = (event_data.get("metadata") or {}).get("whatsapp") or {}
    reply = whatsapp.get("reply") if isinstance(whatsapp.get("reply"), dict) else {}
    match = BUTTON_ID.match(str(reply.get("id") or event_data.get("text") or ""))
    return CsatTap(match.group(1), match.group(2), int(match.group(3) or 0)) if match else None


class CsatSurveys:
    """Sends each question at most once, like an agent reply (services/replies.py): retried with the
    same send key only when WhatsApp certainly did not get it; after a timeout or a cut-off request
    it waits for a status webhook carrying the key and is never POSTed again. An attempt due after
    the customer's 24-hour window closed is skipped instead."""

    def __init__(self, inbox: Inbox, config: CsatConfig | None = None):
        self.inbox = inbox
        self.config = config or inbox.csat_config

    def after_resolve(self, conversation_id: int) -> CsatSurvey | None:
        """Asks the customer of a just-resolved conversation (once per hand-off), or records why not."""
        if not self.config.ask:
            return None
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            conversation = ConversationStore(session).lock(conversation_id)
            if conversation.status != "resolved" or conversation.current_handoff_id is None:
                return None
            handoff = session.get(Handoff, conversation.current_handoff_id)
            if session.scalar(select(CsatSurvey.id).where(CsatSurvey.handoff_id == handoff.id)) is not None:
                return None
            survey = CsatSurvey(
                conversation_id=conversation.id,
                handoff_id=handoff.id,
                agent_id=handoff.assignee_id or conversation.assignee_id,
                reason=handoff.reason,
                topic=handoff.topic,
                token=secrets.token_hex(8),
                asked_at=now,
                status="sending",
                send_key=new_send_key(),
                # The recovery loop takes over if this request dies before its first attempt.
                next_attempt_at=now + RETRY_DELAYS[0],
            )
            session.add(survey)
            skip = self._skip_reason(session, conversation, now)
            if skip:
                self._skip(session, conversation, survey, skip, now)
            session.flush()
            survey_id = survey.id
        return self._deliver(survey_id, scheduled=False)

    def recover(self) -> int:
        """One pass of the recovery loop (run with the agent replies'): due retries are sent, and
        questions still unconfirmed after the confirmation window are recorded failed, not re-sent."""
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            due = session.execute(
                select(CsatSurvey.id, CsatSurvey.status)
                .where(CsatSurvey.status.in_(("sending", "unconfirmed")), CsatSurvey.next_attempt_at <= now)
                .order_by(CsatSurvey.next_attempt_at)
                .limit(100)
            ).all()
            for survey_id, status in due:
                if status != "unconfirmed":
                    continue
                survey = session.get(CsatSurvey, survey_id)
                conversation = ConversationStore(session).lock(survey.conversation_id)  # a status may confirm it now
                session.refresh(survey)
                if survey.status == "unconfirmed":
                    self._fail(
                        session,
                        conversation,
                        survey,
                        "WhatsApp did not confirm whether it was sent (the request timed out or was cut off); "
                        "it is not sent again, so the customer never gets it twice.",
                        now,
                    )
        for survey_id, status in due:
            if status == "sending":
                self._deliver(survey_id, scheduled=True)
        return len(due)

    def run_forever(self, stop: threading.Event) -> None:
        run_periodically(self.recover, stop, self.inbox.settings.inbox_reply_check_seconds, "CSAT recovery")

    def _skip_reason(self, session: Session, conversation: Conversation, now: datetime) -> str | None:
        if conversation.channel != "whatsapp":
            return f"the conversation came in on '{conversation.channel}', not WhatsApp."
        window = service_window(session, conversation.id, now)
        if window.closes_at is not None and not window.is_open:
            return "the customer's 24-hour window has closed (only templates reach them)."
        return None

    def _claim(self, survey_id: int, scheduled: bool) -> dict | None:
        """Marks one attempt as started, committed before the POST (a crash mid-send leaves it
        `unconfirmed`, never re-sent blindly). None when it is not due, taken, or skipped now."""
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            survey = session.get(CsatSurvey, survey_id)
            conversation = ConversationStore(session).lock(survey.conversation_id)
            session.refresh(survey)
            if survey.status != "sending":
                return None
            if scheduled and survey.next_attempt_at is not None and survey.next_attempt_at > now:
                return None
            skip = self._skip_reason(session, conversation, now)
            if skip is None and conversation.status != "resolved":
                skip = "the conversation was handed over to the team again before it could go."
            if skip:
                self._skip(session, conversation, survey, skip, now)
                return None
            survey.status = "unconfirmed"
            survey.send_attempts = (survey.send_attempts or 0) + 1
            survey.next_attempt_at = now + timedelta(seconds=self.inbox.settings.inbox_reply_confirm_seconds)
            return {
                "interactive": button_payload(self.config, survey.token),
                "send_key": survey.send_key,
                **reply_address(conversation.customer),
            }

    def _deliver(self, survey_id: int, *, scheduled: bool) -> CsatSurvey:
        """Calls WhatsApp outside any transaction, then records the outcome."""
        claim = self._claim(survey_id, scheduled)
        if claim is not None:
            wamid = failure = unconfirmed = None
            try:
                wamid = self.inbox.whatsapp.send_interactive(**claim)
            except WhatsAppSendError as error:
                failure = error
            except WhatsAppSendUnconfirmed as error:
                unconfirmed = error
            self._record(survey_id, wamid, failure, unconfirmed)
        with self.inbox.db.read() as session:
            survey = session.get(CsatSurvey, survey_id)
            session.expunge(survey)
            return survey

    def _record(self, survey_id, wamid, failure, unconfirmed) -> None:
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            survey = session.get(CsatSurvey, survey_id)
            conversation = ConversationStore(session).lock(survey.conversation_id)
            session.refresh(survey)
            if survey.status != "unconfirmed" or survey.whatsapp_message_id:
                return  # a status webhook with our key (or the customer's tap) got here first
            if wamid is not None:
                mark_asked(session, conversation, survey, wamid, self.config.question, now)
            elif unconfirmed is not None:
                logger.warning("CSAT question %s: %s Waiting for a status with its key.", survey.id, unconfirmed.reason)
            elif failure.retryable and survey.send_attempts < len(RETRY_DELAYS) + 1:
                delay = RETRY_DELAYS[survey.send_attempts - 1]
                survey.status, survey.next_attempt_at = "sending", now + delay
                logger.warning(
                    "CSAT question %s not sent (attempt %s): %s; next attempt in %s s",
                    survey.id, survey.send_attempts, failure.reason, int(delay.total_seconds()),
                )  # fmt: skip
            else:
                reason = failure.reason
                if failure.retryable:
                    reason = f"gave up after {survey.send_attempts} attempts: {reason}"
                self._fail(session, conversation, survey, reason, now)

    @staticmethod
    def _skip(session: Session, conversation: Conversation, survey: CsatSurvey, why: str, now: datetime) -> None:
        survey.status, survey.skip_reason, survey.next_attempt_at = "skipped", why, None
        ConversationStore(session).add_message(conversation, "system", f"Satisfaction question not sent: {why}", now)

    @staticmethod
    def _fail(session: Session, conversation: Conversation, survey: CsatSurvey, why: str, now: datetime) -> None:
        survey.status, survey.skip_reason, survey.next_attempt_at = "failed", why[:200], None
        ConversationStore(session).add_message(conversation, "system", f"Satisfaction question not sent: {why}", now)
        logger.warning("CSAT question %s failed: %s", survey.id, why)


def mark_asked(
    session: Session, conversation: Conversation, survey: CsatSurvey, wamid: str, question: str, now: datetime
) -> None:
    survey.status, survey.whatsapp_message_id, survey.next_attempt_at = "asked", wamid, None
    ConversationStore(session).add_message(conversation, "system", f"Satisfaction question sent: {question}", now)


def apply_question_status(inbox: Inbox, session: Session, status) -> bool:
    """Meta's status webhook for a satisfaction question, found by its send key (Meta echoes the
    `biz_opaque_callback_data` in every status of the message). Any status proves WhatsApp took the
    question, so one left in doubt (or given up on as unconfirmed) is recorded asked. A `failed` status
    means WhatsApp took it but could not deliver it: the survey becomes `undelivered` with Meta's reason
    and a line in the transcript; it is not sent again and is not counted as asked (the dashboard shows
    it apart from the response rate). True when the status was a question's."""
    key = status.biz_opaque_callback_data
    if not isinstance(key, str) or not key.startswith(SEND_KEY_PREFIX):
        return False
    survey = session.scalars(select(CsatSurvey).where(CsatSurvey.send_key == key)).one_or_none()
    if survey is None:
        return False
    conversation = ConversationStore(session).lock(survey.conversation_id)
    session.refresh(survey)
    now = inbox.clock()
    in_doubt = survey.whatsapp_message_id is None and survey.status in ("unconfirmed", "failed")
    if status.status == "failed":
        if survey.status == "asked" or in_doubt:  # an answer, a skip or an earlier failure stays as it is
            code, reason = delivery_failure(status)
            survey.whatsapp_message_id = survey.whatsapp_message_id or status.id
            survey.status, survey.skip_reason, survey.next_attempt_at = "undelivered", reason[:200], None
            ConversationStore(session).add_message(
                conversation, "system", f"Satisfaction question not delivered: {reason}", now
            )
            logger.warning("CSAT question %s not delivered (Meta error %s)", survey.id, code)
    elif in_doubt:
        mark_asked(session, conversation, survey, status.id, inbox.csat_config.question, now)
    return True


def awaiting_comment(since: datetime) -> ColumnElement[bool]:
    """True, in a query of conversations, for those whose customer's message at or after `since` may be the
    comment on a rating (the question `on_customer_message` asks). The event stream asks it once per batch
    with its conversations' row locks (only the event stream answers ratings and takes comments)."""
    return (
        select(CsatSurvey.id)
        .where(
            CsatSurvey.conversation_id == Conversation.id,
            CsatSurvey.comment.is_(None),
            CsatSurvey.comment_until.is_not(None),
            CsatSurvey.comment_until >= since,
        )
        .exists()
    )


def on_customer_message(
    session: Session, conversation: Conversation, event_data: dict, at: datetime, *, may_be_comment: bool = True
) -> bool:
    """From the event stream: a CSAT tap or the comment after it. Returns True when it was one.
    `may_be_comment` False: `awaiting_comment` said no rating waits for a comment (no query then)."""
    tap = parse_tap(event_data)
    if tap is None and not may_be_comment:
        return False
    store = ConversationStore(session)
    if tap is not None:
        survey = session.scalars(select(CsatSurvey).where(CsatSurvey.token == tap.token)).one_or_none()
        if survey is None or survey.conversation_id != conversation.id:
            logger.warning("a CSAT answer for an unknown question (conversation %s)", conversation.id)
            return True
        if survey.rating is None:  # the first tap counts; WhatsApp lets them tap again later
            minutes = tap.comment_minutes
            survey.status, survey.rating, survey.score, survey.answered_at = (
                "answered",
                tap.rating,
                SCORES[tap.rating],
                at,
            )
            survey.flagged = tap.rating == "not_good"
            survey.comment_until = at + timedelta(minutes=minutes) if minutes else None
            flag = " — flagged for the team lead" if survey.flagged else ""
            store.add_message(
                conversation, "system", f"Customer rated the conversation: {LABELS[tap.rating]}{flag}.", at
            )
        return True
    text = event_data.get("text")
    survey = session.scalars(
        select(CsatSurvey)
        .where(
            CsatSurvey.conversation_id == conversation.id,
            CsatSurvey.comment.is_(None),
            CsatSurvey.comment_until.is_not(None),
            CsatSurvey.comment_until >= at,
        )
        .order_by(CsatSurvey.answered_at.desc())
        .limit(1)
    ).first()
    if survey is None or not isinstance(text, str) or not text.strip():
        return False
    survey.comment = text.strip()[:2000]
    store.add_message(conversation, "system", "The customer's message above is their comment on the rating.", at)
    return True
