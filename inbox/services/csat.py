"""The satisfaction question after a resolve (inbox/config/csat.yml): three WhatsApp reply buttons,
the answer and an optional comment taken from the event stream, and a "Not good" flagged for the team
lead. The connector records the tap in the tracker without letting the bot read it
(connectors/README.md, "Satisfaction answers"), so a "Not good" never starts a complaint hand-off."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from inbox.models import Conversation, CsatSurvey, Handoff
from inbox.services.conversation_store import ConversationStore
from inbox.services.replies import new_send_key, reply_address
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
                status="asked",
            )
            skip = self._skip_reason(session, conversation, now)
            if skip:
                survey.status, survey.skip_reason = "skipped", skip
            session.add(survey)
            session.flush()
            survey_id, address = survey.id, reply_address(conversation.customer)
            if skip:
                ConversationStore(session).add_message(
                    conversation, "system", f"Satisfaction question not sent: {skip}", now
                )
                return survey
        return self._send(survey_id, address)

    def _skip_reason(self, session: Session, conversation: Conversation, now: datetime) -> str | None:
        if conversation.channel != "whatsapp":
            return f"the conversation came in on '{conversation.channel}', not WhatsApp."
        window = service_window(session, conversation.id, now)
        if window.closes_at is not None and not window.is_open:
            return "the customer's 24-hour window has closed (only templates reach them)."
        return None

    def _send(self, survey_id: int, address: dict) -> CsatSurvey:
        with self.inbox.db.read() as session:
            token = session.get(CsatSurvey, survey_id).token
        try:
            wamid, failure = (
                self.inbox.whatsapp.send_interactive(
                    button_payload(self.config, token), send_key=new_send_key(), **address
                ),
                None,
            )
        except (WhatsAppSendError, WhatsAppSendUnconfirmed) as error:
            wamid, failure = None, error.reason
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            survey = session.get(CsatSurvey, survey_id)
            conversation = ConversationStore(session).lock(survey.conversation_id)
            if failure:
                survey.status, survey.skip_reason = "failed", failure[:200]
                text = f"Satisfaction question not sent: {failure}"
            else:
                survey.whatsapp_message_id = wamid
                text = f"Satisfaction question sent: {self.config.question}"
            ConversationStore(session).add_message(conversation, "system", text, now)
            session.flush()
            session.expunge(survey)
            return survey


def on_customer_message(session: Session, conversation: Conversation, event_data: dict, at: datetime) -> bool:
    """From the event stream: a CSAT tap or the comment after it. Returns True when it was one."""
    tap = parse_tap(event_data)
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
