"""Graph API message bodies for what Rasa wants to say, within WhatsApp's limits.

Limits (Cloud API): text 4,096 chars; interactive body 1,024; reply buttons at most 3 with
titles of at most 20 chars and ids of at most 256; list messages at most 10 rows, row titles
24, row descriptions 72, row ids 200, the list's button label 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from whatsapp_cloud.core import message_payload

from connectors.inbound import is_bsuid
from connectors.text_chunks import WHATSAPP_TEXT_LIMIT, split_text

INTERACTIVE_BODY_LIMIT = 1024
MAX_REPLY_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
MAX_LIST_ROWS = 10
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
ROW_ID_LIMIT = 200
LIST_BUTTON_LABEL = "Choose"
DEFAULT_CHOICE_PROMPT = "Please choose an option:"
MORE_CHOICES_PROMPT = "More options:"


@dataclass(frozen=True)
class Choice:
    """One option the customer can tap; `reply_id` comes back as the reply's id."""

    reply_id: str
    title: str


@dataclass(frozen=True)
class OutboundMessage:
    kind: str  # text | interactive | image | document | custom (for the outbound log)
    body: Dict[str, Any]


def addressee(conversation_key: str) -> Dict[str, str]:
    """`to` for a phone number, `recipient` for a business-scoped user id (a customer whose phone
    was not known when the conversation started)."""
    return {"recipient": conversation_key} if is_bsuid(conversation_key) else {"to": conversation_key}


def _envelope(to: str, message_type: str, content: Dict[str, Any]) -> Dict[str, Any]:
    # The one Graph API client's payload builder (whatsapp_cloud), as the inbox's sends use.
    return message_payload({"type": message_type, message_type: content}, **addressee(to))


def text_messages(to: str, text: str) -> List[OutboundMessage]:
    return [
        OutboundMessage("text", _envelope(to, "text", {"body": piece, "preview_url": False}))
        for piece in split_text(text, WHATSAPP_TEXT_LIMIT)
    ]


def image_message(to: str, link: str, caption: Optional[str] = None) -> OutboundMessage:
    content: Dict[str, Any] = {"link": link}
    if caption:
        content["caption"] = caption[:INTERACTIVE_BODY_LIMIT]
    return OutboundMessage("image", _envelope(to, "image", content))


def document_message(to: str, link: str) -> OutboundMessage:
    return OutboundMessage("document", _envelope(to, "document", {"link": link}))


def custom_message(to: str, custom: Dict[str, Any]) -> OutboundMessage:
    """A Graph API message body written in the bot's response (`custom:`), sent as is."""
    body = dict(custom)
    body.setdefault("messaging_product", "whatsapp")
    body.setdefault("recipient_type", "individual")
    if "to" not in body and "recipient" not in body:
        body.update(addressee(to))
    return OutboundMessage("custom", body)


def choice_messages(to: str, text: Optional[str], choices: List[Choice]) -> List[OutboundMessage]:
    """Text with options: reply buttons when they fit, else list message(s).

    Text longer than an interactive body allows goes first as plain text; the last part
    becomes the body of the interactive message.
    """
    if not choices:
        return text_messages(to, text or "")
    leading: List[str] = []
    body = (text or "").strip()
    if len(body) > INTERACTIVE_BODY_LIMIT:
        pieces = split_text(body, WHATSAPP_TEXT_LIMIT)
        last = split_text(pieces.pop(), INTERACTIVE_BODY_LIMIT)
        body = last.pop()
        leading = pieces + last
    messages = [OutboundMessage("text", _envelope(to, "text", {"body": piece, "preview_url": False})) for piece in leading]
    body = body or DEFAULT_CHOICE_PROMPT

    fits_buttons = len(choices) <= MAX_REPLY_BUTTONS and all(
        len(choice.title) <= BUTTON_TITLE_LIMIT for choice in choices
    )
    if fits_buttons:
        buttons = [
            {"type": "reply", "reply": {"id": choice.reply_id, "title": choice.title}}
            for choice in choices
        ]
        messages.append(
            OutboundMessage(
                "interactive",
                _envelope(to, "interactive", {"type": "button", "body": {"text": body}, "action": {"buttons": buttons}}),
            )
        )
        return messages

    for start in range(0, len(choices), MAX_LIST_ROWS):
        rows = [_list_row(choice) for choice in choices[start : start + MAX_LIST_ROWS]]
        messages.append(
            OutboundMessage(
                "interactive",
                _envelope(
                    to,
                    "interactive",
                    {
                        "type": "list",
                        "body": {"text": body if start == 0 else MORE_CHOICES_PROMPT},
                        "action": {"button": LIST_BUTTON_LABEL, "sections": [{"rows": rows}]},
                    },
                ),
            )
        )
    return messages


def _list_row(choice: Choice) -> Dict[str, str]:
    if len(choice.title) <= ROW_TITLE_LIMIT:
        return {"id": choice.reply_id, "title": choice.title}
    # Long option text: a shortened title, the full wording in the description.
    return {
        "id": choice.reply_id,
        "title": choice.title[: ROW_TITLE_LIMIT - 1].rstrip() + "…",
        "description": _shorten(choice.title, ROW_DESCRIPTION_LIMIT),
    }


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
