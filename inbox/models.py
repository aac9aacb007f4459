"""Database schema of the inbox (Alembic migrations in `inbox/migrations` own the DDL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both back ends (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


agent_teams = Table(
    "agent_teams",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    pronoun: Mapped[str] = mapped_column(String(8), default="they")  # she / he / they
    role: Mapped[str] = mapped_column(String(16), default="agent")  # agent / admin
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="away")  # online / away
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on password change / deactivation so that old session cookies stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    last_assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    teams: Mapped[list[Team]] = relationship(secondary=agent_teams, lazy="selectin", order_by=Team.name)

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.login

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def team_names(self) -> list[str]:
        return [team.name for team in self.teams]


class AgentSession(Base):
    """One signed-in browser. Its cookie carries a random token, only the token's SHA-256 is stored;
    deleting the row (sign-out, password change) makes a copied cookie worthless."""

    __tablename__ = "agent_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The conversation key: the phone digits (wa_id) on WhatsApp when known, else the business-scoped
    # user id (BSUID); the Rasa sender_id on other channels.
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))  # WhatsApp profile name
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # display form, None when unknown
    # WhatsApp's business-scoped user id ("US.1349…"): the address of replies when there is no phone.
    bsuid: Mapped[str | None] = mapped_column(String(160), index=True)
    username: Mapped[str | None] = mapped_column(String(64))  # WhatsApp username, display only (it can change)
    is_vip: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def phone_digits(self) -> str | None:
        digits = "".join(ch for ch in self.phone or "" if ch.isdigit())
        return digits or None

    @property
    def display_name(self) -> str:
        """Profile name, then @username, then the phone, then the BSUID."""
        if self.name:
            return self.name
        if self.username:
            return f"@{self.username}"
        return self.phone or self.bsuid or self.external_id


class Conversation(Base):
    """One per Rasa sender_id; re-opened by every new hand-off."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(32), default="whatsapp")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    phone_number_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="bot")  # bot / open / resolved
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    is_vip: Mapped[bool] = mapped_column(Boolean, default=False)  # copy of customers.is_vip for the list filters
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    reason: Mapped[str | None] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str | None] = mapped_column(String(500))
    order_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    handoff_count: Mapped[int] = mapped_column(Integer, default=0)
    current_handoff_id: Mapped[int | None] = mapped_column(Integer)  # handoffs.id of the open period
    handed_off_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_preview: Mapped[str | None] = mapped_column(String(200))
    last_message_role: Mapped[str | None] = mapped_column(String(16))
    # Hand-off slots seen on the event stream (handoff_id, escalation_reason, ...).
    tracker_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[Agent | None] = relationship(lazy="joined")
    team: Mapped[Team | None] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_conversations_activity", "last_message_at", "id"),
        Index("ix_conversations_status_activity", "status", "last_message_at", "id"),
        Index("ix_conversations_assignee", "assignee_id", "status", "last_message_at", "id"),
        Index("ix_conversations_vip", "is_vip", "status", "last_message_at", "id"),
        # Covering for the "SLA breached" filter and count.
        Index("ix_conversations_sla", "status", "sla_due_at", "first_response_at"),
        # Open conversations per agent (assignment load, dashboard).
        Index("ix_conversations_load", "status", "assignee_id"),
        Index("ix_conversations_customer", "customer_id"),
        Index("ix_conversations_created", "created_at"),
    )

    def sla_breached(self, now: datetime) -> bool:
        """Whether the first-response target of the open hand-off was missed."""
        if self.status != "open" or self.sla_due_at is None:
            return False
        if self.first_response_at is None:
            return now > self.sla_due_at
        return self.first_response_at > self.sla_due_at


class ConversationTag(Base):
    __tablename__ = "conversation_tags"
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class Handoff(Base):
    __tablename__ = "handoffs"
    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_key: Mapped[str] = mapped_column(String(64), unique=True)  # the contract's `handoff_id`
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # api / event_stream
    api_received_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    summary: Mapped[str | None] = mapped_column(String(500))
    order_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(16))  # assigned / queued
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    assignment_rule: Mapped[str | None] = mapped_column(String(64))
    eta_minutes: Mapped[int | None] = mapped_column(Integer)
    team_back_at: Mapped[datetime | None]
    eta_text: Mapped[str] = mapped_column(String(64))
    sla_due_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    first_response_business_seconds: Mapped[int | None] = mapped_column(Integer)
    sla_breach_notified_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]

    conversation: Mapped[Conversation] = relationship()
    assignee: Mapped[Agent | None] = relationship(lazy="joined")
    team: Mapped[Team | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_handoffs_open_sla", "first_response_at", "resolved_at", "sla_due_at"),)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # customer / bot / agent / note / system
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # Where the message came from; both may be set when the two paths carried the same message.
    rasa_event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    from_transcript: Mapped[bool] = mapped_column(Boolean, default=False)
    # Meta's id: of an agent reply, or of a customer's message (for read receipts and typing).
    whatsapp_message_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    # An agent reply sent as an approved template: {"name", "language", "values"} (text = the rendered body).
    template: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    delivery_status: Mapped[str | None] = mapped_column(String(16))  # sending/accepted/sent/delivered/read/failed
    delivery_error_code: Mapped[int | None] = mapped_column(Integer)
    delivery_error: Mapped[str | None] = mapped_column(String(500))
    delivery_updated_at: Mapped[datetime | None]
    # Our idempotency key, sent as biz_opaque_callback_data and echoed in Meta's statuses.
    send_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]  # when the recovery loop looks at a sending/unconfirmed reply

    agent: Mapped[Agent | None] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_messages_conversation_time", "conversation_id", "created_at", "id"),
        Index("ix_messages_delivery_due", "delivery_status", "next_attempt_at"),
    )


class QuickReply(Base):
    __tablename__ = "quick_replies"
    id: Mapped[int] = mapped_column(primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(40), unique=True)  # without the leading "/"
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbMatch(Base):
    """One knowledge-base lookup of the bot (`kb_match` slot events)."""

    __tablename__ = "kb_matches"
    id: Mapped[int] = mapped_column(primary_key=True)
    rasa_event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    entry_id: Mapped[str | None] = mapped_column(String(120))
    score: Mapped[float | None] = mapped_column(Float)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    threshold: Mapped[float | None] = mapped_column(Float)
    matched_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_kb_matches_entry", "entry_id", "matched_at"),)


class ConsumerPosition(Base):
    """How far an event-stream consumer got (last broker event id applied)."""

    __tablename__ = "consumer_positions"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaFile(Base):
    """What a message carries besides text: a photo, document, voice note… (downloaded from the Graph
    API into content-addressed storage), a location or contact cards (`details`), or an agent's
    attachment. `state`: pending / retrying (the fetcher's work item, due at `next_attempt_at`),
    stored, failed (`last_error` says why; shown to the agent), none (nothing to download)."""

    __tablename__ = "media_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # in (customer) / out (agent)
    kind: Mapped[str] = mapped_column(String(16))  # image audio video document sticker location contacts
    whatsapp_media_id: Mapped[str | None] = mapped_column(String(128))
    declared_mime: Mapped[str | None] = mapped_column(String(128))  # what Meta (or the browser) said
    mime: Mapped[str | None] = mapped_column(String(128))  # what the bytes are (sniffed)
    filename: Mapped[str | None] = mapped_column(String(255))
    caption: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))  # storage key
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_media_files_due", "state", "next_attempt_at"),)


class CsatSurvey(Base):
    """The satisfaction question after a resolve (services/csat.py): one per resolved hand-off.
    `status`: sending / unconfirmed (on its way, see below) / asked (WhatsApp has it, no answer yet) /
    answered / skipped (`skip_reason` says why) / failed (refused or unconfirmed: `skip_reason`) /
    undelivered (WhatsApp took it, then sent a `failed` status: Meta's reason in `skip_reason`)."""

    __tablename__ = "csat_surveys"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id", ondelete="SET NULL"), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(String(32))  # the hand-off's reason (pattern)
    topic: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(32), unique=True)  # in the button ids: csat:<token>:<rating>
    asked_at: Mapped[datetime] = mapped_column(index=True)
    whatsapp_message_id: Mapped[str | None] = mapped_column(String(128))
    rating: Mapped[str | None] = mapped_column(String(16))  # great / okay / not_good
    score: Mapped[int | None] = mapped_column(Integer)  # 3 / 2 / 1
    answered_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    comment_until: Mapped[datetime | None]  # the customer's next message until then is the comment
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # a "Not good" for the team lead
    flag_cleared_at: Mapped[datetime | None]
    flag_cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # Sent like an agent reply (services/replies.py): `sending` (an attempt due at `next_attempt_at`),
    # `unconfirmed` (in flight or outcome unknown: never POSTed again), then asked / failed / skipped.
    send_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]

    conversation: Mapped[Conversation] = relationship(lazy="joined")
    agent: Mapped[Agent | None] = relationship(lazy="joined", foreign_keys=[agent_id])

    __table_args__ = (Index("ix_csat_surveys_delivery_due", "status", "next_attempt_at"),)


class Snooze(Base):
    """A conversation parked by an agent (status `snoozed`) until `until` or, when `until` is None,
    until the customer writes. `woke_at`/`woke_by` (time / customer / agent) once it came back."""

    __tablename__ = "snoozes"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    woke_at: Mapped[datetime | None]
    woke_by: Mapped[str | None] = mapped_column(String(16))

    conversation: Mapped[Conversation] = relationship(lazy="joined")
    agent: Mapped[Agent | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_snoozes_due", "woke_at", "until"),)
