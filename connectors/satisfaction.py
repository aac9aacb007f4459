"""Satisfaction (CSAT) answers: the inbox asks "How did our team do?" with reply buttons whose ids
start with `csat:` (inbox/services/csat.py). A tap, and the customer's next message within the minutes
the button id carries (their comment), are recorded in the tracker for the inbox but never reach
NLU or the policies: a "😞 Not good" must not start a complaint hand-off (connectors/README.md)."""

from __future__ import annotations

import re
from typing import Optional

from connectors.inbound import InboundAction, InboundMessage

# csat:<token>:<rating>:<comment minutes>
CSAT_BUTTON_ID = re.compile(r"^csat:[0-9a-f]{16,32}:(great|okay|not_good)(?::(\d{1,4}))?$")
ANSWER = "answer"
COMMENT = "comment"


def _tap(message: Optional[InboundMessage]) -> Optional["re.Match[str]"]:
    if message is None or message.action is not InboundAction.CONVERSE:
        return None
    reply = message.details.get("reply") if isinstance(message.details.get("reply"), dict) else {}
    return CSAT_BUTTON_ID.match(str(reply.get("id") or ""))


def is_survey_tap(message: InboundMessage) -> bool:
    return _tap(message) is not None


def survey_role(message: InboundMessage, previous: Optional[InboundMessage]) -> Optional[str]:
    """ANSWER for a tap on a CSAT button; COMMENT for a text message that follows a tap within its
    comment minutes (by WhatsApp's timestamps); None for everything else (the bot handles it)."""
    if is_survey_tap(message):
        return ANSWER
    tap = _tap(previous)
    if tap is None or message.type != "text" or message.action is not InboundAction.CONVERSE:
        return None
    minutes = int(tap.group(2) or 0)
    try:
        gap = int(message.timestamp) - int(previous.timestamp)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return COMMENT if minutes and 0 <= gap <= minutes * 60 else None


def recorded_text(message: InboundMessage, role: str) -> str:
    """What the transcript shows: the button's title for a tap, the comment as written."""
    if role == ANSWER:
        return str((message.details.get("reply") or {}).get("title") or message.text or "")
    return message.text or ""
