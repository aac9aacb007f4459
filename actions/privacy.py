"""Customer identifiers in the action server's logs: phone numbers and WhatsApp business-scoped user
ids (BSUIDs) are masked at INFO and above (`+91 98•••••210`, `US.13••••918`); full values only at DEBUG.
(The inbox and the connector have their own helpers: the services do not import each other.)"""
from __future__ import annotations

import re

_BSUID = re.compile(r"\b([A-Z]{2}\.(?:ENT\.)?)([A-Za-z0-9]{6,128})\b")
# E.164 numbers with country code (11-15 digits, "+" and spaces allowed); shorter runs such as order
# numbers and Unix timestamps are left alone.
_PHONE = re.compile(r"(?<![\w.•])\+?\d(?:[ -]?\d){10,14}(?![\w•])")


def _mask_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"+{digits[:2]} {digits[2:4]}{'•' * (len(digits) - 7)}{digits[-3:]}"


def mask_text(text: str) -> str:
    """Every phone number and BSUID in `text`, masked."""
    text = _BSUID.sub(lambda match: f"{match.group(1)}{match.group(2)[:2]}••••{match.group(2)[-3:]}", text)
    return _PHONE.sub(lambda match: _mask_phone(match.group(0)), text)


def masked(sender_id: str | None) -> str:
    """A conversation id (phone digits, BSUID or a REST sender id) fit for an INFO+ log line."""
    if not sender_id:
        return "-"
    shown = mask_text(sender_id)
    if shown != sender_id:
        return shown
    return sender_id[:3] + "•" * max(len(sender_id) - 6, 1) + sender_id[-3:] if len(sender_id) > 6 else "•" * 6
