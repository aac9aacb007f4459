"""Parsing of Meta's webhook payloads into the connector's own inbound types.

Every entry and every change is read. A payload that is not a WhatsApp webhook at all raises
`PayloadError` (the caller keeps it as a dead letter); a single unreadable message or status
inside an otherwise good payload becomes a `Rejected` item so its neighbours still go through.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Type, TypeVar

from pydantic import BaseModel, Extra, Field, ValidationError

from connectors.privacy import mask_user_id

WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"

UNREADABLE_TYPES = frozenset({"image", "audio", "video", "document", "sticker", "location", "contacts"})
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})

_LEADING_SLASHES = re.compile(r"^[\s/]+")
# Business-scoped user id (BSUID): two-letter country code, a dot, up to 128 letters and digits; a
# parent BSUID has `ENT.` after the country code (`US.13491208655302741918`, `US.ENT.11815799212886844830`).
BSUID_PATTERN = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
# What Meta sends as `from` / `wa_id`: the phone number's digits.
PHONE_PATTERN = re.compile(r"^\d{5,20}$")
# A username is display only: one that does not look like one (spaces, control characters, longer
# than the inbox keeps) is left out rather than shown, and the message still goes through.
USERNAME_PATTERN = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")


def is_bsuid(value: Optional[str]) -> bool:
    return value is not None and BSUID_PATTERN.match(value) is not None


class PayloadError(ValueError):
    """The request body is not a WhatsApp webhook payload we can read."""


class InboundAction(str, enum.Enum):
    CONVERSE = "converse"  # handed to Rasa as a user message
    UNREADABLE = "unreadable"  # media etc.: polite reply + kept for the agents
    # An emoji reaction: handed to Rasa as the emoji, marked as a reaction in the metadata, when it is
    # to a message the bot sent and the bot has the conversation (connectors/processing.py).
    REACTION = "reaction"
    IGNORE = "ignore"  # removed reactions, unknown types: kept and logged only


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    # The conversation key (queue key, Rasa sender_id): the customer's phone digits when known, else
    # their BSUID. Named `wa_id` because the store, the queue and Rasa have always keyed on it.
    wa_id: str
    profile_name: Optional[str]
    phone_number_id: str
    timestamp: str
    type: str
    action: InboundAction
    # CONVERSE: the text Rasa parses. UNREADABLE: the text recorded in the tracker. REACTION: the emoji.
    text: Optional[str] = None
    # Type-specific facts (media id, mime type, caption, reply title, ...) for the metadata.
    details: Dict[str, Any] = field(default_factory=dict)
    phone: Optional[str] = None  # digits, from this webhook or remembered for the BSUID
    user_id: Optional[str] = None  # BSUID
    username: Optional[str] = None  # display only: a customer can change it at any time

    def rasa_metadata(self) -> Dict[str, Any]:
        whatsapp: Dict[str, Any] = {
            "wa_id": self.phone,
            "user_id": self.user_id,
            "username": self.username,
            "profile_name": self.profile_name,
            "phone_number_id": self.phone_number_id,
            "message_id": self.message_id,
            "type": self.type,
            "timestamp": self.timestamp,
        }
        whatsapp.update(self.details)
        return {"whatsapp": whatsapp}

    def to_record(self) -> Dict[str, Any]:
        record = asdict(self)
        record["action"] = self.action.value
        return record

    @classmethod
    def from_record(cls, record: Dict[str, Any]) -> "InboundMessage":
        values = dict(record)
        values["action"] = InboundAction(values["action"])
        if "phone" not in values:  # stored before BSUIDs: keyed by the phone
            values["phone"] = values["wa_id"]
        return cls(**values)


@dataclass(frozen=True)
class StatusUpdate:
    message_id: str
    status: str
    timestamp: str
    # The conversation key of the recipient: the phone when known (`recipient_id`, or remembered
    # for the BSUID), else `recipient_user_id`.
    recipient_id: str
    errors: List[Dict[str, Any]]
    raw: Dict[str, Any]  # Meta's status object as received (forwarded to the inbox as is)
    recipient_phone: Optional[str] = None
    recipient_user_id: Optional[str] = None


@dataclass(frozen=True)
class ReceivedMessage:
    message: InboundMessage
    raw: Dict[str, Any]  # the message object as Meta sent it (kept in the store)


@dataclass(frozen=True)
class Rejected:
    reason: str
    fragment: Any


@dataclass
class ParsedWebhook:
    messages: List[ReceivedMessage] = field(default_factory=list)
    statuses: List[StatusUpdate] = field(default_factory=list)
    rejected: List[Rejected] = field(default_factory=list)
    # Errors Meta reports about the webhook itself (`value.errors`), and changes of fields
    # this connector does not subscribe to: logged and kept, never processed.
    meta_errors: List[Dict[str, Any]] = field(default_factory=list)
    skipped_changes: List[Dict[str, Any]] = field(default_factory=list)


# --- Meta's payload shapes -------------------------------------------------------------


class _Model(BaseModel):
    class Config:
        extra = Extra.ignore  # Meta adds fields over time
        allow_mutation = False


class _Entry(_Model):
    id: str
    changes: List[Dict[str, Any]]


class _Envelope(_Model):
    object: str
    entry: List[_Entry]


class _Change(_Model):
    field: str
    value: Dict[str, Any]


class _Profile(_Model):
    name: Optional[str] = None
    username: Optional[str] = None


class _Contact(_Model):
    wa_id: Optional[str] = None
    user_id: Optional[str] = None
    profile: Optional[_Profile] = None


class _PhoneMetadata(_Model):
    phone_number_id: str
    display_phone_number: Optional[str] = None


class _MessagesValue(_Model):
    metadata: _PhoneMetadata
    contacts: List[_Contact] = []
    messages: List[Any] = []
    statuses: List[Any] = []
    errors: List[Dict[str, Any]] = []


class _MessageHead(_Model):
    id: str = Field(min_length=1)
    # Either may be missing: a customer with a username may hide the phone (`from`), and payloads
    # from before business-scoped user ids have no `from_user_id`. One of them is required.
    sender: Optional[str] = Field(None, alias="from")
    from_user_id: Optional[str] = None
    timestamp: str
    type: str


class _TextBody(_Model):
    body: str


class _TextMessage(_Model):
    text: _TextBody


class _ChoiceReply(_Model):
    id: str
    title: str
    description: Optional[str] = None


class _Interactive(_Model):
    type: str
    button_reply: Optional[_ChoiceReply] = None
    list_reply: Optional[_ChoiceReply] = None


class _InteractiveMessage(_Model):
    interactive: _Interactive


class _TemplateButton(_Model):
    text: str
    payload: Optional[str] = None


class _TemplateButtonMessage(_Model):
    button: _TemplateButton


class _Media(_Model):
    id: str
    mime_type: Optional[str] = None
    sha256: Optional[str] = None
    caption: Optional[str] = None
    filename: Optional[str] = None
    voice: Optional[bool] = None  # audio recorded in WhatsApp (a voice note), not a shared audio file
    animated: Optional[bool] = None  # stickers


class _Location(_Model):
    latitude: float
    longitude: float
    name: Optional[str] = None
    address: Optional[str] = None
    url: Optional[str] = None


class _ContactName(_Model):
    formatted_name: Optional[str] = None


class _ContactPhone(_Model):
    phone: Optional[str] = None
    wa_id: Optional[str] = None


class _SharedContact(_Model):
    name: Optional[_ContactName] = None
    phones: List[_ContactPhone] = []


class _ContactsMessage(_Model):
    contacts: List[_SharedContact]


class _Reaction(_Model):
    message_id: str
    emoji: Optional[str] = None


class _ReactionMessage(_Model):
    reaction: _Reaction


class _Status(_Model):
    id: str = Field(min_length=1)
    status: str
    timestamp: str
    recipient_id: Optional[str] = None  # omitted for a customer whose phone Meta does not share
    recipient_user_id: Optional[str] = None
    errors: List[Dict[str, Any]] = []


_M = TypeVar("_M", bound=BaseModel)


def _model(model: Type[_M], data: Any) -> _M:
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type(data).__name__}")
    return model.parse_obj(data)


# --- Parsing ---------------------------------------------------------------------------


def decode_body(body: bytes) -> Dict[str, Any]:
    """Raw request body -> JSON object, or PayloadError saying what is wrong with it."""
    if not body or not body.strip():
        raise PayloadError("empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"body is not UTF-8: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadError(f"body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise PayloadError(f"body is JSON {type(document).__name__}, not an object")
    return document


def parse_webhook(body: bytes) -> ParsedWebhook:
    document = decode_body(body)
    plain = _plain_envelope(document)
    if plain is None:
        try:
            envelope = _Envelope.parse_obj(document)
        except ValidationError as error:
            raise PayloadError(f"not a webhook envelope: {_short(error)}") from None
        plain = envelope.object, [change for entry in envelope.entry for change in entry.changes]
    kind, changes = plain
    if kind != WHATSAPP_OBJECT:
        raise PayloadError(f"object is {kind!r}, expected {WHATSAPP_OBJECT!r}")

    parsed = ParsedWebhook()
    for raw_change in changes:
        _parse_change(raw_change, parsed)
    return parsed


class _ValueParts(NamedTuple):
    """What the connector reads of a `messages` change's value (`_MessagesValue`)."""

    phone_number_id: str
    contacts: List[_Contact]
    messages: List[Any]
    statuses: List[Any]
    errors: List[Dict[str, Any]]


def _parse_change(raw_change: Any, parsed: ParsedWebhook) -> None:
    plain = _plain_change(raw_change)
    if plain is None:
        try:
            change = _model(_Change, raw_change)
        except (ValidationError, PayloadError) as error:
            parsed.rejected.append(Rejected(f"unreadable change: {_short(error)}", raw_change))
            return
        plain = change.field, change.value
    field_name, change_value = plain
    if field_name != MESSAGES_FIELD:
        parsed.skipped_changes.append({"field": field_name, "value": change_value})
        return
    value = _plain_status_value(change_value)
    if value is None:
        try:
            model = _MessagesValue.parse_obj(change_value)
        except ValidationError as error:
            parsed.rejected.append(Rejected(f"unreadable messages change: {_short(error)}", raw_change))
            return
        value = _ValueParts(model.metadata.phone_number_id, list(model.contacts), model.messages, model.statuses,
                            model.errors)

    parsed.meta_errors.extend(value.errors)
    for raw_message in value.messages:
        try:
            message = _parse_message(raw_message, value.contacts, value.phone_number_id)
            parsed.messages.append(ReceivedMessage(message=message, raw=raw_message))
        except (ValidationError, PayloadError) as error:
            parsed.rejected.append(Rejected(f"unreadable message: {_short(error)}", raw_message))
    for raw_status in value.statuses:
        try:
            parsed.statuses.append(_parse_status(raw_status))
        except (ValidationError, PayloadError) as error:
            parsed.rejected.append(Rejected(f"unreadable status: {_short(error)}", raw_status))


def _parse_status(raw: Any) -> StatusUpdate:
    status = _plain_status(raw) or _model(_Status, raw)
    phone, user_id = _customer_ids(status.recipient_id, status.recipient_user_id, "recipient_id", "recipient_user_id")
    return StatusUpdate(
        message_id=status.id,
        status=status.status,
        timestamp=status.timestamp,
        recipient_id=phone or user_id,
        errors=list(status.errors),
        raw=raw,
        recipient_phone=phone,
        recipient_user_id=user_id,
    )


# --- The plain path: status webhooks without pydantic's passes ---------------------------
#
# Meta sends three status webhooks per reply (sent, delivered, read). Reading one through the models
# (envelope, entries, change, value, contacts, status) costs ~50 µs of CPU, ten times the JSON
# decoding. A part whose every field already has the exact type its model asks for is read directly
# here: the model would accept it as it is (extra fields are ignored either way), so the values are
# the same. Anything else - a missing, null or mistyped field, a value pydantic would coerce (a number
# for a string), a change carrying customer messages - returns None and goes through the models as
# before, which give the same values or the same errors. tests/connector/test_status_parsing.py
# compares both paths on mutated payloads.


def _optional_str(mapping: Dict[str, Any], key: str) -> bool:
    value = mapping.get(key)
    return value is None or type(value) is str


def _list_of_dicts(value: Any) -> bool:
    return type(value) is list and all(type(item) is dict for item in value)


def _plain_envelope(document: Dict[str, Any]) -> Optional[Tuple[str, List[Dict[str, Any]]]]:
    """(`object`, every change of every entry) as `_Envelope` would read them, or None."""
    kind, entries = document.get("object"), document.get("entry")
    if type(kind) is not str or type(entries) is not list:
        return None
    changes: List[Dict[str, Any]] = []
    for entry in entries:
        if type(entry) is not dict or type(entry.get("id")) is not str or not _list_of_dicts(entry.get("changes")):
            return None
        changes.extend(entry["changes"])
    return kind, changes


def _plain_change(raw: Any) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(`field`, `value`) as `_Change` would read them, or None."""
    if type(raw) is not dict or type(raw.get("field")) is not str or type(raw.get("value")) is not dict:
        return None
    return raw["field"], raw["value"]


def _plain_contact(contact: Any) -> bool:
    if type(contact) is not dict or not (_optional_str(contact, "wa_id") and _optional_str(contact, "user_id")):
        return False
    profile = contact.get("profile")
    return profile is None or (type(profile) is dict and _optional_str(profile, "name") and _optional_str(profile, "username"))


def _plain_status_value(value: Dict[str, Any]) -> Optional[_ValueParts]:
    """A change value without customer messages as `_MessagesValue` would read it, or None (messages
    always go through the models: one webhook per customer message, their contacts are needed)."""
    metadata = value.get("metadata")
    if type(metadata) is not dict or type(metadata.get("phone_number_id")) is not str:
        return None
    if not _optional_str(metadata, "display_phone_number"):
        return None
    contacts, messages, statuses = value.get("contacts", []), value.get("messages", []), value.get("statuses", [])
    errors = value.get("errors", [])
    if type(messages) is not list or messages or type(statuses) is not list or not _list_of_dicts(errors):
        return None
    # Validated as the model would (a malformed contact rejects the change), not kept: only messages use them.
    if type(contacts) is not list or not all(_plain_contact(contact) for contact in contacts):
        return None
    # pydantic hands out copies of the error objects; so does this.
    return _ValueParts(metadata["phone_number_id"], [], [], statuses, [dict(error) for error in errors])


def _plain_status(raw: Any) -> Optional[_Status]:
    """A status as `_Status` would read it (built without validating again), or None."""
    if type(raw) is not dict:
        return None
    message_id, state, timestamp = raw.get("id"), raw.get("status"), raw.get("timestamp")
    if type(message_id) is not str or not message_id or type(state) is not str or type(timestamp) is not str:
        return None
    if not (_optional_str(raw, "recipient_id") and _optional_str(raw, "recipient_user_id")):
        return None
    errors = raw.get("errors", [])
    if not _list_of_dicts(errors):
        return None
    return _Status.construct(
        id=message_id, status=state, timestamp=timestamp, recipient_id=raw.get("recipient_id"),
        recipient_user_id=raw.get("recipient_user_id"), errors=[dict(error) for error in errors],
    )


def _customer_ids(
    phone: Optional[str], user_id: Optional[str], phone_field: str, user_id_field: str
) -> Tuple[Optional[str], Optional[str]]:
    """(phone, BSUID) of a customer as Meta named them; PayloadError for none or a malformed one."""
    phone = phone or None
    user_id = user_id or None
    if phone is None and user_id is None:
        raise PayloadError(f"neither {phone_field!r} nor {user_id_field!r}: no customer to answer")
    # The offending value is masked in the reason (it is logged); the dead letter keeps it whole.
    if phone is not None and not PHONE_PATTERN.match(phone):
        raise PayloadError(f"{phone_field!r} is not a phone number (digits only): {mask_user_id(phone)!r}")
    if user_id is not None and not is_bsuid(user_id):
        raise PayloadError(
            f"{user_id_field!r} is not a business-scoped user id (like US.13491208655302741918): "
            f"{mask_user_id(user_id)!r}"
        )
    return phone, user_id


def _username(value: Optional[str]) -> Optional[str]:
    value = (value or "").lstrip("@")
    return value if USERNAME_PATTERN.match(value) else None


def _sender_contact(contacts: List[_Contact], phone: Optional[str], user_id: Optional[str]) -> Optional[_Contact]:
    for contact in contacts:
        if (user_id and contact.user_id == user_id) or (phone and contact.wa_id == phone):
            return contact
    if len(contacts) != 1:
        return None
    only = contacts[0]
    contradicts = (phone and only.wa_id and only.wa_id != phone) or (user_id and only.user_id and only.user_id != user_id)
    return None if contradicts else only


def _parse_message(raw: Any, contacts: List[_Contact], phone_number_id: str) -> InboundMessage:
    head = _model(_MessageHead, raw)
    # The sender is who the message says (a contact only names them: with several senders in one
    # webhook, a lone contact may be someone else's).
    phone, user_id = _customer_ids(head.sender, head.from_user_id, "from", "from_user_id")
    contact = _sender_contact(contacts, phone, user_id)
    profile = contact.profile if contact else None
    common: Dict[str, Any] = dict(
        message_id=head.id,
        wa_id=phone or user_id,  # the phone remembered for a BSUID may replace it (customer_identities)
        phone=phone,
        user_id=user_id,
        username=_username(profile.username if profile else None),
        profile_name=profile.name if profile else None,
        phone_number_id=phone_number_id,
        timestamp=head.timestamp,
        type=head.type,
    )
    # unknown / unsupported / system / order / new types Meta adds later: ignored, with their errors
    parse = _PARSERS.get(head.type, _parse_other)
    return parse(raw, common)


# One parser per message type: (the raw message, the fields every message has) -> InboundMessage.
_Parser = Callable[[Dict[str, Any], Dict[str, Any]], InboundMessage]


def _parse_text(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    body = _model(_TextMessage, raw).text.body
    return InboundMessage(**common, action=InboundAction.CONVERSE, text=neutralise_intent_prefix(body))


def _parse_interactive(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    interactive = _model(_InteractiveMessage, raw).interactive
    choice = interactive.button_reply or interactive.list_reply
    if choice is None:  # e.g. a WhatsApp Flow reply (`nfm_reply`): not handled by this bot
        return InboundMessage(**common, action=InboundAction.IGNORE, details={"interactive_type": interactive.type})
    # A reply's id is the payload our bot put on the button: intents pass as is.
    return InboundMessage(
        **common,
        action=InboundAction.CONVERSE,
        text=choice.id,
        details={"reply": {"id": choice.id, "title": choice.title}},
    )


def _parse_template_button(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    button = _model(_TemplateButtonMessage, raw).button  # quick-reply button of a template message
    payload = button.payload or neutralise_intent_prefix(button.text)
    return InboundMessage(
        **common,
        action=InboundAction.CONVERSE,
        text=payload,
        details={"reply": {"id": button.payload, "title": button.text}},
    )


def _object_of_type(raw: Dict[str, Any], kind: str) -> Dict[str, Any]:
    if not isinstance(raw.get(kind), dict):
        raise PayloadError(f"{kind} message without a {kind!r} object")
    return raw[kind]


def _parse_media(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    kind = common["type"]
    media = _model(_Media, _object_of_type(raw, kind))
    details = {"media": {k: v for k, v in media.dict().items() if v is not None}}
    label = " ".join(part for part in (f"[{kind}]", media.filename, media.caption) if part)
    return InboundMessage(**common, action=InboundAction.UNREADABLE, text=label, details=details)


def _parse_location(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    location = _model(_Location, _object_of_type(raw, "location"))
    place = ", ".join(part for part in (location.name, location.address) if part)
    label = f"[location] {place} ({location.latitude}, {location.longitude})".replace("  ", " ")
    details = {"location": {k: v for k, v in location.dict().items() if v is not None}}
    return InboundMessage(**common, action=InboundAction.UNREADABLE, text=label, details=details)


def _parse_contacts(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    shared = _model(_ContactsMessage, raw).contacts
    people = [
        {
            "name": contact.name.formatted_name if contact.name else None,
            "phones": [phone.phone for phone in contact.phones if phone.phone],
        }
        for contact in shared
    ]
    names_text = ", ".join(person["name"] or "?" for person in people)
    return InboundMessage(
        **common,
        action=InboundAction.UNREADABLE,
        text=f"[contacts] {names_text}".strip(),
        details={"contacts": people},
    )


def _parse_reaction(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    reaction = _model(_ReactionMessage, raw).reaction
    emoji = (reaction.emoji or "").strip()
    details = {"reaction": {"message_id": reaction.message_id, "emoji": reaction.emoji}}
    if not emoji:  # the customer took a reaction back: nothing to say about that
        return InboundMessage(**common, action=InboundAction.IGNORE, details=details)
    text = neutralise_intent_prefix(emoji)
    return InboundMessage(**common, action=InboundAction.REACTION, text=text, details=details)


def _parse_other(raw: Dict[str, Any], common: Dict[str, Any]) -> InboundMessage:
    details: Dict[str, Any] = {}
    if isinstance(raw.get("errors"), list):
        details["errors"] = raw["errors"]
    return InboundMessage(**common, action=InboundAction.IGNORE, details=details)


_PARSERS: Dict[str, _Parser] = {
    "text": _parse_text,
    "interactive": _parse_interactive,
    "button": _parse_template_button,
    **{kind: _parse_media for kind in MEDIA_TYPES},
    "location": _parse_location,
    "contacts": _parse_contacts,
    "reaction": _parse_reaction,
}


def neutralise_intent_prefix(text: str) -> str:
    """Customer free text must never be read by Rasa as an `/intent{...}` payload.

    Rasa treats text starting with "/" (after whitespace) as an intent, so "/restart" would
    un-pause a handed-off conversation. Leading slashes and the spaces around them are
    dropped: "/restart" and "/ restart" reach NLU as "restart". Text made only of slashes
    names no intent, so it passes unchanged.
    """
    return _LEADING_SLASHES.sub("", text) or text


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        parts = []
        for item in error.errors()[:3]:
            location = ".".join(str(part) for part in item.get("loc", ()))
            parts.append(f"{location}: {item.get('msg')}")
        return "; ".join(parts)
    return str(error)
