"""Request and response bodies of the machine API (the contract in inbox/API.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from inbox.services.handoff_contract import PRIORITIES, REASONS

HandoffKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# The four escalation patterns, plus `bot_unavailable`: the bot failed to answer at all (e.g. its
# action server was down) and the WhatsApp connector handed off instead of staying silent.
Reason = Literal[REASONS]  # contracts/handoff.yml
Priority = Literal[PRIORITIES]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _as_utc(value: datetime) -> datetime:
    # A timestamp without a zone is taken as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


CustomerId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=160)]


class HandoffCustomer(BaseModel):
    # The phone digits (wa_id) when known, else the business-scoped user id; missing = conversation_id.
    whatsapp_id: CustomerId | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None
    phone_number_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    bsuid: CustomerId | None = None  # WhatsApp's business-scoped user id ("US.1349…"), when the message had one
    username: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None


class TranscriptItem(BaseModel):
    role: Literal["customer", "bot"]
    text: Annotated[str, StringConstraints(max_length=10_000)]
    timestamp: UtcDatetime | None = None


class HandoffRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    handoff_id: HandoffKey
    conversation_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    customer: HandoffCustomer
    reason: Reason
    topic: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=32)] | None = None
    tags: Annotated[
        list[Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40)]],
        Field(max_length=20),
    ] = []
    priority: Priority = "normal"
    summary: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    order_numbers: Annotated[list[Annotated[str, StringConstraints(max_length=32)]], Field(max_length=20)] = []
    transcript: Annotated[list[TranscriptItem], Field(max_length=500)]
    requested_at: UtcDatetime | None = None


class AssigneeOut(BaseModel):
    id: int
    first_name: str
    pronoun: str


class HandoffResponse(BaseModel):
    handoff_id: str
    conversation_id: str
    inbox_conversation_id: int
    status: Literal["assigned", "queued"]
    assignee: AssigneeOut | None
    team: str | None
    eta_minutes: int | None
    team_back_at: datetime | None
    eta_text: str
    conversation_url: str


class WhatsAppStatus(BaseModel):
    """Meta's status object as received; only the fields the inbox uses are checked."""

    model_config = ConfigDict(extra="allow")

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    status: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    timestamp: str | int | None = None
    recipient_id: str | None = None  # absent for customers Meta identifies by BSUID only
    recipient_user_id: str | None = None
    # Our send key, echoed by Meta; any other shape is ignored rather than refusing the batch.
    biz_opaque_callback_data: Any = None
    errors: list[dict] = []


class StatusesRequest(BaseModel):
    statuses: Annotated[list[WhatsAppStatus], Field(max_length=1000)]


class StatusesResponse(BaseModel):
    accepted: int
