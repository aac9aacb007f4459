"""Graph API error bodies shaped like Meta's (`{"error": {...}}`), and the send validation.

The checks follow the Cloud API's documented limits for the message types the assistant and
the inbox send; the wording of `details` is the sandbox's own.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Dict, List, Optional, Tuple

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
HEADER_FOOTER_LIMIT = 60
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BUTTON_LIMIT = 20
MAX_SECTIONS = 10
MAX_ROWS = 10
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
ROW_ID_LIMIT = 200
SECTION_TITLE_LIMIT = 24
CAPTION_LIMIT = 1024

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
SUPPORTED_TYPES = ("text", "interactive", "template", "reaction", "location", "contacts", *MEDIA_TYPES)

# code -> (title, details) for the errors the sandbox can simulate
KNOWN_ERRORS: Dict[int, tuple] = {
    1: ("An unknown error has occurred.", "An unknown error occurred. Try again later."),
    100: ("Invalid parameter", "The request included invalid or unsupported parameters."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131026: ("Message undeliverable", "Unable to deliver message to this customer."),
    131062: (
        "Business-scoped User ID recipients are not supported for this message.",
        "This message type cannot be sent to a business-scoped user id; send it to the phone number.",
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from this phone number to the same phone number in a short period of time.",
    ),
}


class GraphError(Exception):
    def __init__(self, http_status: int, code: int, title: str, details: Optional[str] = None, error_type: str = "OAuthException"):
        super().__init__(f"({code}) {title}: {details}")
        self.http_status = http_status
        self.code = code
        self.title = title
        self.details = details
        self.error_type = error_type

    def body(self) -> Dict[str, Any]:
        error: Dict[str, Any] = {
            "message": f"(#{self.code}) {self.title}",
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": secrets.token_urlsafe(9),
        }
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        return {"error": error}

    @classmethod
    def known(cls, code: int, http_status: int = 400) -> "GraphError":
        title, details = KNOWN_ERRORS.get(code, (f"Error {code}", None))
        return cls(http_status, code, title, details)


def invalid(details: str) -> GraphError:
    return GraphError(400, 100, "Invalid parameter", details)


_PHONE = re.compile(r"^\+?\d{7,15}$")
_BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")


def addressee(payload: Any) -> Tuple[str, str]:
    """("to", phone digits) or ("recipient", BSUID); `to` wins when both are given, like Meta."""
    to = payload.get("to") if isinstance(payload, dict) else None
    if to is not None:
        if not isinstance(to, str) or not _PHONE.match(to):
            raise invalid("Param 'to' must be the customer's phone number (7 to 15 digits).")
        return "to", to.lstrip("+")
    recipient = payload.get("recipient") if isinstance(payload, dict) else None
    if recipient is None:
        raise invalid("Param 'to' (a phone number) or 'recipient' (a business-scoped user id) is required.")
    if not isinstance(recipient, str) or not _BSUID.match(recipient):
        raise invalid("Param 'recipient' must be a business-scoped user id, like US.13491208655302741918.")
    return "recipient", recipient


def validate_send(payload: Any) -> str:
    """Checks a send request like the Cloud API would; returns the message type."""
    if not isinstance(payload, dict):
        raise invalid("The request body must be a JSON object.")
    if payload.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    addressee(payload)
    message_type = payload.get("type", "text")
    if message_type not in SUPPORTED_TYPES:
        raise invalid(f"Param 'type' must be one of {', '.join(SUPPORTED_TYPES)}.")
    content = payload.get(message_type)
    if message_type == "contacts":
        if not isinstance(content, list) or not content:
            raise invalid("Param 'contacts' must be a non-empty list.")
        return message_type
    if not isinstance(content, dict):
        raise invalid(f"Param '{message_type}' is required for a {message_type} message.")
    _VALIDATORS[message_type](content)
    return message_type


def _text(content: Dict[str, Any]) -> None:
    body = content.get("body")
    if not isinstance(body, str) or not body.strip():
        raise invalid("Param text['body'] is required.")
    if len(body) > TEXT_LIMIT:
        raise invalid(f"Param text['body'] must be at most {TEXT_LIMIT} characters long (got {len(body)}).")


def _interactive(content: Dict[str, Any]) -> None:
    kind = content.get("type")
    body = (content.get("body") or {}).get("text") if isinstance(content.get("body"), dict) else None
    if not isinstance(body, str) or not body.strip():
        raise invalid("Param interactive['body']['text'] is required.")
    if len(body) > INTERACTIVE_BODY_LIMIT:
        raise invalid(f"Param interactive['body']['text'] must be at most {INTERACTIVE_BODY_LIMIT} characters long.")
    for part in ("header", "footer"):
        value = content.get(part)
        if isinstance(value, dict) and isinstance(value.get("text"), str) and len(value["text"]) > HEADER_FOOTER_LIMIT:
            raise invalid(f"Param interactive['{part}']['text'] must be at most {HEADER_FOOTER_LIMIT} characters long.")
    action = content.get("action")
    if not isinstance(action, dict):
        raise invalid("Param interactive['action'] is required.")
    if kind == "button":
        _reply_buttons(action)
    elif kind == "list":
        _list(action)
    elif kind == "cta_url":
        parameters = action.get("parameters") or {}
        if not str(parameters.get("url", "")).startswith(("http://", "https://")):
            raise invalid("Param interactive['action']['parameters']['url'] must be an http(s) URL.")
    else:
        raise invalid("Param interactive['type'] must be one of button, list, cta_url.")


def _reply_buttons(action: Dict[str, Any]) -> None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise invalid("Param interactive['action']['buttons'] is required.")
    if len(buttons) > MAX_BUTTONS:
        raise invalid(f"Param interactive['action']['buttons'] must have at most {MAX_BUTTONS} elements (got {len(buttons)}).")
    ids: List[str] = []
    titles: List[str] = []
    for index, button in enumerate(buttons):
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(button, dict) or button.get("type") != "reply" or not isinstance(reply, dict):
            raise invalid(f"Button {index} must be {{'type': 'reply', 'reply': {{'id', 'title'}}}}.")
        reply_id, title = reply.get("id"), reply.get("title")
        if not isinstance(reply_id, str) or not reply_id or len(reply_id) > BUTTON_ID_LIMIT:
            raise invalid(f"Button {index} id must be 1 to {BUTTON_ID_LIMIT} characters long.")
        if not isinstance(title, str) or not title.strip() or len(title) > BUTTON_TITLE_LIMIT:
            raise invalid(f"Button {index} title must be 1 to {BUTTON_TITLE_LIMIT} characters long (got {title!r}).")
        ids.append(reply_id)
        titles.append(title)
    if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
        raise invalid("Button ids and titles must be unique.")


def _list(action: Dict[str, Any]) -> None:
    label = action.get("button")
    if not isinstance(label, str) or not label.strip() or len(label) > LIST_BUTTON_LIMIT:
        raise invalid(f"Param interactive['action']['button'] must be 1 to {LIST_BUTTON_LIMIT} characters long.")
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections or len(sections) > MAX_SECTIONS:
        raise invalid(f"Param interactive['action']['sections'] must have 1 to {MAX_SECTIONS} elements.")
    row_ids: List[str] = []
    for section_index, section in enumerate(sections):
        if not isinstance(section, dict):
            raise invalid(f"Section {section_index} must be an object.")
        title = section.get("title")
        if len(sections) > 1 and not title:
            raise invalid("Every section needs a title when there is more than one section.")
        if title is not None and (not isinstance(title, str) or len(title) > SECTION_TITLE_LIMIT):
            raise invalid(f"Section titles must be at most {SECTION_TITLE_LIMIT} characters long.")
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            raise invalid(f"Section {section_index} needs at least one row.")
        for row in rows:
            if not isinstance(row, dict):
                raise invalid("Rows must be objects.")
            row_id, row_title, description = row.get("id"), row.get("title"), row.get("description")
            if not isinstance(row_id, str) or not row_id or len(row_id) > ROW_ID_LIMIT:
                raise invalid(f"Row ids must be 1 to {ROW_ID_LIMIT} characters long.")
            if not isinstance(row_title, str) or not row_title.strip() or len(row_title) > ROW_TITLE_LIMIT:
                raise invalid(f"Row titles must be 1 to {ROW_TITLE_LIMIT} characters long (got {row_title!r}).")
            if description is not None and (not isinstance(description, str) or len(description) > ROW_DESCRIPTION_LIMIT):
                raise invalid(f"Row descriptions must be at most {ROW_DESCRIPTION_LIMIT} characters long.")
            row_ids.append(row_id)
    if len(row_ids) > MAX_ROWS:
        raise invalid(f"A list message can have at most {MAX_ROWS} rows in total (got {len(row_ids)}).")
    if len(set(row_ids)) != len(row_ids):
        raise invalid("Row ids must be unique.")


def _media(content: Dict[str, Any]) -> None:
    link, media_id = content.get("link"), content.get("id")
    if bool(link) == bool(media_id):
        raise invalid("A media message needs exactly one of 'link' or 'id'.")
    if link and (not isinstance(link, str) or not link.startswith(("http://", "https://"))):
        raise invalid("Media 'link' must be an http(s) URL.")
    caption = content.get("caption")
    if caption is not None and (not isinstance(caption, str) or len(caption) > CAPTION_LIMIT):
        raise invalid(f"Media captions must be at most {CAPTION_LIMIT} characters long.")


def _template(content: Dict[str, Any]) -> None:
    language = content.get("language")
    if not content.get("name") or not isinstance(language, dict) or not language.get("code"):
        raise invalid("A template message needs 'name' and 'language': {'code'}.")


def _reaction(content: Dict[str, Any]) -> None:
    if not content.get("message_id") or "emoji" not in content:
        raise invalid("A reaction needs 'message_id' and 'emoji'.")


def _location(content: Dict[str, Any]) -> None:
    if not isinstance(content.get("latitude"), (int, float)) or not isinstance(content.get("longitude"), (int, float)):
        raise invalid("A location needs numeric 'latitude' and 'longitude'.")


_VALIDATORS = {
    "text": _text,
    "interactive": _interactive,
    "template": _template,
    "reaction": _reaction,
    "location": _location,
    **{media_type: _media for media_type in MEDIA_TYPES},
}
